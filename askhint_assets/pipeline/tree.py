"""Coarse-to-fine asking (``tree`` granularity): the whole video first, then only the halves of what was
judged abnormal or uncertain, level by level, down to the window scan's windows.

The tree is adaptive (which children exist depends on their parents' answers), so it cannot be planned up
front: the planned unit of a ``tree`` plan is its root, and each level's nodes are asked in one batch through
the same cached runner as every other unit (:func:`inference.predict`), so every node is an ordinary request:
content-addressed, cached, resumable after a kill (a rerun re-asks nothing that was answered) and stored as
a ``predictions`` row whose ``unit`` is the node's heap index (:mod:`askhint_assets.video.tree`). A node whose
span equals a window of the ``window`` granularity samples the same frames under the same key, so the two
share that request's cached answer; the root shares the ``video`` granularity's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from askhint_assets.video.sampling import SamplingConfig, Window
from askhint_assets.video.tree import TreeGrid, TreeNode, splits, tree_grid
from askhint_assets.video.units import PlannedUnit, Unit, plan_span


@dataclass(frozen=True)
class TreeSpec:
    """How one ``tree`` plan is asked: its plan id, the window grid and where a node splits."""

    plan: str
    window_s: float
    stride_s: float | None
    split_at: float  # the uncertain band's lower edge: a node with score >= split_at is split
    sampling: SamplingConfig


@dataclass(frozen=True)
class TreeVideo:
    """What planning a video's nodes needs: its frames, rate, file and content fingerprint."""

    video_id: str
    path: str
    num_frames: int
    fps: float
    file_key: str


@dataclass(frozen=True)
class NodeToAsk:
    """One node of one video: the unit to score (its row identity) and the frames planned for it."""

    unit: Unit
    planned: PlannedUnit
    video: TreeVideo
    node: TreeNode


AskLevel = Callable[[list[NodeToAsk]], list[dict]]


def node_to_ask(root: Unit, video: TreeVideo, node: TreeNode, sampling: SamplingConfig) -> NodeToAsk | None:
    """The unit of ``node`` (None when its span has no frames to sample)."""
    planned = plan_span(video.num_frames, video.fps, video.file_key, sampling, _span(node))
    if planned is None:
        return None
    unit = replace(root, unit=node.index, start_frame=node.start, end_frame=node.end, frames_key=planned.frames_key,
                   frames_fps=planned.frames_fps)
    return NodeToAsk(unit, planned, video, node)


def stage2_at_leaves(level: Sequence[NodeToAsk]) -> Callable[[Unit], bool]:
    """Which of a level's units are asked stage 2 (group and rationale) when abnormal: the leaves only (a window's
    span, so the window scan's cached stage-2 answer is shared); an inner node's answer only decides the split."""
    leaves = {(n.unit.video_id, n.unit.unit) for n in level if n.node.is_leaf}
    return lambda u: (u.video_id, u.unit) in leaves


def planned_below(level: Sequence[NodeToAsk], spec: TreeSpec) -> dict[str, list[list[PlannedUnit]]]:
    """For each video of ``level``, the frames planned for every node of the full subtrees under its nodes, level by
    level: what the next levels may ask, whatever the answers (decoded ahead where they fit,
    :meth:`askhint_assets.video.frame_source.FrameSource.expect`)."""
    nodes: dict[str, list[TreeNode]] = {}
    videos: dict[str, TreeVideo] = {}
    for n in level:
        nodes.setdefault(n.video.video_id, []).append(n.node)
        videos[n.video.video_id] = n.video
    out: dict[str, list[list[PlannedUnit]]] = {}
    for vid, v in videos.items():
        grid = tree_grid(v.num_frames, v.fps, spec.window_s, spec.stride_s)
        groups, kids = [], [c for n in nodes[vid] for c in grid.children(n)]
        while kids:
            planned = (plan_span(v.num_frames, v.fps, v.file_key, spec.sampling, _span(c)) for c in kids)
            groups.append([p for p in planned if p is not None])
            kids = [g for c in kids for g in grid.children(c)]
        out[vid] = groups
    return out


def _span(node: TreeNode) -> Window:
    return Window(node.index, node.start, node.end)


def predict_tree(roots: Sequence[Unit], videos: Mapping[str, TreeVideo], spec: TreeSpec, ask: AskLevel,
                 on_level: Callable[[int, int], None] | None = None) -> list[dict]:
    """Ask the trees of ``roots`` level by level with ``ask`` (which scores a batch of nodes and returns one row
    per node, ``score_source = "failed"`` where its request failed); a node is split when its score is at or
    above ``spec.split_at``. A failed node is not split (a rerun asks it again). Returns every row."""
    grids: dict[str, TreeGrid] = {}
    level: list[NodeToAsk] = []
    for r in roots:
        v = videos[r.video_id]
        grids[v.video_id] = tree_grid(v.num_frames, v.fps, spec.window_s, spec.stride_s)
        first = node_to_ask(r, v, grids[v.video_id].root(), spec.sampling)
        if first is not None:
            level.append(first)
    rows: list[dict] = []
    depth = 0
    while level:
        if on_level:
            on_level(depth, len(level))
        got = ask(level)
        rows += got
        scored = {(r["video_id"], r["unit"]): r["score"] for r in got if r["score_source"] != "failed"}
        nxt = []
        for n in level:
            score = scored.get((n.video.video_id, n.node.index))
            if score is None or not splits(score, (spec.split_at, 1.0)):
                continue
            for child in grids[n.video.video_id].children(n.node):
                c = node_to_ask(n.unit, n.video, child, spec.sampling)
                if c is not None:
                    nxt.append(c)
        level, depth = nxt, depth + 1
    return rows
