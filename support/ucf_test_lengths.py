"""UCF-Crime's 290 test videos with their real lengths: ``support/ucf_test_lengths.csv`` (``video,num_frames``,
for ``askhint plan --frame-counts`` and ``bench/tree_requests.py``).

Source: LAVAD's test list, as kept in the fork newbiechd/lavad, file ``datasets/ucf_crime/annotations/test.txt``
at commit 5b14b437557ab11973d316933d8bf2d33fdce621 (one line per video: ``name start end label``, ``end`` the
last frame, inclusive), so ``num_frames = end + 1``. Only the names and lengths were taken. They add up to
1,111,808 frames, the published total (mean 127.8 s, median 59.6 s, longest 3,600 s at 30 fps); 150 of the 290
are normal videos.
"""

from __future__ import annotations

from pathlib import Path

CSV = Path(__file__).with_name("ucf_test_lengths.csv")
SOURCE = ("newbiechd/lavad", "datasets/ucf_crime/annotations/test.txt", "5b14b437557ab11973d316933d8bf2d33fdce621")
FPS = 30.0


def lengths() -> dict[str, int]:
    """Video id -> frames, in the list's order."""
    rows = CSV.read_text().splitlines()[1:]
    return {v: int(n) for v, n in (r.split(",") for r in rows)}
