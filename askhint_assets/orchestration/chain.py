"""Where a chain's assets live, decided before any asset is built.

A chain (one prompt set's, or one data set's) is built once by its factory with a :class:`ChainNames`:
every asset key, input key (``AssetIn``), group and check target comes from it, so nothing is renamed
afterwards. One data set keeps the plain keys of the demo (``guiding_questions``); several data sets put
each chain under its name (``demo/askhint_predictions`` reading ``ucf_crime/guiding_questions``) with
groups named after it (``demo_inference``), so the UI's boxes say whose they are. Dagster names the op
of a prefixed key ``demo__askhint_predictions`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from askhint_assets.settings import PipelineSettings


@dataclass(frozen=True)
class ChainNames:
    """The key prefix and group prefix of one chain (empty: the plain single-data-set names)."""

    prefix: str = ""

    def key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([self.prefix, name] if self.prefix else [name])

    def group(self, group: str) -> str:
        return f"{self.prefix}_{group}" if self.prefix else group

    def ins(self, *names: str) -> dict[str, dg.AssetIn]:
        """``AssetIn``s for assets of this chain, by parameter name."""
        return {n: dg.AssetIn(key=self.key(n)) for n in names}

    @property
    def sensor_prefix(self) -> str:
        return f"{self.prefix}_" if self.prefix else ""


@dataclass(frozen=True)
class DatasetChain:
    """One data set's chain: its own names and the names of the prompt chain whose Q* it reads."""

    settings: PipelineSettings
    names: ChainNames
    prompts: ChainNames


def layout(s: PipelineSettings) -> tuple[dict[str, tuple[PipelineSettings, ChainNames]], list[DatasetChain]]:
    """The chains of ``s``: each prompt set once (settings of its first data set, names), then each data set.

    With one data set (``dataset:`` or the demo) every chain has the plain names; with a ``datasets:``
    list each prompt set lives under ``<prompt_set>/`` and each data set under ``<name>/``.
    """
    multi = s.multi_dataset
    prompt_chains: dict[str, tuple[PipelineSettings, ChainNames]] = {}
    data_chains = []
    for one in s.per_dataset():
        ps = one.dataset.prompt_set
        if ps not in prompt_chains:
            prompt_chains[ps] = (one, ChainNames(ps if multi else ""))
        names = ChainNames(one.dataset.name if multi else "")
        data_chains.append(DatasetChain(one, names, prompt_chains[ps][1]))
    return prompt_chains, data_chains
