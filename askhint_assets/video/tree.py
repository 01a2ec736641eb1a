"""Coarse-to-fine asking: the tree of spans a video is cut into, down to the window scan's windows.

A video's window scan (``window_s`` windows every ``stride_s``; :func:`sampling.plan_windows`) gives windows
``0 .. n-1``. A tree node covers a run of consecutive windows ``first .. last`` and spans the frames from the
first one's start to the last one's end; the root covers them all (the whole video, the same span as the
``video`` granularity's unit) and a leaf is one window (the same span as that window). A node splits into
two halves of its windows. Nodes are numbered like a heap (root 0, children of ``k`` are ``2k+1`` and
``2k+2``), so a node's number fixes its span and depth, whatever was asked before it.

Which nodes are asked depends on the answers: a node is split when its score is at or above the lower
edge of the uncertain band (:func:`splits`), i.e. when it was judged abnormal or uncertain.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from askhint_assets.video.sampling import plan_windows

TREE_FRAME_RULES = ("deepest", "max")


@dataclass(frozen=True)
class TreeNode:
    """Node ``index`` (heap numbering) covering windows ``first .. last`` (inclusive): frames ``[start, end)``."""

    index: int
    first: int
    last: int
    start: int
    end: int

    @property
    def depth(self) -> int:
        return node_depth(self.index)

    @property
    def is_leaf(self) -> bool:
        return self.first == self.last


def node_depth(index: int) -> int:
    """Depth of heap-numbered node ``index`` (the root is 0)."""
    if index < 0:
        raise ValueError(f"node index must be >= 0, got {index}")
    return (index + 1).bit_length() - 1


@dataclass(frozen=True)
class TreeGrid:
    """The windows of one video that tree nodes are made of: ``(start, end)`` per window, in order."""

    windows: tuple[tuple[int, int], ...]

    def node(self, index: int, first: int, last: int) -> TreeNode:
        return TreeNode(index, first, last, self.windows[first][0], self.windows[last][1])

    def root(self) -> TreeNode:
        if not self.windows:
            raise ValueError("a video with no frames has no tree")
        return self.node(0, 0, len(self.windows) - 1)

    def children(self, n: TreeNode) -> tuple[TreeNode, ...]:
        """The two halves of ``n``'s windows (the first half gets the middle one); none for a leaf."""
        if n.is_leaf:
            return ()
        mid = (n.first + n.last) // 2
        return self.node(2 * n.index + 1, n.first, mid), self.node(2 * n.index + 2, mid + 1, n.last)

    def all_nodes(self) -> Iterator[TreeNode]:
        """Every node of the full tree, level by level (the worst case: every node split)."""
        level = [self.root()]
        while level:
            yield from level
            level = [c for n in level for c in self.children(n)]

    def depth(self) -> int:
        """Depth of the deepest leaf (0 for a video of one window)."""
        return max(n.depth for n in self.all_nodes())


def tree_grid(num_frames: int, fps: float, window_s: float, stride_s: float | None) -> TreeGrid:
    """The window grid of a video, exactly the windows of the ``window`` granularity."""
    ws = plan_windows(num_frames, fps, "window", window_s=window_s, stride_s=stride_s)
    return TreeGrid(tuple((w.start, w.end) for w in ws))


def check_band(band: tuple[float, float]) -> tuple[float, float]:
    """``(low, high)`` with ``0 <= low <= high <= 1``: scores in ``[low, high)`` are uncertain."""
    low, high = band
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"the uncertain band must satisfy 0 <= low <= high <= 1, got {list(band)}")
    return float(low), float(high)


def splits(score: float, band: tuple[float, float]) -> bool:
    """A node is split when its answer is abnormal or uncertain: ``score >= low``."""
    return score >= band[0]


def uncertain(score: float, band: tuple[float, float]) -> bool:
    """A score in the uncertain band ``[low, high)``."""
    return band[0] <= score < band[1]


def nodes_asked(grid: TreeGrid, abnormal) -> list[TreeNode]:
    """The nodes a tree asks when ``abnormal(node)`` says whether a node's answer splits it (level by level):
    what the rule predicts for a given answer pattern (used by ``askhint plan`` and the bench)."""
    out, level = [], [grid.root()]
    while level:
        out += level
        level = [c for n in level if abnormal(n) for c in grid.children(n)]
    return out
