"""``askhint evaluate``: external score files (per frame or per window) against a data set's annotations, with
the same metrics as the pipeline's report; the metric rows optionally stored in ``eval_reports``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from askhint_assets import ids
from askhint_assets.datasets.base import VideoRecord
from askhint_assets.datasets.registry import ground_truth
from askhint_assets.errors import InputError
from askhint_assets.evaluation import score_files
from askhint_assets.evaluation.metrics import evaluate
from askhint_assets.evaluation.score_files import listed
from askhint_assets.hashing import hash_file
from askhint_assets.store import Store
from askhint_assets.store.predictions import store_report_rows


def _scored_records(dataset: str, annotations: Path, scores: Path, scored: list[str], inclusive_end: bool,
                    skip_missing: bool, warn: Callable[[str], None]) -> tuple[list[VideoRecord], list[str]]:
    """The annotated videos that have scores, and the annotated ones without (an error unless
    ``skip_missing``); scored videos not annotated are ignored with a warning."""
    records = ground_truth(dataset, annotations, scored, inclusive_end=inclusive_end)
    if not records:
        raise InputError("no videos in the annotations", path=annotations)
    scored_set = set(scored)
    missing = [r.video_id for r in records if r.video_id not in scored_set]
    if missing and not skip_missing:
        raise InputError(
            f"{len(missing)} annotated video(s) have no scores: {listed(missing)} (--skip-missing to go on)",
            path=scores,
        )
    if missing:
        warn(f"warning: skipping {len(missing)} video(s) without scores: {listed(missing)}")
    records = [r for r in records if r.video_id in scored_set]
    if not records:
        raise InputError("no annotated video has scores", path=scores)
    extra = sorted(scored_set - {r.video_id for r in records})
    if extra:
        warn(f"warning: ignoring {len(extra)} scored video(s) not in the annotations: {listed(extra)}")
    return records, missing


def _frame_counts(records: list[VideoRecord], table: Any, scores: Path, frame_counts: Path | None,
                  from_scores: bool) -> dict[str, int]:
    """Each record's frame count: from ``frame_counts``, the per-frame score file, or the annotations."""
    if frame_counts is not None:
        counts = score_files.read_frame_counts(frame_counts)
    elif from_scores:
        counts = score_files.frame_counts_from_scores(table, path=scores)
    else:
        counts = {}
    counts = {r.video_id: counts.get(r.video_id, r.num_frames) for r in records}
    unknown = [v for v, n in counts.items() if n is None]
    if unknown:
        raise InputError(
            f"frame count unknown for {len(unknown)} video(s): {listed(unknown)}; pass --frame-counts FILE "
            "(video,num_frames) or, for a per-frame score file, --frame-counts-from-scores",
            path=frame_counts,
        )
    return counts


def evaluate_score_file(
    dataset: str,
    annotations: Path,
    scores: Path,
    frame_counts: Path | None,
    frame_counts_from_scores: bool,
    inclusive_end: bool,
    window_rule: str,
    threshold: float,
    bootstrap: int,
    seed: int,
    skip_missing: bool,
    db: Path | None,
    warn: Callable[[str], None],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Load, join by video id, score; returns the JSON report and the metric rows (also stored in ``db``'s
    ``eval_reports`` when given). ``warn`` gets the warnings (videos skipped or ignored, rows written)."""
    if frame_counts is not None and frame_counts_from_scores:
        raise InputError("give either --frame-counts or --frame-counts-from-scores, not both")
    table = score_files.read_scores(scores)
    scored = table["video"].unique(maintain_order=True).to_list()
    records, missing = _scored_records(dataset, annotations, scores, scored, inclusive_end, skip_missing, warn)
    counts = _frame_counts(records, table, scores, frame_counts, frame_counts_from_scores)
    frame_scores = score_files.to_frame_scores(table, counts, videos=list(counts), rule=window_rule, path=scores)
    records = [dataclasses.replace(r, num_frames=counts[r.video_id]) for r in records]
    for r in records:  # ends past the last frame are clipped; a start past it means wrong frame counts
        for s, e in r.intervals:
            if s >= r.num_frames:
                raise InputError(
                    f"{r.video_id}: interval [{s}, {e}) starts at or after the video's end ({r.num_frames} "
                    "frames); check the frame counts",
                    path=annotations,
                    line=r.source_line,
                )
    result = evaluate(frame_scores, records, threshold=threshold, n_boot=bootstrap, seed=seed)

    settings = {
        "dataset": dataset,
        "annotations": hash_file(annotations),
        "scores": hash_file(scores),
        "frame_counts": hash_file(frame_counts) if frame_counts else frame_counts_from_scores,
        "inclusive_end": inclusive_end,
        "window_rule": window_rule,
        "threshold": threshold,
        "bootstrap": bootstrap,
        "seed": seed,
        "skipped": missing,
    }
    report = {
        "report_id": ids.scores_report_id(settings),
        "dataset": dataset,
        "annotations": str(annotations),
        "scores": str(scores),
        "score_layout": score_files.score_kind(table),
        "interval_convention": "inclusive-end" if inclusive_end else "half-open [start, end)",
        "n_skipped": len(missing),
        "skipped_videos": missing,
        **result.to_json(),
    }
    if db is not None:
        created = datetime.now(UTC).replace(tzinfo=None)
        base = {
            "report_id": report["report_id"],
            "created_at": created,
            "dataset": dataset,
            "n_videos": result.n_videos,
            "n_frames": result.n_frames,
            "source": f"scores:{scores}",
        }
        store_report_rows(Store(db), [{**base, **r} for r in result.to_rows()])
        warn(f"wrote {len(result.to_rows())} rows to {db} (eval_reports)")
    return report, result.to_rows()
