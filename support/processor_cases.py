"""The cases of the golden processor fixtures (``tests/fixtures/processor/``): the released preprocessor config,
the pixel and grid cases, the synthetic frames and the uint8 round trip. ``bench/make_processor_fixtures.py``
writes the fixtures from them in a side environment; ``tests/unit/test_processor_fixtures.py`` checks askhint's
preprocessing against them."""

from __future__ import annotations

import numpy as np

# Qwen/Qwen2.5-VL-7B-Instruct's preprocessor_config.json as published.
RELEASED_PREPROCESSOR_CONFIG = {
    "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
}  # fmt: skip

# (name, frames, height, width, seed)
PIXEL_CASES = [
    ("ucf_240x320_4f", 4, 240, 320, 1),
    ("odd_237x311_3f", 3, 237, 311, 2),
    ("paper_336x448_2f", 2, 336, 448, 3),
    ("tiny_40x56_2f", 2, 40, 56, 4),
    ("wide_180x1000_1f", 1, 180, 1000, 5),
]
# (name, source frames, source fps, height, width, max_frames, fallback_fps): frames sampled by askhint's rule
GRID_CASES = [
    ("paper_ucf_30fps", 9000, 30.0, 240, 320, 128, 1.0),
    ("paper_448_30fps", 9000, 30.0, 336, 448, 128, 1.0),
    ("ucf_mean_length_30fps", 3834, 30.0, 240, 320, 128, 1.0),  # 1,111,808 frames / 290 videos
    ("short_30fps_fallback_1fps", 1800, 30.0, 240, 320, 128, 1.0),
    ("source_1fps", 200, 1.0, 240, 320, 128, 1.0),
    ("odd_25fps", 999, 25.0, 237, 311, 128, 1.0),
]


def synthetic_frames(t: int, h: int, w: int, seed: int) -> np.ndarray:
    """``(t, h, w, 3)`` uint8: gradients, a moving checkerboard (sharp edges for the antialiased resize)
    and seeded noise. Pure numpy, identical wherever it runs."""
    rng = np.random.default_rng(seed)
    i, j = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((t, h, w, 3), np.uint8)
    for k in range(t):
        base = 40 + 120 * (i / max(h - 1, 1)) + 60 * np.sin((j + 7 * k) / 9.0)
        board = 50.0 * (((i + 3 * k) // 8 + (j // 8)) % 2)
        for c in range(3):
            noise = rng.integers(-20, 21, size=(h, w))
            out[k, :, :, c] = np.clip(base + board * (c != 1) + 25 * c + noise, 0, 255).astype(np.uint8)
    return out


def sample_indices(n_src: int, fps: float, max_frames: int, fallback_fps: float, min_frames: int = 2) -> np.ndarray:
    """askhint's sampling rule (``askhint_assets.video.sampling.sample_indices``, checked equal by the test)."""
    n = min(max_frames, max(min_frames, int(np.floor(n_src / fps * fallback_fps))), n_src)
    return np.unique(np.floor((np.arange(n) + 0.5) * n_src / n).astype(np.int64))


def to_uint8(pixel_values: np.ndarray, mean: np.ndarray, std: np.ndarray, temporal: int, patch: int) -> np.ndarray:
    """The uint8 values behind normalised ``(rows, 3*temporal*patch*patch)`` pixel values."""
    per_channel = temporal * patch * patch
    m = np.repeat(mean * 255.0, per_channel)[None, :]
    s = np.repeat(std * 255.0, per_channel)[None, :]
    return np.clip(np.rint(pixel_values.astype(np.float64) * s + m), 0, 255).astype(np.uint8)


def from_uint8(u8: np.ndarray, mean: np.ndarray, std: np.ndarray, temporal: int, patch: int) -> np.ndarray:
    """Normalised float32 pixel values of uint8 patches (as the processors compute them)."""
    per_channel = temporal * patch * patch
    m = np.repeat(np.float32(255.0) * mean.astype(np.float32), per_channel)[None, :]
    s = np.repeat(np.float32(255.0) * std.astype(np.float32), per_channel)[None, :]
    return (u8.astype(np.float32) - m) / s
