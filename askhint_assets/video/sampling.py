"""Which frames the model sees: the ASK-Hint sampling rule and the windows a video is cut into."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from askhint_assets.video.stream_index import SAMPLING_MODES, SamplingMode


@dataclass(frozen=True)
class SamplingConfig:
    """ASK-Hint sampling: up to ``max_frames`` uniform frames, ``fallback_fps`` for short clips.

    ``max_side`` bounds the longer side of decoded frames (pixels; ``None`` keeps the original size).
    ``mode``: ``exact`` decodes the sampled frames themselves; ``nearest_keyframe`` takes for each the
    nearest keyframe, or with ``max_offset_s`` a frame at most that many seconds away (see
    :func:`stream_index.frames_to_use`), and records the frames it used.
    """

    max_frames: int = 128
    fallback_fps: float = 1.0
    min_frames: int = 2
    max_side: int | None = 448
    mode: SamplingMode = "exact"
    max_offset_s: float | None = None

    def __post_init__(self) -> None:
        if self.max_frames < 1 or self.min_frames < 1 or self.min_frames > self.max_frames:
            raise ValueError("need 1 <= min_frames <= max_frames")
        if self.fallback_fps <= 0:
            raise ValueError("fallback_fps must be > 0")
        if self.max_side is not None and self.max_side < 2:
            raise ValueError("max_side must be >= 2 or None")
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"mode must be one of {', '.join(SAMPLING_MODES)}, got {self.mode!r}")
        if self.max_offset_s is not None and (self.mode == "exact" or not self.max_offset_s >= 0):
            raise ValueError("max_offset_s must be None or >= 0, and only with mode nearest_keyframe")

    def plan_fields(self) -> dict:
        """The decoding choices that change which frames a unit gets, for its frames key: empty for
        ``exact`` (so exact units keep the keys they had before modes existed)."""
        return {} if self.mode == "exact" else {"mode": self.mode, "max_offset_s": self.max_offset_s}


def sample_indices(
    num_frames: int, fps: float, cfg: SamplingConfig | None = None, start: int = 0, end: int | None = None
) -> np.ndarray:
    """Frame indices to decode from ``[start, end)`` (default: the whole video).

    Rule: ``n = min(max_frames, max(min_frames, floor(duration_s * fallback_fps)), frames_in_range)``
    where ``duration_s = frames_in_range / fps``; so a long range gets ``max_frames`` frames and a short
    one about ``fallback_fps`` frames per second, never fewer than ``min_frames`` (if it has them).
    The range is cut into ``n`` equal segments and the centre frame of each is taken, giving sorted,
    unique int64 indices. An empty range gives an empty array.
    """
    cfg = cfg or SamplingConfig()
    if not fps or fps <= 0 or not math.isfinite(fps):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    end = num_frames if end is None else min(end, num_frames)
    start = max(0, start)
    length = end - start
    if length <= 0:
        return np.empty(0, dtype=np.int64)
    duration_s = length / fps
    n = min(cfg.max_frames, max(cfg.min_frames, math.floor(duration_s * cfg.fallback_fps)), length)
    idx = start + np.floor((np.arange(n) + 0.5) * length / n).astype(np.int64)
    return np.unique(idx)


@dataclass(frozen=True)
class Window:
    """A half-open frame range ``[start, end)`` of a video; ``index`` counts windows from 0."""

    index: int
    start: int
    end: int

    @property
    def num_frames(self) -> int:
        return self.end - self.start


def plan_windows(
    num_frames: int,
    fps: float,
    mode: Literal["video", "window"],
    window_s: float = 4.0,
    stride_s: float | None = None,
    window_frames: int | None = None,
    stride_frames: int | None = None,
) -> list[Window]:
    """Cut a video into the windows that are each asked about.

    ``video``: one window, the whole video. ``window``: windows of ``window_frames`` frames (default
    ``round(window_s * fps)``) starting every ``stride_frames`` frames (default ``round(stride_s * fps)``,
    and ``stride_s`` defaults to ``window_s``: no overlap). Windows start at 0 and stop once one
    reaches the end; the last one is clipped to the video's end, so together they cover every frame.
    A video with no frames has no windows.
    """
    if num_frames <= 0:
        return []
    if mode == "video":
        return [Window(0, 0, num_frames)]
    if mode != "window":
        raise ValueError(f"mode must be 'video' or 'window', got {mode!r}")
    if window_frames is None:
        if not fps or fps <= 0:
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        window_frames = round(window_s * fps)
    if stride_frames is None:
        stride_frames = window_frames if stride_s is None else round(stride_s * fps)
    if window_frames < 1 or stride_frames < 1:
        raise ValueError(f"window ({window_frames}) and stride ({stride_frames}) must be >= 1 frame")
    if stride_frames > window_frames:
        raise ValueError(f"stride ({stride_frames}) larger than window ({window_frames}) would skip frames")
    out: list[Window] = []
    start = 0
    while True:
        end = min(start + window_frames, num_frames)
        out.append(Window(len(out), start, end))
        if end >= num_frames:
            return out
        start += stride_frames
