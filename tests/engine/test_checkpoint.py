"""The committed smoke model is a complete checkpoint: what a released Qwen2.5-VL folder lets the official
processor load, it lets load (problem 1 of issue 19), and askhint's numpy preprocessing equals the official
video processor on it (the oracle is transformers' own Qwen2VLVideoProcessor, which loads here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from transformers import AutoProcessor

from askhint_assets.vlm.preprocess import preprocess_video


def test_auto_processor_loads_the_committed_folder(smoke_dir: Path) -> None:
    proc = AutoProcessor.from_pretrained(str(smoke_dir))
    assert type(proc).__name__ == "Qwen2_5_VLProcessor"
    assert type(proc.image_processor).__name__ == "Qwen2VLImageProcessor"
    assert type(proc.video_processor).__name__ == "Qwen2VLVideoProcessor"


@pytest.mark.parametrize(("frames", "height", "width", "fps"), [(16, 240, 320, 4.0), (7, 144, 176, 1.0),
                                                                (4, 112, 84, 25.0)])
def test_numpy_preprocessing_equals_the_official_processor(smoke_dir: Path, frames: int, height: int, width: int,
                                                           fps: float) -> None:
    rng = np.random.default_rng(frames)
    clip = rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8)
    proc = AutoProcessor.from_pretrained(str(smoke_dir)).video_processor
    size = proc.size
    official = proc(videos=[clip], return_tensors="np", do_sample_frames=False)
    ours = preprocess_video(clip, fps, min_pixels=size["shortest_edge"], max_pixels=size["longest_edge"])
    assert np.array_equal(np.asarray(official["video_grid_thw"]), np.asarray(ours["video_grid_thw"]))
    np.testing.assert_allclose(np.asarray(ours["pixel_values_videos"]), np.asarray(official["pixel_values_videos"]),
                               atol=1e-4)
