"""Write a ``video,num_frames`` list of UCF-Crime's test-set shape for ``askhint plan --frame-counts``.

290 videos, 1,111,808 frames in all (the published totals), split as evenly as whole frames allow
(the real lengths vary; the totals, the 30 fps and the 320x240 size are what the plan's costs scale with)::

    python bench/ucf_frame_counts.py /tmp/ucf_counts.csv
    askhint plan --config configs/ucf_crime_qwen7b.yaml --frame-counts /tmp/ucf_counts.csv --fps 30 --size 320x240
"""

from __future__ import annotations

import sys
from pathlib import Path

VIDEOS, FRAMES = 290, 1_111_808


def counts(videos: int = VIDEOS, frames: int = FRAMES) -> list[int]:
    base, extra = divmod(frames, videos)
    return [base + (i < extra) for i in range(videos)]


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "ucf_frame_counts.csv")
    rows = counts()
    out.write_text("video,num_frames\n" + "".join(f"ucf_test_{i:03d},{n}\n" for i, n in enumerate(rows)))
    print(f"{out}: {len(rows)} videos, {sum(rows):,} frames")
