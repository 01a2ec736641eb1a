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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.processor_cases import (
    GRID_CASES,
    PIXEL_CASES,
    RELEASED_PREPROCESSOR_CONFIG,
    from_uint8,
    sample_indices,
    synthetic_frames,
    to_uint8,
)


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
