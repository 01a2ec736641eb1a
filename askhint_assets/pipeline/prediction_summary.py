"""What a scored prediction set is: its reference (what later stages read it by), its data version, and the
counts and samples that describe it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from askhint_assets import ids
from askhint_assets.errors import PipelineError
from askhint_assets.hashing import hash_obj
from askhint_assets.pipeline.runner import RunStats
from askhint_assets.refs import FramesRef, PredictionsRef, as_dict

SAMPLE_SIZE = 8


def no_units(dataset: str, where: str = "") -> PipelineError:
    """The error of a prediction step that has no unit to score (``where``: e.g. " in any shard")."""
    return PipelineError(f"no scoring units for data set {dataset}{where}: every video failed or was skipped "
                         "(their reasons are in the videos table and dataset_index/sampled_frames)")


@dataclass(frozen=True)
class PredictionSummary:
    """A scored prediction set, ready to be returned and described."""

    ref: PredictionsRef  # what evaluation reads the predictions by (dataset, plans, Q*, templates, model, template)
    version: str  # the data version: :func:`askhint_assets.ids.predictions_version`
    stats: dict  # units, videos, requests, cache hits, requests sent, unparsed answers, seconds
    sources: dict[str, int]  # units by score source
    sample: list[dict]  # the first units with an anomaly group, with their rationale
    failed_units: int


def count_score_sources(rows: list[dict]) -> dict[str, int]:
    """Units by score source, in first-seen order."""
    return dict(Counter(r["score_source"] for r in rows))


def sample_rationales(rows: list[dict], limit: int = SAMPLE_SIZE) -> list[dict]:
    """The first ``limit`` units given an anomaly group: video, unit, score, group and the model's why."""
    return [
        {"video": r["video_id"], "unit": r["unit"], "score": r["score"], "group": r["group_name"],
         "why": r["rationale"]}
        for r in rows
        if r["group_name"]
    ][:limit]


def summarise_predictions(
    rows: list[dict], *, template: str, question_set: str, templates_version: str, frames: FramesRef,
    model: str, smoke: bool, run: RunStats, fingerprint: object, seconds: float,
    shard: tuple[int, int] | None = None,
) -> PredictionSummary:
    """The reference, version and counts of ``rows`` (one template's scoring of every unit, or one shard's:
    then the reference carries the shard, its version and stats for the gathering asset). Raises a
    :class:`PipelineError` when model requests failed after retries (the other units are stored)."""
    version = ids.predictions_version(rows, template, question_set, fingerprint, templates_version)
    n_fail = sum(r["score_source"] == "failed" for r in rows)
    if run.failed:
        raise PipelineError(
            f"{template}: {run.failed} model request(s) failed after retries "
            f"({n_fail} unit(s) unscored); the {len(rows) - n_fail} other units are stored. "
            "Materialize again to retry only the failed requests.",
            metadata={"failed_requests": run.failed, "sent": run.sent},
        )
    ref = PredictionsRef(dataset=frames.dataset, plans=frames.plans, question_set=question_set,
                         templates_version=templates_version, model=model, template=template, smoke_model=smoke)
    stats = {
        "units": len(rows),
        "videos": len({r["video_id"] for r in rows}),
        "requests": run.requests,
        "cache_hits": run.cache_hits,
        "requests_sent": run.sent,
        "unparsed": sum(not r["parse_ok"] for r in rows),
        "seconds": round(seconds, 2),
    }
    if shard is not None:  # the gather asset combines the shards' versions and counts
        ref = ref.with_shard(shard, version, stats)
    return PredictionSummary(ref=ref, version=version, stats=stats, sources=count_score_sources(rows),
                             sample=sample_rationales(rows), failed_units=n_fail)


@dataclass(frozen=True)
class GatheredPredictions:
    """One prediction set gathered from its shards: the common reference, a data version of the shards'
    versions, the shards' summed counts and each shard's own."""

    ref: PredictionsRef
    version: str
    totals: dict[str, int]  # every count of the shards' stats summed (not their seconds)
    shards: list[dict]  # shard asset name and its stats, by name
    slowest_seconds: float


def gather_shard_refs(shards: dict[str, PredictionsRef]) -> GatheredPredictions:
    """The prediction set of ``shards`` (asset name → the reference :func:`summarise_predictions` gave a shard).
    Raises a :class:`PipelineError` when a shard differs from the first in anything but its shard fields
    (it was scored with another Q*, templates or model) or when no shard has a unit."""
    refs = [shards[k] for k in sorted(shards)]
    missing = sorted(name for name, ref in shards.items() if ref.stats is None or ref.scores_version is None)
    if missing:
        raise PipelineError(f"{', '.join(missing)}: not a shard's predictions; materialize every shard again")
    common = refs[0].without_shard()
    first = as_dict(common)
    for name, ref in sorted(shards.items()):
        theirs = as_dict(ref.without_shard())
        mismatch = [k for k, v in first.items() if theirs.get(k) != v]
        if mismatch:
            raise PipelineError(f"shard {name} differs from the others in {mismatch}; materialize every shard again")
    stats = [dict(r.stats or {}) for r in refs]
    totals = {k: sum(st[k] for st in stats) for k in stats[0] if k != "seconds"}
    if not totals["units"]:
        raise no_units(common.dataset, " in any shard")
    return GatheredPredictions(
        ref=common,
        version=hash_obj([r.scores_version for r in refs]),
        totals=totals,
        shards=[{"shard": name, **(ref.stats or {})} for name, ref in sorted(shards.items())],
        slowest_seconds=max(st["seconds"] for st in stats),
    )
