"""Probe, decode and write videos with PyAV; every failure is a ``VideoError`` naming the file."""

from __future__ import annotations

import contextlib
import errno
import math
import os
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from askhint_assets.errors import VideoError
from askhint_assets.video.stream_index import (
    SAMPLING_MODES,
    SamplingMode,
    StreamIndex,
    frames_to_use,
    packets_to_feed,
    read_index,
)

# Metadata frame counts further than this from duration * fps are not trusted.
_PLAUSIBLE_REL = 0.1


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds. ``frames_from`` says whether ``num_frames`` came from the container's
    metadata or from counting packets/frames; ``header_frames`` is the count the header claimed when
    the file holds fewer (its data ends early), else ``None``."""

    num_frames: int
    fps: float
    width: int
    height: int
    duration_s: float
    codec: str
    frames_from: Literal["metadata", "counted"] = "metadata"
    header_frames: int | None = None


def _check_file(path: Path) -> None:
    if not path.exists():
        if path.is_symlink():  # a loop or a link to nothing: say which, not "not found"
            try:
                path.resolve(strict=True)
            except RuntimeError:
                raise VideoError(path, "a symlink loop") from None
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise VideoError(path, "a symlink loop") from None
            raise VideoError(path, f"a symlink to a missing file ({path.readlink()})")
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
    When the header's count is plausible but the file's data does not reach the stream's last keyframe
    (a file cut short after an index written at its front), the frames that decode are counted (one full
    decode, for such files only) and the header's count is kept in ``header_frames``.
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
        header: int | None = None
        expected = duration * fps
        if n <= 0 or (expected > 0 and abs(n - expected) > max(2.0, _PLAUSIBLE_REL * expected)):
            n = _count_packets(path, container)
            source = "counted"
        elif not _data_reaches_end(container, fps) and (decodable := _count_decodable(path)):
            header, n, source = n, decodable, "counted"
            duration = 0.0  # from the frames that are there, below
        if not (fps > 0 and math.isfinite(fps)):
            if duration <= 0:
                raise VideoError(path, "frame rate unknown (no rate and no duration in the container)")
            fps = n / duration
        if duration <= 0:
            duration = n / fps
        width, height = s.codec_context.width, s.codec_context.height
        if n <= 0 or width <= 0 or height <= 0:
            raise VideoError(path, f"video stream holds no frames ({n} frames, {width}x{height})")
        return VideoInfo(n, fps, width, height, duration, s.codec_context.name, source, header)
    finally:
        container.close()


def _data_reaches_end(container: av.container.InputContainer, fps: float) -> bool:
    """Whether the packets from the video stream's last keyframe on reach the stream's end (within 1.5
    frames): a file cut short after an index at its front (mp4 ``faststart``) stops before it. Reads one
    group of pictures' packets, no decoding. A container that cannot seek or states no duration is given
    the benefit of the doubt (decoding still checks, see :func:`decode_sampled`)."""
    s = container.streams.video[0]
    if not s.duration or not s.time_base or not fps:
        return True
    start = s.start_time or 0
    slack = 1.5 / (fps * float(s.time_base))
    try:
        container.seek(start + s.duration, stream=s, backward=True, any_frame=False)
    except av.FFmpegError:
        return True
    reached = None
    try:
        for packet in container.demux(s):
            if packet.size and packet.pts is not None:
                end = packet.pts + (packet.duration or 0)
                reached = end if reached is None else max(reached, end)
    except av.FFmpegError:
        return False
    return reached is not None and reached >= start + s.duration - slack


def _count_decodable(path: Path) -> int:
    """The frames that decode before the data ends or turns bad (every frame is decoded: for a damaged
    file only). 0 leaves the header's count: such a file fails where frames are decoded, with its reason."""
    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        with contextlib.suppress(av.FFmpegError):
            for _ in container.decode(stream):
                n += 1
    return n


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


@dataclass(frozen=True)
class SampledFrames:
    """Decoded frames, one per requested index, and the display index each one actually shows
    (``used``: the requested index in ``exact`` mode, clipped to the stream's end)."""

    frames: np.ndarray  # (len(indices), H, W, 3) uint8 RGB
    used: np.ndarray  # (len(indices),) int64
    info: VideoInfo
    mode: SamplingMode = "exact"
    fell_back: bool = False  # the timestamp index could not be used: every frame up to the last was decoded


def decode_frames(
    path: str | Path, indices: np.ndarray | list[int], max_side: int | None = None
) -> tuple[np.ndarray, VideoInfo]:
    """Decode the frames at ``indices`` (0-based, any order, repeats allowed) exactly.

    Returns ``(len(indices), H, W, 3)`` uint8 RGB, resized (area filter) so the longer side is at
    most ``max_side`` with even sides. If the stream ends before some wanted index (the metadata
    over-counted), those get the last frame and the returned info carries the true count
    (``frames_from="counted"``). See :func:`decode_sampled` for how little is decoded.
    """
    out = decode_sampled(path, indices, max_side, "exact")
    return out.frames, out.info


def decode_sampled(
    path: str | Path,
    indices: np.ndarray | list[int],
    max_side: int | None = None,
    mode: SamplingMode = "exact",
    max_offset_s: float | None = None,
    threads: int = 0,
) -> SampledFrames:
    """Frames for ``indices``: exactly those (``exact``), or near them (``nearest_keyframe``: the
    nearest keyframe, or with ``max_offset_s`` a frame at most ``floor(max_offset_s * fps)`` frames
    away, see :func:`stream_index.frames_to_use`); ``used`` says which frame each one is.
    ``threads``: FFmpeg decoding threads (0: by frame size, :data:`SMALL_FRAME_PIXELS`, for a process with the
    cores to itself; 1: one, for one decoding process per core; more: that many).

    ``exact`` decodes, in one pass, only the groups of pictures that hold a wanted frame, and inside
    them lets the decoder drop the non-reference frames nobody wants (nothing refers to those, so the
    wanted frames come out bit-identical to a full decode). Display order comes from the packets'
    timestamps (:mod:`stream_index`); a stream whose timestamps cannot give it, or that fails
    mid-way, is decoded the plain way instead: every frame up to the last wanted one, counted.
    """
    path = Path(path)
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and idx.min() < 0:
        raise ValueError(f"{path}: negative frame index {int(idx.min())}")
    if mode not in SAMPLING_MODES:
        raise ValueError(f"sampling mode must be one of {SAMPLING_MODES}, got {mode!r}")
    info = probe(path)
    w, h = target_size(info.width, info.height, max_side)
    if idx.size == 0:
        return SampledFrames(np.empty((0, h, w, 3), np.uint8), np.empty(0, np.int64), info, mode)
    wanted = np.unique(idx)
    to_rgb = _RGB(w, h)
    max_offset = None if max_offset_s is None else math.floor(max_offset_s * info.fps + 1e-9)
    indexed = _decode_indexed(path, wanted, mode, max_offset, threads, to_rgb)
    if indexed is not None:
        count, used_of, got = indexed
        fell_back = False
    else:
        count, got = _decode_counted(path, wanted, threads, to_rgb)
        used_of = {int(i): min(int(i), count - 1) for i in wanted}
        fell_back = True
    if int(wanted[-1]) >= count:  # the metadata over-counted: the true count, from the stream
        info = replace(info, num_frames=count, duration_s=count / info.fps, frames_from="counted")
    used = np.array([used_of[int(i)] for i in idx], dtype=np.int64)
    out = np.empty((len(idx), h, w, 3), np.uint8)
    for k, u in enumerate(used):
        out[k] = got[int(u)]
    return SampledFrames(out, used, info, mode, fell_back)


class _RGB:
    """Frame -> ``(h, w, 3)`` RGB array through one reused swscale context (``VideoFrame.to_ndarray``
    with a size builds a new one per frame, which costs more than the conversion at these sizes)."""

    def __init__(self, w: int, h: int) -> None:
        self.w, self.h = w, h
        self.reformatter = VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        rgb = self.reformatter.reformat(frame, format="rgb24", width=self.w, height=self.h,
                                        interpolation="AREA", threads=1)
        return rgb.to_ndarray()


def _decode_indexed(
    path: Path, wanted: np.ndarray, mode: SamplingMode, max_offset: int | None, threads: int, to_rgb: _RGB
) -> tuple[int, dict[int, int], dict[int, np.ndarray]] | None:
    """(frame count, wanted -> used display index, used index -> RGB) decoding only what ``mode``
    needs; ``None`` when the timestamps cannot be trusted or a needed frame did not come out."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            index = read_index(container, stream)
        if index is None:
            return None
        count = index.num_frames
        clipped = np.minimum(wanted, count - 1)
        used_all = frames_to_use(index, clipped, mode, max_offset)
        used_of = {int(i): int(u) for i, u in zip(wanted, used_all, strict=True)}
        need = np.unique(used_all)
        feed = packets_to_feed(index, need)
        need_set = set(need.tolist())
        got: dict[int, np.ndarray] = {}
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            _threads(stream, threads)
            ctx = stream.codec_context
            skip = "DEFAULT"
            last = int(np.flatnonzero(feed)[-1])
            k, fed = -1, -2
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                k += 1
                if k > last:
                    break
                if not feed[k]:
                    continue
                if fed >= 0 and fed != k - 1:  # packets were skipped: start afresh, as after a seek
                    _take(ctx.decode(None), index, need_set, got, to_rgb)
                    ctx.flush_buffers()
                fed = k
                # the decoder drops the frames not asked for that nothing refers to
                want = "DEFAULT" if int(index.display[k]) in need_set else "NONREF"
                if want != skip:
                    ctx.skip_frame = skip = want
                if _take(ctx.decode(packet), index, need_set, got, to_rgb):
                    break
            if len(got) < len(need_set):  # the rest wait in the decoder's reorder buffer
                _take(ctx.decode(None), index, need_set, got, to_rgb)
    except av.FFmpegError:
        return None
    if len(got) < len(need_set):
        return None
    return count, used_of, got


SMALL_FRAME_PIXELS = 640 * 360
"""At or below this many pixels per frame, ``threads=0`` decodes in one thread, above it with FFmpeg's threads.
Measured with ``bench/feed_gpu.py --skip-feed`` (exact sampling, 2 idle cores): 120 of 3,600 frames of 320x240
H.264 took 0.488 s in one thread against 0.530 s with FFmpeg's threads (whose start-up costs more than they
save on small frames), while 60 of 1,440 frames of 1280x720 took 3.175 s against 2.344 s. Sizes between the
two were not measured; the bound sits between them."""


def _threads(stream: av.video.stream.VideoStream, threads: int) -> None:
    if threads == 0 and stream.codec_context.width * stream.codec_context.height <= SMALL_FRAME_PIXELS:
        threads = 1
    if threads != 1:
        stream.thread_type = "AUTO"
        stream.thread_count = max(threads, 0)
    else:
        stream.thread_type = "NONE"


def _take(frames: list[av.VideoFrame], index: StreamIndex, need: set[int], got: dict[int, np.ndarray],
          to_rgb: _RGB) -> bool:
    """Keep the needed ones of ``frames``; True once every needed frame is kept."""
    for frame in frames:
        d = index.display_of(frame.pts)
        if d is not None and d in need and d not in got:
            got[d] = to_rgb(frame)
    return len(got) == len(need)


def _decode_counted(path: Path, wanted: np.ndarray, threads: int, to_rgb: _RGB) -> tuple[int, dict[int, np.ndarray]]:
    """Every frame up to the last wanted one, in decoding order (frame ``i`` is the ``i``-th out):
    (frames seen, index -> RGB); a stream that ends early gives its last frame for later indices."""
    got: dict[int, np.ndarray] = {}
    last: av.VideoFrame | None = None
    count = 0
    ended_early = False
    container = _open(path)
    try:
        stream = container.streams.video[0]
        _threads(stream, threads)
        pos, stop = 0, int(wanted[-1])
        try:
            for frame in container.decode(stream):
                i, last = count, frame
                count += 1
                if i == wanted[pos]:
                    got[i] = to_rgb(frame)
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
        got.setdefault(count - 1, to_rgb(last))
    else:
        count = max(count, stop + 1)
    return count, got


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
