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
import multiprocessing
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from askhint_assets.errors import AskHintError, VideoError
from askhint_assets.file_lock import exclusive
from askhint_assets.video.frame_cache import FrameCache
from askhint_assets.video.sampling import SamplingConfig, Window
from askhint_assets.video.stream_index import SamplingMode
from askhint_assets.video.units import PlannedUnit, extract_units

# errors writing the cache that say nothing about the video (blaming the video would be wrong)
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def decode_failure_reason(e: Exception, cache: FrameCache) -> str:
    """Why a video could not be decoded into ``cache``; raises ``AskHintError`` instead when the fault
    is the cache's disk (full, over quota, read-only), which no other video would escape."""
    if isinstance(e, OSError) and e.errno in _DISK_ERRNOS:
        raise _disk_error(cache.root, e.strerror) from e
    return getattr(e, "reason", None) or str(e)


def _disk_error(cache_root: Path, reason: str | None) -> AskHintError:
    return AskHintError(f"{cache_root}: cannot write decoded frames ({reason}); "
                        "free space or make it writable, then materialize again")


@dataclass(frozen=True)
class UnitFrames:
    """Where one unit's frames come from: its video and the frames sampled for it."""

    video_id: str
    path: str
    unit: PlannedUnit


@dataclass(frozen=True)
class DecodeOptions:
    """How a cache miss is decoded. ``max_side``, ``mode`` and ``max_offset_s`` must be the plan's
    (:class:`SamplingConfig`); ``workers``: 0 decodes in the calling process, N a pool of N worker
    processes that decode the next videos (in the units' order) while the caller uses the current one;
    ``ahead``: at most this many videos decoding or decoded and not yet read (0: twice ``workers``),
    which bounds the frames waiting in the cache for the model and the work lost if the run stops."""

    max_side: int | None = None
    mode: SamplingMode = "exact"
    max_offset_s: float | None = None
    workers: int = 0
    ahead: int = 0
    threads: int = 0  # FFmpeg threads when decoding in the calling process (a worker process uses 1)
    # bytes of frames one pass may hold for the units a video is expected to ask next (FrameSource.expect)
    ahead_bytes: int = 0

    @classmethod
    def for_plan(cls, sampling: SamplingConfig, workers: int = 0, ahead: int = 0, ahead_bytes: int = 0
                 ) -> DecodeOptions:
        return cls(sampling.max_side, sampling.mode, sampling.max_offset_s, workers, ahead, ahead_bytes=ahead_bytes)


def default_workers() -> int:
    """Decoding processes when the settings say 0: the cores this process may use, minus one (for the
    process feeding the model), at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


class FrameSource:
    """``load(frames_key)``: the unit's frames, or ``None`` when its video cannot be decoded (the reason
    is in :attr:`failed`). A miss decodes every unit of that video in one pass, under a per-video file
    lock, so two processes never decode the same video at once (the second finds it cached). With
    ``workers`` (see :class:`DecodeOptions`) a miss also starts the next videos in a process pool; one
    video that cannot be decoded, or that kills its worker, fails alone. Close it (or use ``with``)."""

    def __init__(self, cache: FrameCache, units: Iterable[UnitFrames], decode: int | DecodeOptions | None) -> None:
        self.cache = cache
        self.options = decode if isinstance(decode, DecodeOptions) else DecodeOptions(max_side=decode)
        self.by_key: dict[str, UnitFrames] = {}
        self.by_video: dict[str, list[PlannedUnit]] = {}
        self.paths: dict[str, str] = {}
        for u in units:
            self.by_key[u.unit.frames_key] = u
            self.by_video.setdefault(u.video_id, []).append(u.unit)
            self.paths[u.video_id] = u.path
        self.order = list(self.by_video)  # videos in the order their units come
        self.position = {v: i for i, v in enumerate(self.order)}
        self.failed: dict[str, str] = {}  # video id -> reason
        self.decoded_units = 0
        self._pool: ProcessPoolExecutor | None = None
        self._jobs: dict[str, Future] = {}  # video id -> its decoding, submitted and not yet waited for
        self._started: set[str] = set()  # videos whose frames were asked for
        self.ahead: dict[str, list[list[PlannedUnit]]] = {}  # video id -> units it may ask next, in groups
        self._ahead_keys: set[str] = set()  # keys expected that were not cached then: ours to drop if never asked

    def add(self, units: Iterable[UnitFrames]) -> None:
        """More units to serve (a tree's next level: its nodes are known only once their parents are answered).
        A video's next miss decodes only its units not yet cached, in one pass; its worker pool, if any, stays."""
        for u in units:
            if u.unit.frames_key in self.by_key:
                continue
            self.by_key[u.unit.frames_key] = u
            if u.video_id not in self.by_video:
                self.position[u.video_id] = len(self.order)
                self.order.append(u.video_id)
            self.by_video.setdefault(u.video_id, []).append(u.unit)
            self.paths[u.video_id] = u.path

    def expect(self, ahead: Mapping[str, Sequence[Sequence[PlannedUnit]]]) -> None:
        """Units each video may ask for later (a tree's levels below the nodes just added), in groups: its next
        pass also decodes and caches the first groups that fit in ``DecodeOptions.ahead_bytes`` (whole groups,
        :func:`askhint_assets.video.units.units_ahead`), so a later level finds them cached. Replaces what was
        expected of these videos before; :meth:`drop_unasked` removes what no unit asked for."""
        for video_id, groups in ahead.items():
            self.ahead[video_id] = [list(g) for g in groups]
            self._ahead_keys.update(u.frames_key for g in groups for u in g
                                    if u.frames_key not in self._ahead_keys and u.frames_key not in self.by_key
                                    and not self.cache.path_for(u.frames_key).is_file())

    def drop_unasked(self) -> int:
        """Remove the cached frames decoded ahead for units that were never added (nodes no level asked); the
        number removed. Frames cached before they were expected are kept."""
        gone = [p for k in self._ahead_keys if k not in self.by_key and (p := self.cache.path_for(k)).is_file()]
        for p in gone:
            p.unlink(missing_ok=True)
        self._ahead_keys.clear()
        self.ahead.clear()
        return len(gone)

    def load(self, key: str) -> np.ndarray | None:
        src = self.by_key.get(key)
        if src is not None and self.options.workers > 0 and src.video_id not in self._started:
            self._started.add(src.video_id)
            self._submit_ahead(src.video_id)  # keep the next videos decoding while this one is used
        if src is not None and src.video_id in self._jobs:  # decoding or decoded ahead: wait, account
            self.prepare(src.video_id)
        entry = self.cache.get(key)
        if entry is not None:
            return entry[0]
        if src is None:
            raise KeyError(f"frames {key}: not in the frame cache and not a planned unit; materialize sampled_frames")
        if not self.prepare(src.video_id):  # also False for a video that failed before
            return None
        entry = self.cache.get(key)
        return entry[0] if entry is not None else None

    def prepare(self, video_id: str) -> bool:
        """Decode ``video_id``'s uncached units (waiting for its worker with a pool, and starting the
        next videos'); False if it cannot be decoded."""
        if video_id in self.failed:
            return False
        if self.options.workers <= 0:
            return self._decode_here(video_id)
        self._submit_ahead(video_id)
        job = self._jobs.pop(video_id, None) or self._submit(video_id)
        try:
            n, failure = job.result()
        except BrokenProcessPool:  # a worker died, decoding this video or another: try this one alone
            self._restart()
            try:
                n, failure = self._submit(video_id).result()
            except BrokenProcessPool:
                self._restart()
                n, failure = 0, ("failed", "the decoding process died while decoding this video (crashed decoder?)")
        return self._settle(video_id, n, failure)

    def prepare_all(self) -> dict[str, str]:
        """Decode every video's uncached units (in order, through the pool if any); the failed ones."""
        for v in self.order:
            self.prepare(v)
        return dict(self.failed)

    def close(self) -> None:
        """Stop the worker processes (a video being decoded is finished and cached first)."""
        self._jobs.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _decode_here(self, video_id: str) -> bool:
        return self._settle(video_id, *_decode_video(self.paths[video_id], self.by_video[video_id],
                                                     str(self.cache.root), self.options, self.ahead.get(video_id, [])))

    def _settle(self, video_id: str, n: int, failure: tuple[str, str] | None) -> bool:
        """Account one video's decoding (here or in a worker): False if it failed; a full or read-only
        cache disk raises, since no other video would escape it."""
        if failure is not None and failure[0] == "disk":
            raise _disk_error(self.cache.root, failure[1])
        self.decoded_units += n
        if failure is not None:
            self.failed[video_id] = failure[1]
            return False
        return True

    def _submit_ahead(self, video_id: str) -> None:
        """Start ``video_id`` and the videos after it (in order) while fewer than ``ahead`` are in flight."""
        ahead = self.options.ahead or 2 * self.options.workers
        for v in self.order[self.position[video_id] :]:
            if len(self._jobs) >= ahead:
                return
            if v not in self._jobs and v not in self.failed and not self._cached(v):
                self._jobs[v] = self._submit(v)

    def _cached(self, video_id: str) -> bool:
        return all(self.cache.path_for(u.frames_key).is_file() for u in self.by_video[video_id])

    def _submit(self, video_id: str) -> Future:
        """Start decoding ``video_id`` in the pool; a pool a dead worker broke is replaced first (its death
        may be noticed only here, before the job that waited on it is read)."""
        for attempt in (0, 1):
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.options.workers, mp_context=multiprocessing.get_context("spawn"))
            try:
                return self._pool.submit(_decode_video, self.paths[video_id], self.by_video[video_id],
                                         str(self.cache.root), replace(self.options, workers=0, threads=1),
                                         self.ahead.get(video_id, []))
            except BrokenProcessPool:
                if attempt:
                    raise
                self._restart()
        raise AssertionError("unreachable")

    def _restart(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._jobs.clear()  # the others in flight died with it: they are submitted again when needed


def _decode_video(path: str, units: list[PlannedUnit], cache_root: str, options: DecodeOptions,
                  ahead: Sequence[Sequence[PlannedUnit]] = ()) -> tuple[int, tuple[str, str] | None]:
    """Decode one video's uncached units (and what fits of ``ahead``) into the cache, under its lock (in a worker
    or here):
    ``(units decoded, None)``, or ``(0, ("failed" | "disk", reason))``; plain values, so a worker's
    answer always crosses back to the parent."""
    cache = FrameCache(cache_root)
    lock_dir = cache.root / ".decode-locks"
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        with exclusive(lock_dir / (Path(path).name + ".lock")):
            n = extract_units(path, units, cache, options.max_side, mode=options.mode,
                              max_offset_s=options.max_offset_s, threads=options.threads, ahead=ahead,
                              ahead_bytes=options.ahead_bytes)
    except (VideoError, OSError, ValueError) as e:
        if isinstance(e, OSError) and e.errno in _DISK_ERRNOS:
            return 0, ("disk", e.strerror or str(e))
        return 0, ("failed", getattr(e, "reason", None) or str(e))
    return n, None


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
