"""The data chain without Dagster: a data set loaded and indexed in ``videos``, and its scoring plans' units
sampled (frames decoded up front where the settings ask) and stored in ``scoring_units``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from askhint_assets import ids, paths
from askhint_assets.datasets.base import Dataset
from askhint_assets.datasets.registry import load_dataset, write_demo
from askhint_assets.errors import VideoError
from askhint_assets.settings import PipelineSettings
from askhint_assets.store import Store
from askhint_assets.store.videos import load_videos, mark_videos_failed, replace_units, replace_videos, store_plans
from askhint_assets.video.frame_cache import FrameCache
from askhint_assets.video.frame_source import decode_failure_reason
from askhint_assets.video.units import PlannedUnit, extract_units, plan_units, video_file_key

Log = Callable[[str], None]

PROGRESS_EVERY = 25
"""Videos between two progress lines while sampling."""


def plan_settings(s: PipelineSettings, granularity: str) -> dict:
    """What determines a scoring plan's units: sampling, granularity and (for windows) their size."""
    sc = s.scoring
    window = {"window_s": sc.window_s, "stride_s": sc.stride_s} if granularity in ("window", "tree") else {}
    if granularity == "tree":  # which nodes a tree asks: split at the band's lower edge
        window["split_at"] = sc.uncertain_band[0]
    sampling = asdict(s.sampling)
    if sampling["mode"] == "exact":  # exact plans keep the ids they had before sampling modes existed
        del sampling["mode"], sampling["max_offset_s"]
    return {"sampling": sampling, "granularity": granularity, **window}


def plan_id(s: PipelineSettings, granularity: str) -> str:
    """Identity of a scoring plan (hash of :func:`plan_settings`)."""
    return ids.plan_id(plan_settings(s, granularity))


def plan_ids(s: PipelineSettings) -> dict[str, str]:
    """Granularity → plan id of every configured granularity."""
    return {g: plan_id(s, g) for g in s.scoring.granularities}


@dataclass(frozen=True)
class DatasetIndex:
    """A data set as indexed: what was loaded, its root, the data version and what to log about it."""

    dataset: Dataset
    root: Path
    version: str  # :func:`askhint_assets.ids.dataset_index_version`
    warnings: tuple[str, ...]  # skipped videos and annotation lines, and notes on videos kept

    @property
    def anomalous(self) -> int:
        return sum(v.is_anomalous for v in self.dataset.videos)

    @property
    def frames(self) -> int:
        return sum(v.num_frames or 0 for v in self.dataset.videos)

    @property
    def skipped_rows(self) -> list[dict[str, str]]:
        """Every skipped video and annotation line with its reason."""
        return ([{"video": n, "reason": r} for n, r in self.dataset.skipped]
                + [{"video": "(annotation line)", "reason": r} for _, r in self.dataset.skipped_lines])


def video_rows(name: str, dataset: Dataset) -> list[dict]:
    """The ``videos`` rows of a loaded data set: every video kept (status ``ok``) and every one skipped."""
    rows = [
        {
            "dataset": name,
            "video_id": v.video_id,
            "label": v.label,
            "classes": list(v.classes),
            "intervals": json.dumps([list(i) for i in v.intervals]),
            "num_frames": v.num_frames,
            "fps": v.fps,
            "path": str(v.path) if v.path else None,
            "file_key": None,
            "status": "ok",
            "reason": None,
        }
        for v in dataset.videos
    ]
    return rows + [{"dataset": name, "video_id": str(n), "status": "skipped", "reason": r} for n, r in dataset.skipped]


def index_dataset(st: Store, s: PipelineSettings) -> DatasetIndex:
    """Load the settings' data set (the kind's generated demo is written first where no root is set) and
    replace its rows of ``videos``."""
    ds = s.dataset
    root = s.dataset_root()
    if not ds.root:  # the generated demo in the kind's layout
        write_demo(ds.kind, root)
    dataset = load_dataset(ds.kind, root, ds.annotations, on_error=ds.on_error, inclusive_end=ds.inclusive_end)
    rows = video_rows(ds.name, dataset)
    replace_videos(st, ds.name, rows)
    warnings = (
        [f"skipped video {n}: {r}" for n, r in dataset.skipped]
        + [f"skipped: {r}" for _, r in dataset.skipped_lines]  # the reason starts with its file:line
        + list(dataset.notes)
    )
    return DatasetIndex(dataset, root, ids.dataset_index_version(dataset.fingerprint, rows), tuple(warnings))


@dataclass(frozen=True)
class SampledFrames:
    """A data set's scoring units under every plan, as stored, and what sampling them did."""

    plans: dict[str, str]  # granularity → plan id
    version: str  # :func:`askhint_assets.ids.sampled_frames_version`
    videos: int  # videos planned (the data set's ok videos less the failed ones)
    units: int
    decoded: int  # units whose frames were decoded now (``execution.decode: upfront``)
    failed: list[dict[str, str]]  # video, reason
    seconds: float


def unit_rows(dataset: str, plans: dict[str, str], video_id: str, units: dict[str, list[PlannedUnit]]) -> list[dict]:
    """The ``scoring_units`` rows of one video's planned units (granularity → units)."""
    return [
        {
            "dataset": dataset,
            "plan": plans[g],
            "video_id": video_id,
            "unit": u.window.index,
            "start_frame": u.window.start,
            "end_frame": u.window.end,
            "frames_key": u.frames_key,
            "frame_indices": u.indices.tolist(),
            "frames_fps": u.frames_fps,
        }
        for g, us in units.items()
        for u in us
    ]


def sample_frames(st: Store, s: PipelineSettings, *, warn: Log, info: Log) -> SampledFrames:
    """Plan every ok video's units under each plan (decoding their frames into the frame cache when
    ``execution.decode`` is ``upfront``) and store plans and units. A video that cannot be read is marked
    failed and skipped (``dataset.on_error: skip``, told to ``warn``) or raises a :class:`VideoError`."""
    ds, sampling, sc = s.dataset, s.sampling.config(), s.scoring
    plans = plan_ids(s)
    upfront = s.execution.decode == "upfront"
    cache = FrameCache(paths.frames_cache_dir())
    videos = load_videos(st, ds.name)
    rows: list[dict] = []
    failed: list[dict[str, str]] = []
    decoded = 0
    t0 = time.perf_counter()
    for n, v in enumerate(videos, 1):
        try:
            key = video_file_key(v.path)
            units = {g: plan_units(v, key, sampling, g, sc.window_s, sc.stride_s) for g in plans}
            if upfront:  # else the prediction assets decode while the model works (FrameSource)
                decoded += extract_units(v.path, [u for us in units.values() for u in us], cache,
                                         sampling.max_side, mode=sampling.mode, max_offset_s=sampling.max_offset_s)
        except (VideoError, OSError, ValueError) as e:
            reason = decode_failure_reason(e, cache)  # a full or read-only disk raises: stop
            if ds.on_error == "raise":
                raise VideoError(v.path or v.video_id, reason) from e
            failed.append({"video": v.video_id, "reason": reason})
            warn(f"video {v.video_id} failed: {reason}")
            continue
        rows += unit_rows(ds.name, plans, v.video_id, units)
        if n % PROGRESS_EVERY == 0:
            info(f"sampled {n}/{len(videos)} videos")
    store_plans(st, plans, {g: plan_settings(s, g) for g in plans})
    for p in plans.values():
        replace_units(st, ds.name, p, [r for r in rows if r["plan"] == p])
    mark_videos_failed(st, ds.name, {f["video"]: f["reason"] for f in failed})
    keys = sorted((r["plan"], r["video_id"], r["unit"], r["frames_key"]) for r in rows)
    return SampledFrames(plans=plans, version=ids.sampled_frames_version(plans, keys), videos=len(videos) - len(failed),
                         units=len(rows), decoded=decoded, failed=failed, seconds=round(time.perf_counter() - t0, 2))
