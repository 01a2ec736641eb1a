"""Probe, decode and write videos with PyAV; every failure is a ``VideoError`` naming the file."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from askhint_assets.errors import VideoError

# Metadata frame counts further than this from duration * fps are not trusted.
_PLAUSIBLE_REL = 0.1


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds. ``frames_from`` says whether ``num_frames`` came from the container's
    metadata or from counting packets/frames."""

    num_frames: int
    fps: float
    width: int
    height: int
    duration_s: float
    codec: str
    frames_from: Literal["metadata", "counted"] = "metadata"


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(path, "file not found")
    if not path.is_file():
        raise VideoError(path, "not a file")
    if path.stat().st_size == 0:
        raise VideoError(path, "file is empty (0 bytes)")


def _open(path: Path) -> av.container.InputContainer:
    _check_file(path)
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise VideoError(
            path, f"cannot open as media: not a video file, or its header is corrupt/truncated ({_msg(e)})"
        ) from e
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        container.close()
        raise VideoError(path, f"no video stream (streams: {', '.join(kinds)})")
    return container


def _msg(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e)


def probe(path: str | Path) -> VideoInfo:
    """Read frame count, fps, size and codec from the container.

    When the frame count is missing, zero or implausible (more than 10% away from duration × fps),
    the video stream's packets are counted by demuxing (no decoding) and ``frames_from="counted"``.
    """
    path = Path(path)
    container = _open(path)
    try:
        s = container.streams.video[0]
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else 0.0
        duration = 0.0
        if s.duration and s.time_base:
            duration = float(s.duration * s.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        n = int(s.frames or 0)
        source: Literal["metadata", "counted"] = "metadata"
        expected = duration * fps
        if n <= 0 or (expected > 0 and abs(n - expected) > max(2.0, _PLAUSIBLE_REL * expected)):
            n = _count_packets(path, container)
            source = "counted"
        if not (fps > 0 and math.isfinite(fps)):
            if duration <= 0:
                raise VideoError(path, "frame rate unknown (no rate and no duration in the container)")
            fps = n / duration
        if duration <= 0:
            duration = n / fps
        width, height = s.codec_context.width, s.codec_context.height
        if n <= 0 or width <= 0 or height <= 0:
            raise VideoError(path, f"video stream holds no frames ({n} frames, {width}x{height})")
        return VideoInfo(n, fps, width, height, duration, s.codec_context.name, source)
    finally:
        container.close()


def _count_packets(path: Path, container: av.container.InputContainer) -> int:
    s = container.streams.video[0]
    n = 0
    try:
        for packet in container.demux(s):
            if packet.size:
                n += 1
    except av.FFmpegError as e:
        if n == 0:
            raise VideoError(path, f"cannot read video packets ({_msg(e)})") from e
    return n


def target_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) scaled so the longer side is <= ``max_side``, both even; unchanged if it fits."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return _even(width * scale, max_side), _even(height * scale, max_side)


def _even(v: float, limit: int) -> int:
    e = round(v / 2) * 2
    return max(2, e - 2 if e > limit else e)


def decode_frames(
    path: str | Path, indices: np.ndarray | list[int], max_side: int | None = None
) -> tuple[np.ndarray, VideoInfo]:
    """Decode the frames at ``indices`` (0-based, any order, repeats allowed) in one sequential pass.

    Returns ``(len(indices), H, W, 3)`` uint8 RGB, resized (area filter) so the longer side is at
    most ``max_side`` with even sides. Decoding stops after the last wanted frame. If the stream ends
    before some wanted index (the metadata over-counted), those get the last decoded frame and the
    returned info carries the true count (``frames_from="counted"``).
    """
    path = Path(path)
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and idx.min() < 0:
        raise ValueError(f"{path}: negative frame index {int(idx.min())}")
    info = probe(path)
    w, h = target_size(info.width, info.height, max_side)
    if idx.size == 0:
        return np.empty((0, h, w, 3), np.uint8), info
    wanted = np.unique(idx)
    got: dict[int, np.ndarray] = {}
    last: av.VideoFrame | None = None
    count = 0
    ended_early = False
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        pos, stop = 0, int(wanted[-1])
        try:
            for frame in container.decode(stream):
                i, last = count, frame
                count += 1
                if i == wanted[pos]:
                    got[i] = _to_rgb(frame, w, h)
                    pos += 1
                    if pos == len(wanted):
                        break
            else:
                ended_early = count <= stop
        except av.FFmpegError as e:
            if count == 0:
                raise VideoError(path, f"corrupt or truncated video data, no frame decoded ({_msg(e)})") from e
            ended_early = True  # a damaged tail: keep what decoded, as if the stream ended here
    finally:
        container.close()
    if count == 0:
        raise VideoError(path, "corrupt or truncated video data: no frame could be decoded")
    if ended_early:  # indices past the real end get the stream's final frame
        info = replace(info, num_frames=count, duration_s=count / info.fps, frames_from="counted")
        got.setdefault(count - 1, _to_rgb(last, w, h))
    out = np.empty((len(idx), h, w, 3), np.uint8)
    for k, i in enumerate(idx):
        out[k] = got[min(int(i), count - 1)] if ended_early else got[int(i)]
    return out, info


def _to_rgb(frame: av.VideoFrame, w: int, h: int) -> np.ndarray:
    return frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA")


def write_video(
    path: str | Path, frames: np.ndarray, fps: float, codec: str = "libx264", crf: int = 18
) -> Path:
    """Write ``(T, H, W, 3)`` uint8 RGB frames as yuv420p video; atomic (temp file, then rename).

    Odd sides are padded by repeating the last row/column. ``libx264`` falls back to ``mpeg4`` when
    PyAV's FFmpeg lacks it.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"{path}: frames must be a non-empty (T, H, W, 3) uint8 array, got "
                         f"{frames.shape} {frames.dtype}")
    ph, pw = frames.shape[1] % 2, frames.shape[2] % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    if codec not in av.codecs_available:
        codec = "mpeg4"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    fmt = {".mkv": "matroska", ".avi": "avi", ".mov": "mov", ".webm": "webm"}.get(path.suffix.lower(), "mp4")
    try:
        with av.open(str(tmp), "w", format=fmt) as out:
            stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            if codec == "libx264":
                stream.options = {"crf": str(crf), "preset": "veryfast"}
            for arr in frames:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")))
            out.mux(stream.encode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
