"""Numpy Qwen2.5-VL video preprocessing: sizes, layout, padding (equality with transformers' official processor:
``test_processor_fixtures.py``, against golden fixtures)."""

from __future__ import annotations

import numpy as np
import pytest

from askhint_assets.errors import InputError
from askhint_assets.vlm import preprocess as pp


def _frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("hw", "bounds", "want"),
    [
        ((96, 128), (3136, 84 * 112), (84, 112)),
        ((84, 112), (3136, 84 * 112), (84, 112)),
        ((1080, 1920), (pp.VIDEO_MIN_PIXELS, pp.VIDEO_MAX_PIXELS), (560, 1008)),
        ((96, 128), (pp.VIDEO_MIN_PIXELS, pp.VIDEO_MAX_PIXELS), (280, 392)),
    ],
)
def test_smart_resize(hw, bounds, want) -> None:
    got = pp.smart_resize(*hw, 28, *bounds)
    assert got == want
    assert got[0] % 28 == 0 and got[1] % 28 == 0
    assert bounds[0] <= got[0] * got[1] <= bounds[1]


def test_smart_resize_matches_transformers() -> None:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    rng = np.random.default_rng(0)
    for h, w in rng.integers(20, 2000, (200, 2)):
        for bounds in ((pp.VIDEO_MIN_PIXELS, pp.VIDEO_MAX_PIXELS), (3136, 84 * 112)):
            assert pp.smart_resize(int(h), int(w), 28, *bounds) == smart_resize(int(h), int(w), 28, *bounds)


def test_shapes_tokens_and_timing() -> None:
    out = pp.preprocess_video(_frames(16, 96, 128), fps=4.0, min_pixels=3136, max_pixels=84 * 112)
    assert out["video_grid_thw"].tolist() == [[8, 6, 8]]
    assert out["pixel_values_videos"].shape == (8 * 6 * 8, 3 * 2 * 14 * 14)
    assert out["pixel_values_videos"].dtype == np.float32
    assert out["num_video_tokens"] == 8 * 6 * 8 // 4
    assert out["second_per_grid_ts"] == [0.5]
    assert out["resized_hw"] == (84, 112)


def _reference_patches(x: np.ndarray, tp: int = 2, p: int = 14, m: int = 2) -> np.ndarray:
    """Loop version of the official layout: per time group, per merged block, per sub-patch."""
    t, _, h, w = x.shape
    rows = []
    for g in range(t // tp):
        for bh in range(h // p // m):
            for bw in range(w // p // m):
                for mh in range(m):
                    for mw in range(m):
                        y0, x0 = (bh * m + mh) * p, (bw * m + mw) * p
                        patch = x[g * tp:(g + 1) * tp, :, y0:y0 + p, x0:x0 + p]  # (tp, C, p, p)
                        rows.append(patch.transpose(1, 0, 2, 3).reshape(-1))
    return np.stack(rows)


def test_patch_layout_and_odd_frame_padding() -> None:
    frames = _frames(3, 56, 84, seed=1)  # already multiples of 28: no resize
    out = pp.preprocess_video(frames, fps=1.0, min_pixels=28 * 28, max_pixels=56 * 84)
    assert out["video_grid_thw"].tolist() == [[2, 4, 6]]
    mean = np.asarray(pp.CLIP_MEAN, np.float32) * 255
    std = np.asarray(pp.CLIP_STD, np.float32) * 255
    x = frames.transpose(0, 3, 1, 2).astype(np.float32)
    x = np.concatenate([x, x[-1:]])  # the last frame repeated to an even count
    x = (x - mean[None, :, None, None]) / std[None, :, None, None]
    np.testing.assert_allclose(out["pixel_values_videos"], _reference_patches(x), rtol=0, atol=1e-5)


def test_single_frame_is_padded() -> None:
    out = pp.preprocess_video(_frames(1, 56, 56), fps=2.0, min_pixels=28 * 28, max_pixels=56 * 56)
    assert out["video_grid_thw"].tolist() == [[1, 4, 4]]
    pv = out["pixel_values_videos"].reshape(16, 3, 2, 14 * 14)
    np.testing.assert_array_equal(pv[:, :, 0], pv[:, :, 1])


def test_resize_values_stay_in_range() -> None:
    out = pp.preprocess_video(_frames(2, 100, 150), fps=1.0, min_pixels=28 * 28, max_pixels=84 * 112)
    lo = (0 - np.asarray(pp.CLIP_MEAN)) / np.asarray(pp.CLIP_STD)
    hi = (1 - np.asarray(pp.CLIP_MEAN)) / np.asarray(pp.CLIP_STD)
    assert out["pixel_values_videos"].min() >= lo.min() - 1e-5
    assert out["pixel_values_videos"].max() <= hi.max() + 1e-5


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 8, 8), np.uint8), np.zeros((2, 56, 56, 3), np.float32), np.zeros((0, 56, 56, 3), np.uint8)],
)
def test_bad_frames(bad) -> None:
    with pytest.raises(InputError):
        pp.preprocess_video(bad, fps=1.0)


def test_bad_fps() -> None:
    with pytest.raises(InputError, match="fps"):
        pp.preprocess_video(_frames(2, 56, 56), fps=0)
