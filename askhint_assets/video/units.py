"""Scoring units: the windows of a video, the frames sampled for each, decoded once and cached.

A unit's ``frames_key`` is a hash of the video's content fingerprint, the window and the sampling
settings, so frames are decoded once per (video, window, settings) whatever prompts or models
follow, and a rerun finds them in the cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from askhint_assets.datasets.base import VideoRecord
from askhint_assets.errors import VideoError
from askhint_assets.hashing import hash_obj
from askhint_assets.video.decode import decode_sampled
from askhint_assets.video.frame_cache import FrameCache
from askhint_assets.video.sampling import SamplingConfig, Window, plan_windows, sample_indices
from askhint_assets.video.stream_index import SamplingMode

_EDGE = 1 << 20


def video_file_key(path: str | Path) -> str:
    """A content fingerprint of a video file: its size and the hash of its first and last MiB.

    Cheap for multi-GB data sets; any re-encode or truncation changes it.
    """
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(p, "rb") as f:
        h.update(f.read(_EDGE))
        if size > _EDGE:
            f.seek(max(_EDGE, size - _EDGE))
            h.update(f.read(_EDGE))
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Unit:
    """One scored window of one video (the whole video in ``video`` granularity)."""

    dataset: str
    plan: str
    video_id: str
    unit: int
    start_frame: int
    end_frame: int
    frames_key: str
    frames_fps: float


@dataclass(frozen=True)
class PlannedUnit:
    window: Window
    indices: np.ndarray
    frames_key: str
    frames_fps: float


def plan_units(
    video: VideoRecord,
    file_key: str,
    sampling: SamplingConfig,
    granularity: str,
    window_s: float,
    stride_s: float | None,
) -> list[PlannedUnit]:
    """The windows of ``video`` and the frames sampled in each (needs ``num_frames`` and ``fps``)."""
    if not video.num_frames or not video.fps:
        raise ValueError(f"{video.video_id}: frame count and fps must be known before planning")
    mode = "video" if granularity == "tree" else granularity  # a tree's planned unit is its root, the whole video
    out = []
    for w in plan_windows(video.num_frames, video.fps, mode, window_s=window_s, stride_s=stride_s):
        u = plan_span(video.num_frames, video.fps, file_key, sampling, w)
        if u is not None:
            out.append(u)
    return out


def plan_span(num_frames: int, fps: float, file_key: str, sampling: SamplingConfig, w: Window) -> PlannedUnit | None:
    """The frames sampled over one span ``w`` of a video and their cache key (None if it has no frames): the
    same span gives the same key whichever granularity asks it (a tree node and the window it equals)."""
    idx = sample_indices(num_frames, fps, sampling, start=w.start, end=w.end)
    if len(idx) == 0:
        return None
    # effective rate of the sampled frames: how many of them per second of video
    span_s = max(w.num_frames / fps, 1e-6)
    key = hash_obj({"file": file_key, "start": w.start, "end": w.end, "idx": idx.tolist(),
                    "side": sampling.max_side, **sampling.plan_fields()})
    return PlannedUnit(w, idx, key, frames_fps=len(idx) / span_s)


def extract_units(
    path: str | Path,
    units: list[PlannedUnit],
    cache: FrameCache,
    max_side: int | None,
    *,
    mode: SamplingMode = "exact",
    max_offset_s: float | None = None,
    threads: int = 0,
) -> int:
    """Decode every uncached unit's frames in ONE pass over the video; returns units decoded.

    Each cache entry's meta holds the planned ``indices`` and the ``used`` ones, the frames decoded
    (the same in ``exact`` mode unless the stream ends early; see :func:`decode.decode_sampled`)."""
    todo = [u for u in units if not cache.has(u.frames_key)]
    if not todo:
        return 0
    wanted = np.unique(np.concatenate([u.indices for u in todo]))
    out = decode_sampled(path, wanted, max_side=max_side, mode=mode, max_offset_s=max_offset_s, threads=threads)
    if int(wanted[-1]) >= out.info.num_frames:  # never a unit scored on a repeated last frame
        raise VideoError(path, f"only {out.info.num_frames} frames decode, but the units were planned up to frame "
                         f"{int(wanted[-1])} (the file changed or its data ends early since it was indexed); "
                         "materialize dataset_index again")
    pos = {int(f): i for i, f in enumerate(wanted.tolist())}
    for u in todo:
        rows = [pos[int(f)] for f in u.indices]
        meta = {"indices": u.indices.tolist(), "used": out.used[rows].tolist(), "fps": u.frames_fps, "video": str(path)}
        if mode != "exact":
            meta |= {"mode": mode, "max_offset_s": max_offset_s}
        cache.save(u.frames_key, out.frames[rows], meta)
    return len(todo)
