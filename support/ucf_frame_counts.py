"""Frame counts of UCF-Crime's test-set shape, for ``askhint plan --frame-counts`` (``bench/ucf_frame_counts.py``
writes them as a CSV; ``tests/unit/test_cli_plan.py`` plans them).

290 videos, 1,111,808 frames in all (the published totals), split as evenly as whole frames allow (the real
lengths vary; the totals, the 30 fps and the 320x240 size are what the plan's costs scale with).
"""

from __future__ import annotations

VIDEOS, FRAMES = 290, 1_111_808


def counts(videos: int = VIDEOS, frames: int = FRAMES) -> list[int]:
    """``videos`` frame counts adding up to ``frames``, differing by at most one."""
    base, extra = divmod(frames, videos)
    return [base + (i < extra) for i in range(videos)]


def csv_text(rows: list[int]) -> str:
    """The ``video,num_frames`` CSV of ``rows`` (videos named ``ucf_test_000`` ...)."""
    return "video,num_frames\n" + "".join(f"ucf_test_{i:03d},{n}\n" for i, n in enumerate(rows))
