"""Choosing the uncertain band on a validation split (never on the test annotations).

The band ``[low, high)`` drives the tree's splits (a span scoring ``>= low`` is split) and the follow-ups (scores
in the band get per-question requests). From whole-video scores of a validation set with known labels:

* ``low``: the highest score that still keeps ``recall`` of the anomalous videos at or above it (so a tree
  splits at least that share of them at its root);
* ``high``: the lowest two-decimal score that no more than ``false_alarm`` of the normal videos reach (scores
  at or above it are taken as confidently abnormal); at least ``low``.

``low`` is rounded down to two decimals, so the settings read plainly and the band only widens.

Where the validation split was also scored at ``tree`` granularity with every node asked (``uncertain_band`` low 0),
``low`` and the tree's frame rule are chosen jointly instead (:func:`tree_grid_search`): each candidate ``low`` gives
the nodes a tree would have asked (a subtree of the full one), each rule its frame scores, and the pooled frame AUC
on the validation labels picks the point (:func:`choose_tree_point`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from askhint_assets.datasets.base import VideoRecord
from askhint_assets.evaluation.frames import smooth
from askhint_assets.evaluation.metrics import frame_auc, pooled_frame_arrays
from askhint_assets.evaluation.tree_frames import tree_frame_scores
from askhint_assets.video.tree import TREE_FRAME_RULES


def choose_band(anomalous: Sequence[float], normal: Sequence[float], recall: float = 0.95,
                false_alarm: float = 0.05) -> tuple[float, float]:
    """``(low, high)`` from validation scores of anomalous and normal videos (see the module docstring)."""
    if not anomalous or not normal:
        raise ValueError("choosing a band needs scores of both anomalous and normal validation videos")
    if not 0 < recall <= 1 or not 0 <= false_alarm < 1:
        raise ValueError(f"need 0 < recall <= 1 and 0 <= false_alarm < 1, got {recall}, {false_alarm}")
    a = sorted(anomalous, reverse=True)
    keep = max(1, math.ceil(recall * len(a)))  # this many anomalous videos must score >= low
    low = a[keep - 1]
    n = sorted(normal, reverse=True)
    allowed = math.floor(false_alarm * len(n))  # this many normal videos may score >= high
    # the next two-decimal value above the highest normal score that is not allowed to reach the band's top
    high = (math.floor(100 * n[allowed] + 1e-9) + 1) / 100 if allowed < len(n) else 0.0
    low = math.floor(100 * low + 1e-9) / 100
    return low, max(low, min(1.0, high))


@dataclass(frozen=True)
class TreePoint:
    """One point of the joint search: a split threshold ``low`` and a frame rule, with the validation frame AUC of
    the tree they give and the nodes it asks per video (stage-1 requests)."""

    low: float
    rule: str
    frame_auc: float
    nodes_per_video: float


def asked_subtree(nodes: Sequence[tuple[int, int, int, float]], low: float) -> list[tuple[int, int, int, float]]:
    """The nodes ``(index, start, end, score)`` a tree splitting at ``score >= low`` asks, out of the nodes of a tree
    asked with a threshold at most ``low`` (the root, and every node whose ancestors all score ``>= low``)."""
    score = {int(n[0]): float(n[3]) for n in nodes}

    def asked(k: int) -> bool:
        while k > 0:
            k = (k - 1) // 2
            if score.get(k, -1.0) < low:
                return False
        return True
    return [n for n in nodes if asked(int(n[0]))]


def candidate_lows(nodes: Mapping[str, Sequence[tuple[int, int, int, float]]], floor: float,
                   also: Iterable[float] = ()) -> list[float]:
    """Split thresholds worth trying: each node score rounded down to two decimals (where the asked set changes),
    and ``also``, all within ``[floor, 1]`` (a tree asked at ``floor`` holds the nodes of any higher threshold)."""
    lows = {math.floor(100 * float(n[3]) + 1e-9) / 100 for ns in nodes.values() for n in ns} | set(also)
    return sorted(x for x in lows if floor <= x <= 1.0)


def tree_grid_search(nodes: Mapping[str, Sequence[tuple[int, int, int, float]]], videos: Sequence[VideoRecord],
                     lows: Iterable[float], rules: Sequence[str] = TREE_FRAME_RULES, kernel: int = 0
                     ) -> list[TreePoint]:
    """Every ``(low, rule)``: the pooled frame AUC of ``videos`` (their tree ``nodes`` as asked with the lowest
    threshold) when only the nodes ``low`` asks score the frames by ``rule`` (smoothed by ``kernel`` frames)."""
    videos = [v for v in videos if nodes.get(v.video_id)]
    out = []
    for low in sorted(set(lows)):
        asked = {v.video_id: asked_subtree(nodes[v.video_id], low) for v in videos}
        per_video = sum(map(len, asked.values())) / max(1, len(asked))
        for rule in rules:
            fs = {v.video_id: tree_frame_scores(asked[v.video_id], int(v.num_frames or 0), rule) for v in videos}
            if kernel > 1:
                fs = {k: smooth(s, kernel) for k, s in fs.items()}
            y, s, _ = pooled_frame_arrays(fs, videos)
            out.append(TreePoint(low, rule, frame_auc(y, s), per_video))
    return out


def choose_tree_point(grid: Sequence[TreePoint], slack: float = 0.0, prefer_low: float | None = None) -> TreePoint:
    """The point with the fewest nodes per video among those within ``slack`` (AUC, 0-1) of the best frame AUC; ties:
    ``prefer_low`` (the recall rule's), then the rules' order (``deepest`` first), then the lower ``low``."""
    finite = [g for g in grid if not math.isnan(g.frame_auc)]
    if not finite:
        raise ValueError("no grid point has a frame AUC: the validation split needs anomalous and normal frames")
    best = max(g.frame_auc for g in finite)
    near = [g for g in finite if g.frame_auc >= best - slack - 1e-12]
    return min(near, key=lambda g: (g.nodes_per_video, g.low != prefer_low, TREE_FRAME_RULES.index(g.rule), g.low))
