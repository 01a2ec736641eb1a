"""The ``tree`` granularity: spans, frame scores, and level-by-level asking through the cached runner against a
backend that answers from a known anomalous interval (frames in memory, no video decoded)."""

from __future__ import annotations

import numpy as np
import pytest

from askhint_assets.datasets.base import VideoRecord
from askhint_assets.evaluation.tree_frames import tree_frame_scores
from askhint_assets.inference import predict
from askhint_assets.pipeline.runner import CachedRunner
from askhint_assets.pipeline.tree import TreeSpec, TreeVideo, predict_tree, stage2_at_leaves
from askhint_assets.prompts.templates import default_templates
from askhint_assets.store import Store
from askhint_assets.video.sampling import SamplingConfig, Window, plan_windows
from askhint_assets.video.tree import node_depth, nodes_asked, tree_grid
from askhint_assets.video.units import Unit, plan_span, plan_units
from tests.fakes import IntervalBackend

N, FPS, WINDOW_S, STRIDE_S = 300, 10.0, 4.0, 2.0  # 30 s: 14 windows of 40 frames every 20
INTERVAL = (150, 175)
CFG = SamplingConfig(max_frames=8, fallback_fps=2.0, min_frames=2, max_side=None)
SPLIT_AT = 0.2
VIDEO = TreeVideo("v", "v.mp4", N, FPS, "file-v")


def test_grid_spans_match_the_window_scan_and_the_whole_video() -> None:
    grid = tree_grid(N, FPS, WINDOW_S, STRIDE_S)
    windows = plan_windows(N, FPS, "window", window_s=WINDOW_S, stride_s=STRIDE_S)
    nodes = list(grid.all_nodes())
    assert len(nodes) == 2 * len(windows) - 1
    assert (grid.root().start, grid.root().end) == (0, N)
    leaves = sorted((n.start, n.end) for n in nodes if n.is_leaf)
    assert leaves == [(w.start, w.end) for w in windows]
    for n in nodes:  # children split their parent's windows and cover its span
        kids = grid.children(n)
        if kids:
            assert kids[0].start == n.start and kids[1].end == n.end and kids[1].start <= kids[0].end
            assert {k.index for k in kids} == {2 * n.index + 1, 2 * n.index + 2}
            assert all(node_depth(k.index) == n.depth + 1 for k in kids)
    assert tree_grid(30, FPS, WINDOW_S, STRIDE_S).depth() == 0  # shorter than a window: the root is the leaf


def test_frame_scores_deepest_and_max() -> None:
    nodes = [(0, 0, 100, 0.9), (1, 0, 60, 0.1), (2, 40, 100, 0.8)]
    deepest = tree_frame_scores(nodes, 100, "deepest")
    assert deepest[0] == pytest.approx(0.1) and deepest[99] == pytest.approx(0.8)
    assert deepest[50] == pytest.approx(0.45)  # two nodes of the deepest level overlap: their mean
    assert np.all(tree_frame_scores(nodes, 100, "max") == 0.9)
    with pytest.raises(ValueError, match="cover"):
        tree_frame_scores([(1, 0, 60, 0.1)], 100)
    with pytest.raises(ValueError, match="rule"):
        tree_frame_scores(nodes, 100, "mean")


def _frames_by_key() -> dict[str, np.ndarray]:
    """Frames of every span a tree or window scan may ask, bright inside INTERVAL, dark elsewhere."""
    grid = tree_grid(N, FPS, WINDOW_S, STRIDE_S)
    spans = [Window(n.index, n.start, n.end) for n in grid.all_nodes()]
    out = {}
    for w in spans:
        u = plan_span(N, FPS, VIDEO.file_key, CFG, w)
        bright = (u.indices >= INTERVAL[0]) & (u.indices < INTERVAL[1])
        out[u.frames_key] = np.where(bright[:, None, None, None], 255, 0).astype(np.uint8) * np.ones((1, 2, 2, 3),
                                                                                                     np.uint8)
    return out


FRAMES = _frames_by_key()


def _root() -> Unit:
    u = plan_span(N, FPS, VIDEO.file_key, CFG, Window(0, 0, N))
    return Unit("d", "pl-tree", "v", 0, 0, N, u.frames_key, u.frames_fps)


def _ask(runner: CachedRunner, leaves_only: bool = True):
    def ask(level) -> list[dict]:
        return predict([n.unit for n in level], template="askhint", templates=default_templates(),
                       questions=["Is something bright?"], question_set="qs", model="m", runner=runner,
                       load_frames=FRAMES.get, prefetch=False,
                       stage2_for=stage2_at_leaves(level) if leaves_only else None)
    return ask


def _expected_nodes():
    """What the rule predicts: the nodes asked when a node is abnormal iff a sampled frame is in INTERVAL."""
    grid = tree_grid(N, FPS, WINDOW_S, STRIDE_S)

    def abnormal(n) -> bool:
        idx = plan_span(N, FPS, VIDEO.file_key, CFG, Window(n.index, n.start, n.end)).indices
        return bool(((idx >= INTERVAL[0]) & (idx < INTERVAL[1])).any())

    asked = nodes_asked(grid, abnormal)
    return asked, [n for n in asked if abnormal(n) and n.is_leaf]


def _tree(runner: CachedRunner) -> list[dict]:
    spec = TreeSpec("pl-tree", WINDOW_S, STRIDE_S, SPLIT_AT, CFG)
    return predict_tree([_root()], {"v": VIDEO}, spec, _ask(runner))


def test_the_tree_finds_the_interval_with_the_requests_the_rule_predicts(tmp_path) -> None:
    backend = IntervalBackend()
    rows = _tree(CachedRunner(backend, Store(tmp_path / "db.duckdb"), batch_size=4))
    asked, abnormal = _expected_nodes()
    assert sorted(r["unit"] for r in rows) == sorted(n.index for n in asked)
    grid = tree_grid(N, FPS, WINDOW_S, STRIDE_S)
    assert len(asked) < len(list(grid.all_nodes())) and any(n.is_leaf for n in abnormal)
    # stage 1 for every node, stage 2 for the abnormal leaves
    assert len(backend.sent) == len(asked) + len(abnormal)
    scores = tree_frame_scores([(r["unit"], r["start_frame"], r["end_frame"], r["score"]) for r in rows], N)
    assert np.all(scores[INTERVAL[0]:INTERVAL[1]] > 0.5)
    high = np.flatnonzero(scores > 0.5)  # only the windows around the interval
    assert high.min() >= INTERVAL[0] - 40 and high.max() < INTERVAL[1] + 40


def test_a_rerun_sends_nothing_and_a_killed_tree_resumes_without_re_asking(tmp_path) -> None:
    st = Store(tmp_path / "db.duckdb")
    killed = IntervalBackend(kill_after=5)
    with pytest.raises(IntervalBackend.Killed):
        _tree(CachedRunner(killed, st, batch_size=1))
    answered = {CachedRunner(killed, st).hash(r) for r in killed.sent}
    assert len(answered) == 5
    again = IntervalBackend()
    runner = CachedRunner(again, st, batch_size=1)
    rows = _tree(runner)
    resent = {runner.hash(r) for r in again.sent}
    assert not resent & answered  # nothing answered before the kill was asked again
    asked, abnormal = _expected_nodes()
    assert len(answered) + len(again.sent) == len(asked) + len(abnormal)
    assert len(rows) == len(asked)
    third = IntervalBackend()
    assert len(_tree(CachedRunner(third, st))) == len(asked) and third.sent == []  # a rerun sends nothing


def test_nodes_that_coincide_with_windows_reuse_their_cached_answers(tmp_path) -> None:
    st = Store(tmp_path / "db.duckdb")
    video = VideoRecord("v", "Normal", num_frames=N, fps=FPS)
    windows = plan_units(video, VIDEO.file_key, CFG, "window", WINDOW_S, STRIDE_S)
    whole = plan_units(video, VIDEO.file_key, CFG, "video", WINDOW_S, STRIDE_S)
    tree_plan = plan_units(video, VIDEO.file_key, CFG, "tree", WINDOW_S, STRIDE_S)  # a tree plans its root
    assert [u.frames_key for u in tree_plan] == [u.frames_key for u in whole]
    assert whole[0].frames_key == _root().frames_key
    scan = IntervalBackend()
    runner = CachedRunner(scan, st)
    units = [Unit("d", "pl-win", "v", u.window.index, u.window.start, u.window.end, u.frames_key, u.frames_fps)
             for u in windows]
    _ask(runner, leaves_only=False)([type("N", (), {"unit": u})() for u in units])
    tree = IntervalBackend()
    rows = _tree(CachedRunner(tree, st))
    window_keys = {u.frames_key for u in windows}
    assert {_key_of(r) for r in rows} & window_keys, "some asked node coincides with a window"
    assert not {r.frames_key for r in tree.sent} & window_keys  # ... and its answers came from the cache
    assert tree.sent  # the nodes that are no window were asked


def _key_of(row: dict) -> str:
    return plan_span(N, FPS, VIDEO.file_key, CFG, Window(0, row["start_frame"], row["end_frame"])).frames_key
