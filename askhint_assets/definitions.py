"""The one Definitions of the askhint code location.

One data set (``dataset:`` in the settings, or the demo): asset keys are plain names
(``guiding_questions``, ``askhint_predictions``, ...). Several (``datasets:``): each prompt set's chain
lives under ``<prompt_set>/`` and each data set's chain (data, inference, evaluation) under ``<name>/``,
reading Q* and the templates of its own prompt set, so a prompt edit makes stale only the data sets that
use that prompt set, and the nightly schedule re-evaluates every data set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dagster as dg

from askhint_assets.orchestration.automation import build_prompt_store_sensor, nightly_reevaluation, with_automation
from askhint_assets.orchestration.checks import build_checks
from askhint_assets.orchestration.data import build_data_assets
from askhint_assets.orchestration.evaluation import build_evaluation_assets
from askhint_assets.orchestration.predictions import build_prediction_assets
from askhint_assets.orchestration.prompts import build_prompt_assets
from askhint_assets.orchestration.resources import resources_for
from askhint_assets.settings import PipelineSettings, load_settings


def _dataset_assets(s: PipelineSettings) -> list:
    return [*build_data_assets(s), *build_prediction_assets(s), *build_evaluation_assets(s)]


def _names(items: Iterable) -> set[str]:
    keys: set[dg.AssetKey] = set()
    for a in items:
        keys |= {a.key} if isinstance(a, dg.SourceAsset) else set(a.keys)
    return {k.path[-1] for k in keys}


def _prefixed(items: Sequence, names: dict[str, str], node_prefix: str) -> list:
    """``items`` (assets, source assets or checks) with each key ``name`` in ``names`` moved under the
    prefix ``names[name]``, in their own keys and in their dependencies; their ops are renamed
    ``<node_prefix>__<op>`` so that the copies of one chain can live in one job, and their groups
    ``<node_prefix>_<group>`` (``demo_xd_inference``), so the UI's boxes say which data set they are."""
    mapping = {dg.AssetKey(n): dg.AssetKey([p, n]) for n, p in names.items()}
    out = []
    for a in items:
        if isinstance(a, dg.SourceAsset):
            out.append(a.with_attributes(key=mapping.get(a.key, a.key)))
            continue
        moved = a.with_attributes(asset_key_replacements=mapping)
        # dagster 1.13 has no public way to rename an asset's op; these are the calls its own
        # with_attributes makes to rebuild a definition
        attrs = moved.get_attributes_dict()
        node = attrs["node_def"]
        attrs["node_def"] = node.with_replaced_properties(name=f"{node_prefix}__{node.name}")
        moved = type(moved).dagster_internal_init(**attrs)
        if not isinstance(moved, dg.AssetChecksDefinition):  # groups per data set: the UI boxes say whose
            moved = moved.map_asset_specs(lambda spec: spec.replace_attributes(
                group_name=f"{node_prefix}_{spec.group_name}"))
        out.append(moved)
    return out


def _check_target(check: dg.AssetChecksDefinition) -> str:
    (key,) = {k.asset_key for k in check.check_keys}
    return key.path[-1]


def build_defs(s: PipelineSettings | None = None) -> dg.Definitions:
    """Assets (with automation conditions), checks, the prompt-store sensor(s), the nightly schedule and
    resources for the given settings (default: ``$ASKHINT_CONFIG`` or the demo)."""
    s = s or load_settings()
    checks = build_checks()
    if not s.multi_dataset:
        assets = [*build_prompt_assets(s), *_dataset_assets(s)]
        sensors = [build_prompt_store_sensor(s)]
    else:
        by_prompt_set: dict[str, PipelineSettings] = {}
        for one in s.per_dataset():
            by_prompt_set.setdefault(one.dataset.prompt_set, one)
        prompt_chains = {
            ps: build_prompt_assets(one, source_group=f"{ps}_prompts") for ps, one in by_prompt_set.items()
        }
        prompt_names = _names(next(iter(prompt_chains.values())))  # the same asset names for every prompt set
        prompt_checks = [c for c in checks if _check_target(c) in prompt_names]
        data_checks = [c for c in checks if _check_target(c) not in prompt_names]
        assets, checks, sensors = [], [], []
        for ps, chain in prompt_chains.items():
            names = dict.fromkeys(prompt_names, ps)
            assets += _prefixed(chain, names, ps)
            checks += _prefixed(prompt_checks, names, ps)
            sensors.append(build_prompt_store_sensor(by_prompt_set[ps], key=dg.AssetKey([ps, "prompt_store"])))
        for one in s.per_dataset():
            chain = _dataset_assets(one)
            names = dict.fromkeys(_names(chain), one.dataset.name) | dict.fromkeys(prompt_names, one.dataset.prompt_set)
            assets += _prefixed(chain, names, one.dataset.name)
            checks += _prefixed(data_checks, names, one.dataset.name)
    return dg.Definitions(
        assets=with_automation(assets),
        asset_checks=checks,
        sensors=sensors,
        schedules=[nightly_reevaluation],
        resources=resources_for(s),
        executor=executor_for(s),
    )


def executor_for(s: PipelineSettings) -> dg.ExecutorDefinition:
    """``execution.executor``: one process (the default: the model is loaded once), or a process per
    step so that independent steps (shards, data sets) run in parallel. ``dagster asset materialize``,
    ``askhint update``, the UI and the daemon use it; ``execute_in_process`` (the tests) does not."""
    if s.execution.executor == "in_process":
        return dg.in_process_executor
    if not s.execution.max_concurrent:
        return dg.multiprocess_executor
    return dg.multiprocess_executor.configured({"max_concurrent": s.execution.max_concurrent},
                                               name="askhint_multiprocess")


defs = build_defs()
