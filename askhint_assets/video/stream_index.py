"""Where each frame of a video stream sits, from one demux pass (no decoding), and which packets a
sample needs.

A frame's display index is the rank of its packet's presentation timestamp, which is the order the
decoder returns frames in. Packets are grouped into *segments*: a keyframe packet and the packets
after it in file (decode) order up to the next keyframe. A segment holding none of the wanted frames
need not be decoded at all, unless the next needed segment opens with leading pictures (frames shown
before its keyframe, as in open GOPs), which may refer back into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import av
import numpy as np

SamplingMode = Literal["exact", "nearest_keyframe"]
SAMPLING_MODES: tuple[str, ...] = ("exact", "nearest_keyframe")


@dataclass(frozen=True)
class StreamIndex:
    """Per packet, in file order: its frame's display index and whether it is a keyframe; and every
    presentation timestamp, sorted (a frame's display index is its timestamp's position here)."""

    display: np.ndarray  # int64
    keyframe: np.ndarray  # bool
    pts_sorted: np.ndarray  # int64

    def display_of(self, pts: int | None) -> int | None:
        """Display index of a decoded frame from its timestamp; ``None`` if no packet has it."""
        if pts is None:
            return None
        i = int(np.searchsorted(self.pts_sorted, pts))
        return i if i < len(self.pts_sorted) and self.pts_sorted[i] == pts else None

    @property
    def num_frames(self) -> int:
        return len(self.display)

    def keyframes(self) -> np.ndarray:
        """Display indices of the keyframes, sorted."""
        return np.sort(self.display[self.keyframe])

    def segments(self) -> np.ndarray:
        """Segment number of each packet (packets before the first keyframe are segment 0 too)."""
        return np.maximum(np.cumsum(self.keyframe) - 1, 0)


def read_index(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> StreamIndex | None:
    """The stream's index, or ``None`` when timestamps cannot give display order (a packet without a
    presentation timestamp, or two packets with the same one): callers then count decoded frames."""
    pts: list[int] = []
    key: list[bool] = []
    for packet in container.demux(stream):
        if not packet.size:  # the demuxer's final empty packet
            continue
        if packet.pts is None:
            return None
        pts.append(packet.pts)
        key.append(packet.is_keyframe)
    if not pts:
        return None
    p = np.asarray(pts, dtype=np.int64)
    order = np.argsort(p, kind="stable")
    if np.any(np.diff(p[order]) == 0):
        return None
    display = np.empty(len(p), dtype=np.int64)
    display[order] = np.arange(len(p))
    return StreamIndex(display, np.asarray(key, dtype=bool), p[order])


def nearest(candidates: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """For each wanted index, the nearest of the sorted ``candidates`` (the earlier one on a tie)."""
    pos = np.clip(np.searchsorted(candidates, wanted), 1, len(candidates) - 1) if len(candidates) > 1 else None
    if pos is None:
        return np.full(len(wanted), candidates[0], dtype=np.int64)
    before, after = candidates[pos - 1], candidates[pos]
    return np.where(wanted - before <= after - wanted, before, after).astype(np.int64)


def frames_to_use(
    index: StreamIndex, wanted: np.ndarray, mode: SamplingMode, max_offset: int | None = None
) -> np.ndarray:
    """The display index to decode for each of ``wanted`` (sorted, unique, within the stream).

    ``exact``: ``wanted`` itself. ``nearest_keyframe``: the nearest keyframe (a keyframe decodes on
    its own); with ``max_offset`` (frames), a wanted frame whose nearest keyframe is further away
    gets a decoded frame instead: in each group of pictures the decoder runs from the keyframe to the
    earliest frame that keeps every such wanted frame within the bound, and the wanted frames it
    passes on the way are taken exactly. So ``|used - wanted| <= max_offset`` always.
    """
    if mode == "exact":
        return wanted.copy()
    if mode != "nearest_keyframe":
        raise ValueError(f"sampling mode must be one of {SAMPLING_MODES}, got {mode!r}")
    keys = index.keyframes()
    if len(keys) == 0:
        return wanted.copy()
    near = nearest(keys, wanted)
    if max_offset is None:
        return near
    if max_offset < 0:
        raise ValueError(f"max_offset must be >= 0 frames, got {max_offset}")
    used = near.copy()
    far = np.abs(near - wanted) > max_offset
    group = np.searchsorted(keys, wanted, side="right")  # 0: before the first keyframe
    for g in np.unique(group[far]):
        members = group == g
        if g == 0:  # no keyframe before them: decode them as asked
            used[members] = wanted[members]
            continue
        end = int((wanted[members & far] - max_offset).max())  # decode up to here, not further
        for i in np.flatnonzero(members):
            w = int(wanted[i])
            if w <= end:
                used[i] = w
            elif far[i]:
                used[i] = end  # end >= w - max_offset by its definition
    return used


def packets_to_feed(index: StreamIndex, used: np.ndarray) -> np.ndarray:
    """Per packet (file order): whether the decoder must see it to output the ``used`` frames.

    In each segment holding a used frame: its packets from the keyframe up to the last used one
    (frames the decoder is shown but not asked for are dropped by it when nothing refers to them).
    A segment whose fed packets go past its keyframe and that opens with leading pictures (shown
    before its keyframe, open GOPs) may refer back: the segment before it is then fed whole.
    """
    seg = index.segments()
    n_seg = int(seg[-1]) + 1
    starts = np.searchsorted(seg, np.arange(n_seg))
    ends = np.append(starts[1:], len(seg))
    upto = np.full(n_seg, -1, dtype=np.int64)  # last file position to feed, per segment
    pos = np.flatnonzero(np.isin(index.display, used))
    np.maximum.at(upto, seg[pos], pos)
    for s in range(n_seg - 2, -1, -1):
        nxt = s + 1
        if upto[nxt] > starts[nxt]:
            members = index.display[starts[nxt] : ends[nxt]]
            if members.min() < index.display[starts[nxt]]:
                upto[s] = ends[s] - 1
    feed = np.zeros(len(seg), dtype=bool)
    for s in np.flatnonzero(upto >= 0):
        feed[starts[s] : upto[s] + 1] = True
    return feed
