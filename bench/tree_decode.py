"""Decoding a coarse-to-fine tree's frames: level by level (one pass per level, the old way) against one pass that
also decodes the levels below that may be asked, within a memory budget.

    PYTHONPATH=. .venv/bin/python bench/tree_decode.py [--seconds 120 300] [--budgets 64 256 0] [--repeats 3]

A synthetic H.264 clip per shape (``bench/shaped_videos.py``: UCF-shaped 320x240 at 30 fps, XD-shaped 1280x720 at
24 fps, x264 defaults), the tree's sampling (up to 128 frames, 1 fps for shorter spans, ``max_side`` 448, exact),
windows of 4 s every 2 s. Two answer patterns, from the tree rule (:func:`askhint_assets.video.tree.nodes_asked`):
an anomalous video whose interval (``--fraction`` of it, at ``--at``) makes every span overlapping it abnormal, and
a normal video (the root only). Variants, each on a fresh frame cache, in alternating order, best of ``--repeats``:

* **(a) per level** (the old way): each level's nodes decoded in one pass (``extract_units(..., reuse=False)``);
* **(b) ahead B MiB**: each pass also decodes the whole levels of the asked nodes' subtrees whose frames, with the
  level's, fit in B MiB at ``max_side`` (``ahead=planned_below(...)``) and caches every such node; ``0``: no bound;
* **(c) cut from cached ancestors** (the pipeline's default): a node whose frames all lie in the cached entries of
  the nodes asked before (its ancestors') is cut from them, no decoding; the others per level as in (a);
* **(d) = (c) + (b)** (``execution.tree_decode_mib: B``): a pass also decodes the levels below that fit, but caches
  only the nodes needing a frame the pass would not otherwise decode;
* **(e) = (d) below a split root**: the root's pass decodes the root alone (a normal video stops there; what the
  pipeline does with ``tree_decode_mib`` when ``sampled_frames`` decoded the roots upfront), the next pass also what
  fits below.

The cached frames of nodes never asked are deleted at the end (timed). Printed per variant: wall s, CPU s,
decoding passes, peak traced memory (numpy arrays, ``tracemalloc``, one extra run), the frames cached for nodes
never asked. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from askhint_assets.pipeline.tree import NodeToAsk, TreeSpec, TreeVideo, node_to_ask, planned_below  # noqa: E402
from askhint_assets.settings import TREE_DECODE_MIB  # noqa: E402
from askhint_assets.video import units as units_module  # noqa: E402
from askhint_assets.video.decode import probe  # noqa: E402
from askhint_assets.video.frame_cache import FrameCache  # noqa: E402
from askhint_assets.video.sampling import SamplingConfig  # noqa: E402
from askhint_assets.video.tree import TreeGrid, TreeNode, nodes_asked, tree_grid  # noqa: E402
from askhint_assets.video.units import PlannedUnit, Unit, extract_units, video_file_key  # noqa: E402
from bench.feed_gpu import table  # noqa: E402
from bench.shaped_videos import SHAPES, shaped_video  # noqa: E402
from bench.throughput import machine_line  # noqa: E402

CFG = SamplingConfig(max_frames=128, fallback_fps=1.0, max_side=448)
WINDOW_S, STRIDE_S = 4.0, 2.0
MIB = 1 << 20


class Tree:
    """One video as a tree: its grid, the nodes an answer pattern asks (level by level, as the pipeline plans them)."""

    def __init__(self, path: Path) -> None:
        info = probe(path)
        self.path, self.n = path, info.num_frames
        self.video = TreeVideo("v", str(path), info.num_frames, info.fps, video_file_key(path))
        self.spec = TreeSpec("plan", WINDOW_S, STRIDE_S, 0.5, CFG)
        self.grid: TreeGrid = tree_grid(info.num_frames, info.fps, WINDOW_S, STRIDE_S)
        self.root = Unit("bench", "plan", "v", 0, 0, info.num_frames, "", 0.0)

    def levels(self, interval: tuple[int, int] | None) -> list[list[NodeToAsk]]:
        """The nodes asked, level by level, when a span overlapping ``interval`` is abnormal."""
        def abnormal(n: TreeNode) -> bool:
            return interval is not None and n.start < interval[1] and interval[0] < n.end
        out: dict[int, list[NodeToAsk]] = {}
        for node in nodes_asked(self.grid, abnormal):
            ask = node_to_ask(self.root, self.video, node, CFG)
            assert ask is not None
            out.setdefault(node.depth, []).append(ask)
        return [out[d] for d in sorted(out)]


def run(tree: Tree, levels: list[list[NodeToAsk]], budget_mib: int | None, work: Path, reuse: bool = False,
        from_level: int = 0) -> dict:
    """Decode ``levels`` as the variant says (``None``: per level) into a fresh cache; wall, CPU, passes, extras."""
    cache_dir = Path(tempfile.mkdtemp(dir=work))
    cache = FrameCache(cache_dir)
    asked = {n.planned.frames_key for lv in levels for n in lv}
    w, c = time.perf_counter(), time.process_time()
    calls = [0]
    decode = units_module.decode_sampled

    def counted(*args, **kwargs):
        calls[0] += 1
        return decode(*args, **kwargs)

    units_module.decode_sampled = counted
    seen: list[PlannedUnit] = []  # the units of the levels so far, as the frame source passes them
    try:
        for depth, level in enumerate(levels):
            seen += [n.planned for n in level]
            if budget_mib is None or depth < from_level:
                extract_units(tree.path, seen, cache, CFG.max_side, reuse=reuse)
            else:
                ahead_bytes = budget_mib * MIB if budget_mib else 1 << 62
                extract_units(tree.path, seen, cache, CFG.max_side, ahead=planned_below(level, tree.spec)["v"],
                              ahead_bytes=ahead_bytes, reuse=reuse)
    finally:
        units_module.decode_sampled = decode
    passes = calls[0]
    extra = [p for p in cache_dir.glob("*.npz") if p.stem not in asked]
    extra_mib = sum(p.stat().st_size for p in extra) / MIB
    for p in extra:  # the frames of nodes never asked go when the tree ends
        p.unlink()
    out = {"wall": time.perf_counter() - w, "cpu": time.process_time() - c, "passes": passes,
           "extra_mib": extra_mib, "extra_n": len(extra)}
    shutil.rmtree(cache_dir)
    return out


def peak_mib(tree: Tree, levels: list[list[NodeToAsk]], budget_mib: int | None, work: Path, reuse: bool,
             from_level: int) -> float:
    tracemalloc.start()
    run(tree, levels, budget_mib, work, reuse, from_level)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / MIB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos-dir", type=Path, default=Path(tempfile.gettempdir()) / "askhint-shaped-videos")
    ap.add_argument("--seconds", type=float, nargs="+", default=[120.0])
    ap.add_argument("--shapes", nargs="+", default=["ucf", "xd"], choices=sorted(SHAPES))
    ap.add_argument("--budgets", type=int, nargs="+", default=[64, 256, 0],
                    help="MiB of frames one pass of (b) may hold (0: no bound)")
    ap.add_argument("--ahead", type=int, nargs="+", default=[TREE_DECODE_MIB or 256], help="budgets of (d) and (e)")
    ap.add_argument("--fraction", type=float, default=0.1, help="anomalous interval as a share of the video")
    ap.add_argument("--at", type=float, default=0.37, help="where the interval starts, as a share of the video")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print("machine at start:", machine_line(), flush=True)
    variants: list[tuple[str, int | None, bool, int]] = [("(a) per level (old)", None, False, 0)]
    variants += [(f"(b) ahead {b} MiB" if b else "(b) ahead, no bound (whole tree at once)", b, False, 0)
                 for b in a.budgets]
    variants += [("(c) cut from cached ancestors, else per level (default)", None, True, 0)]
    variants += [(f"(d) (c) + ahead {b} MiB", b, True, 0) for b in a.ahead]
    variants += [(f"(e) (c) + ahead {b} MiB below a split root", b, True, 1) for b in a.ahead]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for shape, seconds in ((sh, sec) for sh in a.shapes for sec in a.seconds):
            path = shaped_video(a.videos_dir, shape, seconds)
            tree = Tree(path)
            start = round(a.at * tree.n)
            patterns = {"anomalous": (start, start + round(a.fraction * tree.n)), "normal": None}
            for pattern, interval in patterns.items():
                levels = tree.levels(interval)
                best: dict[str, dict] = {}
                load = os.getloadavg()[0]
                for _ in range(a.repeats):
                    for name, b, reuse, first in variants:
                        r = run(tree, levels, b, work, reuse, first)
                        if name not in best or r["wall"] < best[name]["wall"]:
                            best[name] = r
                base, base_cpu = best[variants[0][0]]["wall"], best[variants[0][0]]["cpu"]
                rows = []
                for name, b, reuse, first in variants:
                    r = best[name]
                    rows.append([name, f"{r['wall']:.3f}", f"{r['cpu']:.3f}", f"{base / r['wall']:.2f}x",
                                 f"{base_cpu / r['cpu']:.2f}x",
                                 str(r["passes"]), f"{peak_mib(tree, levels, b, work, reuse, first):.0f}",
                                 f"{r['extra_n']} ({r['extra_mib']:.0f} MiB)"])
                w, h, fps = SHAPES[shape]
                print(f"\n{w}x{h} {fps:g} fps, {tree.n} frames ({tree.n / tree.video.fps:.0f} s), {pattern}: "
                      f"{sum(map(len, levels))} nodes asked in {len(levels)} levels "
                      f"({', '.join(str(len(lv)) for lv in levels)}) of a tree of depth {tree.grid.depth()}; "
                      f"best of {a.repeats}; 1-min load average at start {load:.2f}")
                print(table(["", "wall s", "CPU s", "wall speed-up", "CPU speed-up", "passes", "peak MiB",
                             "nodes cached, never asked"], rows), flush=True)
    print("\nmachine at end:", machine_line())


if __name__ == "__main__":
    main()
