"""Generated videos shaped like the data sets' (size, rate, length, H.264 with x264's defaults).

UCF-Crime: 320x240, 30 fps, ``*_x264.mp4``; XD-Violence: mostly 1280x720 at 24 fps. The content is a
moving pattern (drifting gradients, moving blocks, a little noise) so the encoder makes P- and
B-frames of realistic cost; x264's defaults give a keyframe every 250 frames (fewer on scene cuts)
and 3 B-frames. Files are written once into ``folder`` and reused (named by shape and length).

    PYTHONPATH=. python bench/shaped_videos.py OUT_DIR   # writes ucf_120s.mp4 and xd_60s.mp4
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SHAPES = {"ucf": (320, 240, 30.0), "xd": (1280, 720, 24.0)}


def shaped_video(folder: str | Path, shape: str, seconds: float, seed: int = 0) -> Path:
    """A ``shape`` (``ucf`` | ``xd``) video of ``seconds`` in ``folder``; written on first use."""
    w, h, fps = SHAPES[shape]
    path = Path(folder) / f"{shape}_{seconds:g}s_{seed}.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial.mp4")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    blocks = rng.integers(0, [w - 40, h - 40], size=(6, 2)).astype(np.float32)
    speeds = rng.normal(0, 2.0, size=(6, 2)).astype(np.float32)
    colours = rng.integers(30, 225, size=(6, 3)).astype(np.uint8)
    n = round(seconds * fps)
    with av.open(str(tmp), "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23"}
        for t in range(n):
            base = 96 + 60 * np.sin((xx + 3 * t) / 37.0) + 40 * np.cos((yy - 2 * t) / 23.0)
            img = np.repeat(base[..., None], 3, axis=2)
            img += rng.normal(0, 6, size=(h // 8, w // 8, 1)).repeat(8, 0).repeat(8, 1)
            img = np.clip(img, 0, 255).astype(np.uint8)
            pos = (blocks + speeds * t) % [w - 40, h - 40]
            for (x, y), c in zip(pos.astype(int), colours, strict=True):
                img[y : y + 40, x : x + 40] = c
            out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(s.encode())
    tmp.rename(path)
    return path


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "bench-videos")
    for shape, secs in (("ucf", 120), ("xd", 60)):
        print(shaped_video(folder, shape, secs))
