"""A tree's frames decoded once per video: a node whose frames lie in its ancestors' cached frames is cut from them,
the levels below that fit in ``execution.tree_decode_mib`` are decoded in the same pass; the frames each node gets
are byte-identical to decoding that node alone (the oracle), the nodes no level asked are dropped."""

from __future__ import annotations

import numpy as np
import pytest

from askhint_assets.demo.synth import render_clip
from askhint_assets.errors import InputError
from askhint_assets.pipeline.tree import NodeToAsk, TreeSpec, TreeVideo, node_to_ask, planned_below
from askhint_assets.settings_file import load_settings
from askhint_assets.video import units as units_module
from askhint_assets.video.decode import decode_frames, write_video
from askhint_assets.video.frame_cache import FrameCache
from askhint_assets.video.frame_source import DecodeOptions, FrameSource, UnitFrames
from askhint_assets.video.sampling import SamplingConfig
from askhint_assets.video.tree import TreeNode, nodes_asked, tree_grid
from askhint_assets.video.units import PlannedUnit, Unit, units_ahead, video_file_key

DENSE = SamplingConfig(max_frames=6, fallback_fps=4.0, min_frames=2, max_side=64)  # a node's frames: not its parent's
GRID = SamplingConfig(max_frames=100, fallback_fps=2.0, min_frames=2, max_side=64)  # every node on one 2 fps grid
N, FPS = 80, 10.0  # 8 s: 7 windows of 2 s every 1 s, a tree of depth 3


@pytest.fixture
def passes(monkeypatch) -> list[int]:
    """The decoding passes made (frames wanted by each), counted where :func:`extract_units` calls the decoder."""
    seen: list[int] = []
    decode = units_module.decode_sampled

    def counted(path, wanted, *args, **kwargs):
        seen.append(len(wanted))
        return decode(path, wanted, *args, **kwargs)
    monkeypatch.setattr(units_module, "decode_sampled", counted)
    return seen


def _tree(tmp_path, sampling: SamplingConfig):
    path = tmp_path / "v.mp4"
    if not path.exists():
        write_video(path, render_clip("Explosion", N, (48, 64), (30, 50), seed=3), FPS)
    video = TreeVideo("v", str(path), N, FPS, video_file_key(path))
    root = Unit("d", "pl", "v", 0, 0, N, "", 0.0)
    grid = tree_grid(N, FPS, 2.0, 1.0)

    def abnormal(n: TreeNode) -> bool:  # the anomaly: frames 30-50
        return n.start < 50 and n.end > 30
    levels: dict[int, list[NodeToAsk]] = {}
    for node in nodes_asked(grid, abnormal):
        levels.setdefault(node.depth, []).append(node_to_ask(root, video, node, sampling))
    assert len(levels) == grid.depth() + 1 >= 3
    return str(path), [levels[d] for d in sorted(levels)], TreeSpec("pl", 2.0, 1.0, 0.5, sampling)


def _ask(source: FrameSource, path: str, levels, spec: TreeSpec) -> dict[str, np.ndarray]:
    """Each level as the pipeline asks it: add its nodes, expect what lies below them, load every node."""
    got = {}
    for level in levels:
        source.add([UnitFrames("v", path, n.planned) for n in level])
        source.expect(planned_below(level, spec))
        for n in level:
            got[n.planned.frames_key] = source.load(n.planned.frames_key)
    return got


def _as_alone(path: str, levels, got: dict[str, np.ndarray]) -> None:
    for level in levels:
        for n in level:  # the oracle: the node decoded alone by the exact decoder
            alone, _ = decode_frames(path, n.planned.indices, 64)
            assert got[n.planned.frames_key].tobytes() == alone.tobytes(), n.node


def test_one_pass_ahead_gives_every_node_the_frames_it_gets_alone_and_drops_the_rest(tmp_path, passes):
    path, levels, spec = _tree(tmp_path, DENSE)
    cache = FrameCache(tmp_path / "cache")
    leaf = next(n for n in levels[-1] if n.node.is_leaf)  # cached before (a window scan's): must survive the drop
    frames, _ = decode_frames(path, leaf.planned.indices, 64)
    cache.save(leaf.planned.frames_key, frames, {"indices": leaf.planned.indices.tolist(),
                                                 "used": leaf.planned.indices.tolist()})
    with FrameSource(cache, [], DecodeOptions(max_side=64, ahead_bytes=1 << 30)) as source:
        got = _ask(source, path, levels, spec)
    assert len(passes) == 1  # the root's pass decoded every level below
    _as_alone(path, levels, got)
    asked = {n.planned.frames_key for level in levels for n in level}
    assert source.drop_unasked() > 0
    assert {p.stem for p in cache.root.glob("*.npz")} == asked


def test_a_budget_below_a_level_decodes_level_by_level(tmp_path, passes):
    path, levels, spec = _tree(tmp_path, DENSE)
    with FrameSource(FrameCache(tmp_path / "cache"), [], DecodeOptions(max_side=64, ahead_bytes=1)) as source:
        got = _ask(source, path, levels, spec)
    assert len(passes) == len(levels)  # each level its own pass, nothing ahead
    assert source.drop_unasked() == 0
    _as_alone(path, levels, got)


def test_nodes_on_their_ancestors_frames_are_cut_from_them_without_decoding(tmp_path, passes):
    path, levels, spec = _tree(tmp_path, GRID)
    root = set(levels[0][0].planned.indices.tolist())
    assert all(root.issuperset(n.planned.indices.tolist()) for level in levels for n in level)
    with FrameSource(FrameCache(tmp_path / "cache"), [], DecodeOptions(max_side=64, ahead_bytes=1 << 30)) as source:
        got = _ask(source, path, levels, spec)
    assert passes == [len(root)]  # the root's pass only, and nothing ahead written: every node is cut later
    assert source.drop_unasked() == 0
    _as_alone(path, levels, got)


def _unit(*frames: int) -> PlannedUnit:
    return PlannedUnit(None, np.array(frames), f"k{frames}", 1.0)  # type: ignore[arg-type]


def test_units_ahead_takes_whole_groups_while_their_distinct_frames_fit() -> None:
    now = [_unit(0, 10, 20)]
    groups = [[_unit(0, 5), _unit(10, 15)], [_unit(1), _unit(2)], [_unit(3)]]
    assert units_ahead(now, groups, frame_bytes=10, budget=49) == []  # 3 + 2 new frames: 50 bytes
    assert units_ahead(now, groups, frame_bytes=10, budget=50) == groups[0]
    assert units_ahead(now, groups, frame_bytes=10, budget=69) == groups[0]  # the second group is whole or absent
    assert units_ahead(now, groups, frame_bytes=10, budget=79) == groups[0] + groups[1]
    assert units_ahead(now, groups, frame_bytes=10, budget=80) == groups[0] + groups[1] + groups[2]


def test_tree_decode_mib_is_checked(tmp_path) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text("execution:\n  tree_decode_mib: -1\n")
    with pytest.raises(InputError, match=r"execution\.tree_decode_mib"):
        load_settings(cfg)
    cfg.write_text("execution: {tree_decode_mib: 64}\n")
    assert load_settings(cfg).execution.tree_decode_mib == 64
