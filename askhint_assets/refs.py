"""What the assets pass each other: one frozen reference per asset output (ids and versions that name rows in
DuckDB, never the rows). Frozen and built of tuples and :class:`FrozenDict`, so a reference is immutable,
hashable and pickles (Dagster's IO managers store them; other executor processes load them).

:func:`as_dict` gives the plain dict an asset returned before these types existed: ids hashed from a reference
(:mod:`askhint_assets.ids`) hash that dict, so they stay what they were.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(Mapping[K, V]):
    """An immutable, hashable (where its values are) and picklable mapping; equal to a dict of the same items."""

    __slots__ = ("_d",)

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        object.__setattr__(self, "_d", dict(items))

    def __getitem__(self, key: K) -> V:
        return self._d[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __hash__(self) -> int:
        return hash(tuple(self._d.items()))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FrozenDict is immutable")

    def __reduce__(self) -> tuple:
        return FrozenDict, (self._d,)

    def __repr__(self) -> str:
        return f"FrozenDict({self._d!r})"


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    return v


def as_dict(ref: Any) -> dict[str, Any]:
    """The plain dict of a reference, as the asset returned it before typed references: mappings as dicts,
    tuples as lists, and an optional field (default None) left out while it is None."""
    return {
        f.name: _plain(getattr(ref, f.name))
        for f in dataclasses.fields(ref)
        if not (f.default is None and getattr(ref, f.name) is None)
    }


@dataclass(frozen=True)
class PromptVersionRef:
    """``class_prompts``: a recorded class-prompt version of a prompt set."""

    prompt_set: str
    version: str  # cp-...


@dataclass(frozen=True)
class TemplatesRef:
    """``inference_templates``: a recorded template version of a prompt set."""

    prompt_set: str
    version: str  # tp-...


@dataclass(frozen=True)
class EmbeddingsRef:
    """``question_embeddings``: the class questions of a prompt version embedded by one embedder."""

    prompt_set: str
    version: str  # the class-prompt version
    embedder: str  # :func:`askhint_assets.ids.embedder_name`


@dataclass(frozen=True)
class ClustersRef:
    """``question_clusters``: a clustering of one embedding set."""

    prompt_set: str
    version: str
    embedder: str
    clustering_id: str

    @property
    def embeddings(self) -> EmbeddingsRef:
        return EmbeddingsRef(self.prompt_set, self.version, self.embedder)


@dataclass(frozen=True)
class QStarRef:
    """``guiding_questions``: a recorded Q* and where it came from; with ``questions.method: llm`` also the
    method, who wrote it and each merged cluster's status."""

    question_set: str
    questions: tuple[str, ...]
    prompt_set: str
    prompt_version: str
    clustering_id: str
    target_size: int
    n_clusters: int
    question_classes: tuple[str, ...]
    method: str | None = None
    produced_by: str | None = None
    cluster_status: FrozenDict[str, str] | None = None


@dataclass(frozen=True)
class DatasetIndexRef:
    """``dataset_index``: an indexed data set."""

    dataset: str
    kind: str
    root: str


@dataclass(frozen=True)
class FramesRef:
    """``sampled_frames``: a data set's scoring units, one plan per granularity."""

    dataset: str
    plans: FrozenDict[str, str]  # granularity → plan id


@dataclass(frozen=True)
class PredictionKey:
    """What selects prediction rows of one question set under a plan named beside it (``askhint band``)."""

    dataset: str
    question_set: str
    model: str
    template: str


@dataclass(frozen=True)
class SizePredictionsRef:
    """One size of the prompt-count ablation: its question set's predictions under the ablation's plan."""

    dataset: str
    question_set: str
    model: str
    template: str
    smoke_model: bool
    templates_version: str


@dataclass(frozen=True)
class PredictionsRef:
    """A prediction asset (``askhint_predictions``, ``abstract_predictions``, ...): one template's predictions of
    every plan; a shard's also carries its shard ``(index, count)``, data version and counts for the gathering."""

    dataset: str
    plans: FrozenDict[str, str]  # granularity → plan id
    question_set: str
    templates_version: str
    model: str
    template: str
    smoke_model: bool
    shard: tuple[int, int] | None = None
    scores_version: str | None = None
    stats: FrozenDict[str, float] | None = None

    def with_shard(self, shard: tuple[int, int], scores_version: str, stats: Mapping[str, float]) -> PredictionsRef:
        """A shard's reference: this one with the shard, its data version and its counts."""
        return dataclasses.replace(self, shard=tuple(shard), scores_version=scores_version, stats=FrozenDict(stats))

    def without_shard(self) -> PredictionsRef:
        """The reference of the whole prediction set (no shard fields)."""
        return dataclasses.replace(self, shard=None, scores_version=None, stats=None)


@dataclass(frozen=True)
class ReportRef:
    """``evaluation_report``: the report ids (``"<granularity>/<template>"`` → id) and the headline frame AUC."""

    dataset: str
    report_ids: FrozenDict[str, str]
    frame_auc: float


@dataclass(frozen=True)
class AblationRef:
    """``prompt_count_ablation``: frame AUC against Q* size."""

    dataset: str
    sizes: tuple[int, ...]
    frame_auc: tuple[float, ...]


RowsOf = PredictionsRef | SizePredictionsRef | PredictionKey
"""Any reference that names prediction rows (data set, question set, model, template)."""
