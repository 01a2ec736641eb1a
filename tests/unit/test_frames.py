"""Window, video and snippet scores to frame scores; smoothing."""

from __future__ import annotations

import numpy as np
import pytest

from askhint_assets.evaluation.frames import repeat_snippets, smooth, video_frame_scores, window_frame_scores


def test_video_broadcast():
    np.testing.assert_array_equal(video_frame_scores(0.7, 4), [0.7] * 4)
    assert len(video_frame_scores(0.1, 0)) == 0


def test_window_mean_and_max_over_overlaps():
    w = [(0, 4, 0.2), (2, 6, 0.6)]
    np.testing.assert_allclose(window_frame_scores(w, 6), [0.2, 0.2, 0.4, 0.4, 0.6, 0.6])
    np.testing.assert_allclose(window_frame_scores(w, 6, rule="max"), [0.2, 0.2, 0.6, 0.6, 0.6, 0.6])


def test_uncovered_frames_take_nearest_window():
    w = [(2, 4, 0.3), (7, 9, 0.9)]
    got = window_frame_scores(w, 12)
    # frames 0-1 before the first window, 4-6 in the gap (5 is equidistant: earlier wins), 9-11 after
    np.testing.assert_allclose(got, [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9])
    np.testing.assert_allclose(window_frame_scores(w, 12, rule="max"), got)


def test_windows_clipped_and_errors():
    np.testing.assert_allclose(window_frame_scores([(-3, 2, 1.0), (2, 100, 0.0)], 4), [1, 1, 0, 0])
    with pytest.raises(ValueError, match="empty"):
        window_frame_scores([(3, 3, 0.5)], 5)
    with pytest.raises(ValueError, match="no window"):
        window_frame_scores([(10, 20, 0.5)], 5)
    with pytest.raises(ValueError, match="rule"):
        window_frame_scores([(0, 5, 0.5)], 5, rule="median")
    with pytest.raises(ValueError, match="finite"):
        window_frame_scores([(0, 5, float("nan"))], 5)


def test_equal_windows_give_bit_equal_frames():
    w = [(i, i + 4, 0.1) for i in range(0, 40, 2)]
    got = window_frame_scores(w, 42)
    assert len(set(got[2:40].tolist())) == 1


def test_smooth():
    x = np.array([0.0, 0, 3, 0, 0])
    np.testing.assert_allclose(smooth(x, 3), [0, 1, 1, 1, 0])
    np.testing.assert_allclose(smooth(np.full(7, 0.4), 5), np.full(7, 0.4))
    np.testing.assert_array_equal(smooth(x, 1), x)
    y = np.random.default_rng(0).random(50)
    np.testing.assert_allclose(smooth(y, 5)[2:-2], np.convolve(y, np.ones(5) / 5, mode="valid"))
    assert smooth(y, 5)[0] == pytest.approx(y[:3].mean())
    with pytest.raises(ValueError):
        smooth(x, 4)


def test_repeat_snippets():
    got = repeat_snippets(np.array([0.1, 0.9]), 32)
    np.testing.assert_array_equal(got, [0.1] * 16 + [0.9] * 16)
    assert repeat_snippets(np.array([0.1, 0.9]), 20).tolist() == [0.1] * 16 + [0.9] * 4  # padded video
    assert repeat_snippets(np.array([0.1, 0.9]), 40).tolist() == [0.1] * 16 + [0.9] * 24  # truncated
    with pytest.raises(ValueError, match="snippets"):
        repeat_snippets(np.array([0.1, 0.9, 0.5, 0.5]), 32)
    with pytest.raises(ValueError):
        repeat_snippets(np.array([]), 8)
