"""Turn video, window or snippet scores into one score per frame.

Smoothing and the window rule are fixed settings (from config), never tuned on test labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def video_frame_scores(score: float, num_frames: int) -> np.ndarray:
    """One score for the whole video, repeated on every frame."""
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    return np.full(num_frames, float(score), dtype=np.float64)


def window_frame_scores(windows: Sequence[tuple[int, int, float]], num_frames: int, rule: str = "mean") -> np.ndarray:
    """Frame scores from scored windows ``(start, end, score)``, 0-based, ``end`` excluded.

    Each frame gets the mean (``rule="mean"``) or max (``rule="max"``) of the windows covering it.
    Windows are clipped to ``[0, num_frames)``. A frame that no window covers takes the value of the
    nearest covered frame, i.e. the nearest window's score (ties go to the earlier frame).
    Raises ValueError for an unknown rule, an empty window (``end <= start``), a non-finite score,
    or when no window overlaps the video.
    """
    if rule not in ("mean", "max"):
        raise ValueError(f"unknown rule {rule!r}; use 'mean' or 'max'")
    total = np.zeros(num_frames, dtype=np.float64)
    count = np.zeros(num_frames, dtype=np.int64)
    best = np.full(num_frames, -np.inf)
    for start, end, score in windows:
        start, end, score = int(start), int(end), float(score)
        if end <= start:
            raise ValueError(f"window [{start}, {end}) is empty")
        if not math.isfinite(score):
            raise ValueError(f"window [{start}, {end}) has a non-finite score")
        s, e = max(0, start), min(num_frames, end)
        if s >= e:
            continue
        if rule == "mean":
            total[s:e] += score  # slices, not prefix sums: equal windows give bit-equal frames
            count[s:e] += 1
        else:
            np.maximum(best[s:e], score, out=best[s:e])
    if rule == "mean":
        covered = count > 0
        out = np.zeros(num_frames)
        out[covered] = total[covered] / count[covered]
    else:
        covered = np.isfinite(best)
        out = np.where(covered, best, 0.0)
    if num_frames and not covered.any():
        raise ValueError(f"no window overlaps the video's {num_frames} frames")
    if not covered.all():
        out = _fill_nearest(out, covered)
    return out


def _fill_nearest(values: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Give each uncovered frame the value of its nearest covered frame (earlier one on ties)."""
    idx = np.flatnonzero(covered)
    frames = np.arange(len(values))
    right = np.clip(np.searchsorted(idx, frames), 0, len(idx) - 1)
    left = np.clip(right - 1, 0, len(idx) - 1)
    use_left = np.abs(frames - idx[left]) <= np.abs(idx[right] - frames)
    nearest = np.where(use_left, idx[left], idx[right])
    return np.where(covered, values, values[nearest])


def smooth(scores: np.ndarray, kernel: int) -> np.ndarray:
    """Centred moving average over ``kernel`` frames (odd; 1 = no smoothing).

    At the edges the average covers only the frames that exist. ``kernel`` is a fixed config
    setting: choosing it by looking at test labels inflates AUC (a known pitfall).
    """
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be a positive odd number, got {kernel}")
    x = np.asarray(scores, dtype=np.float64)
    if kernel == 1 or len(x) == 0:
        return x.copy()
    h = kernel // 2
    c = np.r_[0.0, np.cumsum(x)]
    i = np.arange(len(x))
    lo, hi = np.maximum(0, i - h), np.minimum(len(x), i + h + 1)
    return (c[hi] - c[lo]) / (hi - lo)


def repeat_snippets(snippet_scores: np.ndarray, num_frames: int, snippet: int = 16) -> np.ndarray:
    """Repeat each snippet's score over its ``snippet`` frames (feature-based methods' convention).

    Accepts ``floor`` or ``ceil(num_frames / snippet)`` snippets (truncated or padded videos):
    extra frames are cut, and frames past the last snippet take the last snippet's score.
    """
    s = np.asarray(snippet_scores, dtype=np.float64).ravel()
    lo, hi = num_frames // snippet, -(-num_frames // snippet)
    if not lo <= len(s) <= hi or (len(s) == 0 and num_frames > 0):
        raise ValueError(f"{len(s)} snippets of {snippet} frames do not fit {num_frames} frames (expected {lo}-{hi})")
    out = np.repeat(s, snippet)[:num_frames]
    if len(out) < num_frames:
        out = np.r_[out, np.full(num_frames - len(out), s[-1])]
    return out
