"""One record type for the videos of every data set."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NORMAL = "Normal"


@dataclass(frozen=True)
class VideoRecord:
    """A test video and its ground truth.

    ``video_id`` is the file name without extension (the join key everywhere; never join by position).
    ``intervals`` are anomalous frame ranges, 0-based and half-open ``[start, end)``.
    ``classes`` holds every class of a multi-label video (XD-Violence); ``label`` the first one, or
    ``Normal``. ``num_frames``/``fps`` come from the video file (or a user list) once known.
    """

    video_id: str
    label: str
    classes: tuple[str, ...] = ()
    intervals: tuple[tuple[int, int], ...] = ()
    path: Path | None = None
    num_frames: int | None = None
    fps: float | None = None
    source_line: int | None = None

    @property
    def is_anomalous(self) -> bool:
        return self.label != NORMAL

    def frame_labels(self, num_frames: int | None = None) -> np.ndarray:
        """0/1 ground truth per frame; intervals are clipped to the video's length."""
        n = num_frames if num_frames is not None else self.num_frames
        if n is None:
            raise ValueError(f"{self.video_id}: number of frames unknown")
        y = np.zeros(n, dtype=np.int8)
        for s, e in self.intervals:
            y[max(0, s) : min(n, e)] = 1
        return y


@dataclass
class Dataset:
    """A loaded data set: its videos in file order plus the videos and annotation lines skipped and why
    (``skipped`` by video id, ``skipped_lines`` by ``file:line``), and ``notes``: warnings
    about videos kept (a duplicate file dropped by a kind's rule, a video shorter than its header says)."""

    name: str
    kind: str
    videos: list[VideoRecord]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    fingerprint: str = ""
    notes: list[str] = field(default_factory=list)
    skipped_lines: list[tuple[str, str]] = field(default_factory=list)  # annotation lines that name no usable video

    def by_id(self) -> dict[str, VideoRecord]:
        return {v.video_id: v for v in self.videos}
