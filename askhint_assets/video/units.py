"""Scoring units: the windows of a video, the frames sampled for each, decoded once and cached.

A unit's ``frames_key`` is a hash of the video's content fingerprint, the window and the sampling
settings, so frames are decoded once per (video, window, settings) whatever prompts or models
follow, and a rerun finds them in the cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from askhint_assets.datasets.base import VideoRecord
from askhint_assets.errors import VideoError
from askhint_assets.hashing import hash_obj
from askhint_assets.video.decode import decode_sampled, probe, target_size
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
    ahead: Sequence[Sequence[PlannedUnit]] = (),
    ahead_bytes: int = 0,
    reuse: bool = True,
) -> int:
    """Cache every uncached unit's frames, decoding at most ONE pass over the video; returns units written.

    Where a unit's frames do not depend on the other frames of the pass (:func:`ahead_is_exact`), a unit whose
    frames all lie in the cached units among ``units`` (a tree node's, in its parent's) is cut from those
    (``reuse``), and ``ahead`` (groups of units a later call may ask for: a tree's next levels, in order) are added
    to the pass as far as :func:`units_ahead` lets them fit in ``ahead_bytes`` at ``max_side``; of those, only the
    units needing a frame the pass would not otherwise decode are cached (the others are cut later). Each cache
    entry's meta holds the planned ``indices`` and the ``used`` ones, the frames decoded (the same in ``exact`` mode
    unless the stream ends early; see :func:`decode.decode_sampled`)."""
    todo = [u for u in units if not cache.has(u.frames_key)]
    if not todo:
        return 0
    exact = ahead_is_exact(mode, max_offset_s)
    written = 0
    if reuse and exact:
        keys = {u.frames_key for u in todo}
        cut = _cut_from_cached(path, todo, [u for u in units if u.frames_key not in keys], cache, mode, max_offset_s)
        todo = [u for u in todo if u.frames_key not in cut]
        written = len(cut)
        if not todo:
            return written
    if ahead and ahead_bytes > 0 and exact:
        info = probe(path)
        w, h = target_size(info.width, info.height, max_side)
        extra = units_ahead(todo, [[u for u in g if not cache.has(u.frames_key)] for g in ahead], 3 * w * h,
                            ahead_bytes)
        if reuse:  # a unit whose frames the pass decodes anyway is cut from the cache when it is asked
            have = {int(i) for u in todo for i in u.indices}
            extra = [u for u in extra if not have.issuperset(u.indices.tolist())]
        todo += extra
    wanted = np.unique(np.concatenate([u.indices for u in todo]))
    out = decode_sampled(path, wanted, max_side=max_side, mode=mode, max_offset_s=max_offset_s, threads=threads)
    if int(wanted[-1]) >= out.info.num_frames:  # never a unit scored on a repeated last frame
        raise VideoError(path, f"only {out.info.num_frames} frames decode, but the units were planned up to frame "
                         f"{int(wanted[-1])} (the file changed or its data ends early since it was indexed); "
                         "materialize dataset_index again")
    pos = {int(f): i for i, f in enumerate(wanted.tolist())}
    for u in todo:
        rows = [pos[int(f)] for f in u.indices]
        _save(cache, u, out.frames[rows], out.used[rows].tolist(), path, mode, max_offset_s)
    return written + len(todo)


def _save(cache: FrameCache, u: PlannedUnit, frames: np.ndarray, used: list[int], path: str | Path,
          mode: SamplingMode, max_offset_s: float | None) -> None:
    meta = {"indices": u.indices.tolist(), "used": used, "fps": u.frames_fps, "video": str(path)}
    if mode != "exact":
        meta |= {"mode": mode, "max_offset_s": max_offset_s}
    cache.save(u.frames_key, frames, meta)


def _cut_from_cached(path: str | Path, todo: list[PlannedUnit], cached: list[PlannedUnit], cache: FrameCache,
                     mode: SamplingMode, max_offset_s: float | None) -> set[str]:
    """Cache the units of ``todo`` whose planned frames all lie in the entries of ``cached`` (same video, same
    sampling), cut from those entries; their keys. Only where a frame does not depend on the pass
    (:func:`ahead_is_exact`), so the bytes are those a decode of the unit alone gives."""
    need = {int(i) for u in todo for i in u.indices}
    frames: dict[int, np.ndarray] = {}
    used: dict[int, int] = {}
    for c in cached:
        if need.isdisjoint(c.indices.tolist()):
            continue
        entry = cache.get(c.frames_key)
        if entry is None or len(entry[0]) != len(entry[1].get("indices", ())):
            continue
        for k, (i, d) in enumerate(zip(entry[1]["indices"], entry[1]["used"], strict=True)):
            if int(i) in need and int(i) not in frames:
                frames[int(i)], used[int(i)] = entry[0][k], int(d)
    out = set()
    for u in todo:
        if frames.keys() >= set(u.indices.tolist()):
            idx = u.indices.tolist()
            _save(cache, u, np.stack([frames[i] for i in idx]), [used[i] for i in idx], path, mode, max_offset_s)
            out.add(u.frames_key)
    return out


def ahead_is_exact(mode: SamplingMode, max_offset_s: float | None) -> bool:
    """Whether a unit decoded in a larger pass gets the same frames as decoded alone: in ``exact`` mode, and in
    ``nearest_keyframe`` without a bound (the nearest keyframe of each frame); with ``max_offset_s`` the frames used
    depend on the other frames of the pass, so units ahead are not decoded with it."""
    return mode == "exact" or max_offset_s is None


def units_ahead(units: Sequence[PlannedUnit], ahead: Sequence[Sequence[PlannedUnit]], frame_bytes: int,
                budget: int) -> list[PlannedUnit]:
    """The units of the first groups of ``ahead`` whose distinct frames, with ``units``', take at most ``budget``
    bytes (``frame_bytes`` a frame); whole groups only, in order, stopping at the first that does not fit."""
    frames = {int(i) for u in units for i in u.indices}
    out: list[PlannedUnit] = []
    for group in ahead:
        more = frames | {int(i) for u in group for i in u.indices}
        if len(more) * frame_bytes > budget:
            break
        frames = more
        out += group
    return out
