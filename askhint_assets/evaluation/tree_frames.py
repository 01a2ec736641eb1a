"""Frame scores of a coarse-to-fine tree (``tree`` granularity) from the scores of the nodes it asked.

Rules (``scoring.tree_frame_rule``, fixed in the settings, never chosen on test labels):

* ``deepest``: each frame takes the score of the deepest asked node covering it (the mean where two nodes of
  that depth overlap it: sibling spans overlap like the windows they are made of);
* ``max``: each frame takes the largest score of any asked node covering it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from askhint_assets.evaluation.frames import window_frame_scores
from askhint_assets.video.tree import TREE_FRAME_RULES, node_depth


def tree_frame_scores(nodes: Sequence[tuple[int, int, int, float]], num_frames: int,
                      rule: str = "deepest") -> np.ndarray:
    """Frame scores from asked nodes ``(index, start, end, score)`` (heap index, frames ``[start, end)``)."""
    if rule not in TREE_FRAME_RULES:
        raise ValueError(f"unknown tree frame rule {rule!r}; use one of {', '.join(TREE_FRAME_RULES)}")
    if rule == "max":
        return window_frame_scores([(s, e, v) for _, s, e, v in nodes], num_frames, rule="max")
    out = np.zeros(num_frames, dtype=np.float64)
    covered = np.zeros(num_frames, dtype=bool)
    by_depth: dict[int, list[tuple[int, int, float]]] = {}
    for index, s, e, v in nodes:
        by_depth.setdefault(node_depth(int(index)), []).append((s, e, v))
    for depth in sorted(by_depth):  # deeper levels overwrite the frames they cover
        total = np.zeros(num_frames)
        count = np.zeros(num_frames, dtype=np.int64)
        for s, e, v in by_depth[depth]:
            s, e = max(0, int(s)), min(num_frames, int(e))
            total[s:e] += float(v)
            count[s:e] += 1
        here = count > 0
        out[here] = total[here] / count[here]
        covered |= here
    if num_frames and not covered.all():
        raise ValueError("the asked nodes do not cover every frame (is the root missing?)")
    return out
