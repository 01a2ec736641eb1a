"""Frames for the model: from the frame cache, or decoded on demand (one pass per video, all its units).

``sampled_frames`` decodes every unit ahead of the model by default (``execution.decode: upfront``).
With ``execution.decode: overlapped`` it only plans, and the prediction assets decode through a
:class:`FrameSource` on their prefetch thread, so decoding the next chunk's videos overlaps the model
answering the current chunk. Either way a cache miss (a cleared cache, a unit decoded by nobody yet) is
decoded here rather than failing, and a video that cannot be decoded is reported, not raised, so the
other videos are scored.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from askhint_assets.errors import AskHintError, VideoError
from askhint_assets.file_lock import exclusive
from askhint_assets.video.frame_cache import FrameCache
from askhint_assets.video.sampling import Window
from askhint_assets.video.units import PlannedUnit, extract_units

# errors writing the cache that say nothing about the video (blaming the video would be wrong)
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def decode_failure_reason(e: Exception, cache: FrameCache) -> str:
    """Why a video could not be decoded into ``cache``; raises ``AskHintError`` instead when the fault
    is the cache's disk (full, over quota, read-only), which no other video would escape."""
    if isinstance(e, OSError) and e.errno in _DISK_ERRNOS:
        raise AskHintError(f"{cache.root}: cannot write decoded frames ({e.strerror}); "
                           "free space or make it writable, then materialize again") from e
    return getattr(e, "reason", None) or str(e)


@dataclass(frozen=True)
class UnitFrames:
    """Where one unit's frames come from: its video and the frames sampled for it."""

    video_id: str
    path: str
    unit: PlannedUnit


class FrameSource:
    """``load(frames_key)``: the unit's frames, or ``None`` when its video cannot be decoded (the reason
    is in :attr:`failed`). A miss decodes every unit of that video in one pass, under a per-video file
    lock, so two processes never decode the same video at once (the second finds it cached)."""

    def __init__(self, cache: FrameCache, units: Iterable[UnitFrames], max_side: int | None) -> None:
        self.cache = cache
        self.max_side = max_side
        self.by_key: dict[str, UnitFrames] = {}
        self.by_video: dict[str, list[PlannedUnit]] = {}
        for u in units:
            self.by_key[u.unit.frames_key] = u
            self.by_video.setdefault(u.video_id, []).append(u.unit)
        self.failed: dict[str, str] = {}  # video id -> reason
        self.decoded_units = 0

    def load(self, key: str) -> np.ndarray | None:
        entry = self.cache.get(key)
        if entry is not None:
            return entry[0]
        src = self.by_key.get(key)
        if src is None:
            raise KeyError(f"frames {key}: not in the frame cache and not a planned unit; materialize sampled_frames")
        if src.video_id in self.failed:
            return None
        try:
            with self._video_lock(src.path):
                if self.cache.get(key) is None:  # another process may have decoded it meanwhile
                    self.decoded_units += extract_units(src.path, self.by_video[src.video_id], self.cache,
                                                        self.max_side)
        except (VideoError, OSError, ValueError) as e:
            self.failed[src.video_id] = decode_failure_reason(e, self.cache)
            return None
        entry = self.cache.get(key)
        return entry[0] if entry is not None else None

    def _video_lock(self, path: str):
        lock_dir = self.cache.root / ".decode-locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        return exclusive(lock_dir / (Path(path).name + ".lock"))


def unit_frames(rows: Iterable[dict]) -> list[UnitFrames]:
    """:class:`UnitFrames` from ``scoring_units`` rows joined with the videos' ``path``."""
    return [
        UnitFrames(
            video_id=r["video_id"],
            path=r["path"],
            unit=PlannedUnit(
                window=Window(index=r["unit"], start=r["start_frame"], end=r["end_frame"]),
                indices=np.asarray(r["frame_indices"], dtype=np.int64),
                frames_key=r["frames_key"],
                frames_fps=r["frames_fps"],
            ),
        )
        for r in rows
    ]
