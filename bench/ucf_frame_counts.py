"""Write a ``video,num_frames`` list of UCF-Crime's test-set shape for ``askhint plan --frame-counts``
(:mod:`support.ucf_frame_counts`)::

    python bench/ucf_frame_counts.py /tmp/ucf_counts.csv
    askhint plan --config configs/ucf_crime_qwen7b.yaml --frame-counts /tmp/ucf_counts.csv --fps 30 --size 320x240
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.ucf_frame_counts import counts, csv_text

if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "ucf_frame_counts.csv")
    rows = counts()
    out.write_text(csv_text(rows))
    print(f"{out}: {len(rows)} videos, {sum(rows):,} frames")
