"""Golden fixtures from the official Qwen2.5-VL video processor, for ``tests/unit/test_processor_fixtures.py``.

Run where torchvision loads beside torch (it does not beside the CPU torch of the project's venv), e.g.::

    python3.11 -m venv /work/side-venv
    /work/side-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 transformers==5.24.0 numpy pillow
    /work/side-venv/bin/python bench/make_processor_fixtures.py tests/fixtures/processor

The processor is the one a user of ``Qwen/Qwen2.5-VL-7B-Instruct`` gets: ``AutoVideoProcessor`` loaded from
a folder holding that checkpoint's published ``preprocessor_config.json`` (there is no video config in the
release), i.e. patch 14, merge 2, temporal patch 2 and the pixel bounds transformers derives from it;
``second_per_grid_ts`` comes from ``Qwen2_5_VLProcessor`` given the frames' ``VideoMetadata`` (source fps,
source frame count, the sampled indices). Frames are synthetic and reproducible (:func:`synthetic_frames`).

Two kinds of case: *pixel* cases (a few frames; the official ``pixel_values_videos`` stored losslessly as
the uint8 values the official resize produced, checked here to reproduce the floats within 1e-6) and *grid*
cases (the paper's 128 frames and other timings: grid, token count, ``second_per_grid_ts`` only).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

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


def main(out: Path) -> None:
    import torch
    import torchvision
    import transformers
    from transformers import AutoVideoProcessor
    from transformers.video_utils import VideoMetadata

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "preprocessor_config.json").write_text(json.dumps(RELEASED_PREPROCESSOR_CONFIG))
        proc = AutoVideoProcessor.from_pretrained(tmp)
    size = dict(proc.size)
    mean, std = np.asarray(proc.image_mean), np.asarray(proc.image_std)
    tp, patch, merge = proc.temporal_patch_size, proc.patch_size, proc.merge_size
    meta = {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "transformers": transformers.__version__, "processor": type(proc).__name__, "size": size,
            "patch_size": patch, "merge_size": merge, "temporal_patch_size": tp,
            "config": RELEASED_PREPROCESSOR_CONFIG}
    print(json.dumps(meta, indent=1))

    def run(frames: np.ndarray, metadata: VideoMetadata) -> dict:
        res = proc(videos=[frames], video_metadata=[metadata], do_sample_frames=False, cap_pixels_per_frame=False,
                   return_tensors="pt", return_metadata=True)
        grid = res["video_grid_thw"].numpy().astype(np.int64)
        fps = metadata.sampled_fps  # what Qwen2_5_VLProcessor._process_videos turns into second_per_grid_ts
        return {"pixel_values": res["pixel_values_videos"].numpy().astype(np.float32), "grid": grid,
                "tokens": int(grid.prod()) // merge**2, "second_per_grid_ts": np.float64(tp / fps),
                "sampled_fps": np.float64(fps)}

    for name, t, h, w, seed in PIXEL_CASES:
        frames = synthetic_frames(t, h, w, seed)
        r = run(frames, VideoMetadata(total_num_frames=t, fps=2.0, frames_indices=list(range(t))))
        u8 = to_uint8(r["pixel_values"], mean, std, tp, patch)
        err = float(np.abs(from_uint8(u8, mean, std, tp, patch) - r["pixel_values"]).max())
        assert err < 1e-6, f"{name}: the official values are not uint8 after resizing ({err})"
        np.savez_compressed(out / f"{name}.npz", kind="pixels", t=t, h=h, w=w, seed=seed, fps=2.0,
                            min_pixels=size["shortest_edge"], max_pixels=size["longest_edge"], patches_u8=u8,
                            grid=r["grid"], tokens=r["tokens"], second_per_grid_ts=r["second_per_grid_ts"],
                            meta=json.dumps(meta))
        print(name, r["grid"].tolist(), r["tokens"], f"max dequantisation error {err:.1e}")

    for name, n_src, src_fps, h, w, max_frames, fallback in GRID_CASES:
        idx = sample_indices(n_src, src_fps, max_frames, fallback)
        frames = synthetic_frames(len(idx), h, w, 0)
        r = run(frames, VideoMetadata(total_num_frames=n_src, fps=src_fps, frames_indices=idx.tolist()))
        np.savez_compressed(out / f"{name}.npz", kind="grid", n_src=n_src, src_fps=src_fps, h=h, w=w,
                            max_frames=max_frames, fallback_fps=fallback, indices=idx,
                            min_pixels=size["shortest_edge"], max_pixels=size["longest_edge"], grid=r["grid"],
                            tokens=r["tokens"], second_per_grid_ts=r["second_per_grid_ts"],
                            sampled_fps=r["sampled_fps"], meta=json.dumps(meta))
        print(name, len(idx), "frames", r["grid"].tolist(), r["tokens"], "tokens",
              f"second_per_grid_ts {float(r['second_per_grid_ts']):.6f}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/processor"))
