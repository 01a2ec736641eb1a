"""The ASK-Hint sampling rule and window planning."""

from __future__ import annotations

import numpy as np
import pytest

from askhint_assets.video.sampling import SamplingConfig, Window, plan_windows, sample_indices


def _check(idx: np.ndarray, start: int, end: int) -> None:
    assert idx.dtype == np.int64
    assert np.all(np.diff(idx) > 0)
    assert idx.min() >= start and idx.max() < end


def test_long_video_gets_max_frames_uniformly() -> None:
    idx = sample_indices(30 * 600, 30.0, SamplingConfig())
    assert len(idx) == 128
    _check(idx, 0, 18000)
    gaps = np.diff(idx)
    assert gaps.max() - gaps.min() <= 1
    assert idx[0] == 18000 // 128 // 2


def test_short_video_falls_back_to_one_frame_per_second() -> None:
    assert len(sample_indices(30 * 20, 30.0)) == 20
    assert len(sample_indices(int(30 * 20.9), 30.0)) == 20
    assert len(sample_indices(25 * 128, 25.0)) == 128
    assert len(sample_indices(25 * 200, 25.0)) == 128


def test_minimum_and_tiny_videos() -> None:
    assert len(sample_indices(15, 30.0)) == 2  # half a second -> min_frames
    assert sample_indices(1, 30.0).tolist() == [0]
    assert sample_indices(0, 30.0).size == 0
    assert sample_indices(10, 30.0, start=10).size == 0


def test_range_and_config() -> None:
    cfg = SamplingConfig(max_frames=8, fallback_fps=2.0)
    idx = sample_indices(3000, 30.0, cfg, start=300, end=360)  # 2 s at 2 fps -> 4
    assert idx.tolist() == [307, 322, 337, 352]
    idx = sample_indices(3000, 30.0, cfg, start=100, end=5000)
    assert len(idx) == 8
    _check(idx, 100, 3000)


def test_every_frame_when_range_is_small() -> None:
    cfg = SamplingConfig(max_frames=16, fallback_fps=100.0)
    assert sample_indices(10, 5.0, cfg).tolist() == list(range(10))


@pytest.mark.parametrize("fps", [0, -1.0, float("nan"), None])
def test_bad_fps(fps: float) -> None:
    with pytest.raises(ValueError, match="fps"):
        sample_indices(100, fps)


@pytest.mark.parametrize(
    "kw", [{"max_frames": 0}, {"min_frames": 5, "max_frames": 4}, {"fallback_fps": 0}, {"max_side": 1}]
)
def test_bad_config(kw: dict) -> None:
    with pytest.raises(ValueError):
        SamplingConfig(**kw)


def test_video_mode_is_one_window() -> None:
    assert plan_windows(1234, 30.0, "video") == [Window(0, 0, 1234)]
    assert plan_windows(0, 30.0, "video") == []


def test_windows_cover_the_video() -> None:
    ws = plan_windows(300, 30.0, "window", window_s=4.0)
    assert [(w.start, w.end) for w in ws] == [(0, 120), (120, 240), (240, 300)]
    assert [w.index for w in ws] == [0, 1, 2]
    assert ws[-1].num_frames == 60
    assert [(w.start, w.end) for w in plan_windows(240, 30.0, "window")] == [(0, 120), (120, 240)]


def test_overlapping_windows_and_frame_units() -> None:
    ws = plan_windows(100, 10.0, "window", window_s=4.0, stride_s=2.0)
    assert [(w.start, w.end) for w in ws] == [(0, 40), (20, 60), (40, 80), (60, 100)]
    ws = plan_windows(50, 30.0, "window", window_frames=16, stride_frames=8)
    assert [(w.start, w.end) for w in ws] == [(0, 16), (8, 24), (16, 32), (24, 40), (32, 48), (40, 50)]
    covered = np.zeros(50, bool)
    for w in ws:
        covered[w.start : w.end] = True
    assert covered.all()


def test_bad_windows() -> None:
    with pytest.raises(ValueError, match="skip frames"):
        plan_windows(100, 10.0, "window", window_s=1.0, stride_s=2.0)
    with pytest.raises(ValueError, match="mode"):
        plan_windows(100, 10.0, "clip")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        plan_windows(100, 10.0, "window", window_frames=0)
