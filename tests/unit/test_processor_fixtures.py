"""askhint's numpy video preprocessing against golden fixtures of the official Qwen2.5-VL processor.

The fixtures (``tests/fixtures/processor/*.npz``) were made by ``bench/make_processor_fixtures.py`` (its cases:
:mod:`support.processor_cases`) with transformers' ``Qwen2VLVideoProcessor`` configured from
Qwen2.5-VL-7B-Instruct's published ``preprocessor_config.json`` (in an environment where torchvision loads).
Every run, no skip: pixel values within 1e-4, grids, token counts and ``second_per_grid_ts`` exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from askhint_assets.video.sampling import SamplingConfig, sample_indices
from askhint_assets.vlm.backends.transformers_backend import pixel_bounds
from askhint_assets.vlm.preprocess import preprocess_video, video_tokens
from support.processor_cases import (
    GRID_CASES,
    PIXEL_CASES,
    RELEASED_PREPROCESSOR_CONFIG,
    from_uint8,
    synthetic_frames,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "processor"
MEAN = np.asarray(RELEASED_PREPROCESSOR_CONFIG["image_mean"])
STD = np.asarray(RELEASED_PREPROCESSOR_CONFIG["image_std"])


def load(name: str) -> dict:
    with np.load(FIXTURES / f"{name}.npz") as f:
        return {k: f[k] for k in f.files}


def test_every_case_has_a_fixture_made_by_the_official_processor() -> None:
    names = {p.stem for p in FIXTURES.glob("*.npz")}
    assert names == {c[0] for c in PIXEL_CASES} | {c[0] for c in GRID_CASES}
    meta = json.loads(str(load(PIXEL_CASES[0][0])["meta"]))
    assert meta["processor"] == "Qwen2VLVideoProcessor" and meta["torchvision"]
    assert (meta["patch_size"], meta["merge_size"], meta["temporal_patch_size"]) == (14, 2, 2)


def test_released_checkpoint_pixel_bounds(tmp_path: Path) -> None:
    """A folder like the release (preprocessor_config.json, no video config) gets the official bounds."""
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(RELEASED_PREPROCESSOR_CONFIG))
    fx = load(PIXEL_CASES[0][0])
    assert pixel_bounds(tmp_path) == (int(fx["min_pixels"]), int(fx["max_pixels"])) == (3136, 12845056)


@pytest.mark.parametrize("case", PIXEL_CASES, ids=[c[0] for c in PIXEL_CASES])
def test_pixels_equal_the_official_processor(case: tuple) -> None:
    name, t, h, w, seed = case
    fx = load(name)
    frames = synthetic_frames(t, h, w, seed)
    ours = preprocess_video(frames, float(fx["fps"]), min_pixels=int(fx["min_pixels"]),
                            max_pixels=int(fx["max_pixels"]))
    np.testing.assert_array_equal(ours["video_grid_thw"], fx["grid"])
    assert ours["num_video_tokens"] == int(fx["tokens"])
    assert ours["second_per_grid_ts"] == [pytest.approx(float(fx["second_per_grid_ts"]), abs=1e-12)]
    official = from_uint8(fx["patches_u8"], MEAN, STD, 2, 14)
    assert ours["pixel_values_videos"].shape == official.shape
    diff = np.abs(ours["pixel_values_videos"] - official)
    assert float(diff.max()) <= 1e-4, f"{name}: {int((diff > 1e-4).sum())} values differ, worst {diff.max():.3g}"


@pytest.mark.parametrize("case", GRID_CASES, ids=[c[0] for c in GRID_CASES])
def test_grids_tokens_and_timing_equal_the_official_processor(case: tuple) -> None:
    name, n_src, src_fps, h, w, max_frames, fallback = case
    fx = load(name)
    idx = sample_indices(n_src, src_fps, SamplingConfig(max_frames=max_frames, fallback_fps=fallback))
    np.testing.assert_array_equal(idx, fx["indices"])  # the frames the official run was given
    frames_fps = len(idx) / (n_src / src_fps)  # as askhint's units compute it
    bounds = {"min_pixels": int(fx["min_pixels"]), "max_pixels": int(fx["max_pixels"])}
    arith = video_tokens(len(idx), h, w, **bounds)
    assert arith["grid"] == tuple(int(x) for x in fx["grid"][0]) and arith["tokens"] == int(fx["tokens"])
    ours = preprocess_video(synthetic_frames(len(idx), h, w, 0), frames_fps, **bounds)
    np.testing.assert_array_equal(ours["video_grid_thw"], fx["grid"])
    assert ours["num_video_tokens"] == int(fx["tokens"])
    assert ours["second_per_grid_ts"][0] == pytest.approx(float(fx["second_per_grid_ts"]), rel=1e-12)
