"""The asset graph, frozen: keys, parents, groups, op names, code versions, checks, the structure of each
automation condition, sensors and schedules for the default settings, two example configs and a sharded
per-question one.

A refactor that changes the graph fails here; a deliberate change is regenerated with
``python -m tests.dagster.graph_snapshots`` (this test never writes), reviewed and explained in its commit.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from tests.dagster.graph_snapshots import (
    CASES,
    ROOT,
    case_snapshot,
    condition_id,
    condition_tree,
    snapshot_path,
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_asset_graph_matches_snapshot(case: str, tmp_path: Path) -> None:
    got = case_snapshot(case, tmp_path)
    path = snapshot_path(case)
    want = json.loads(path.read_text())
    assert got == want, (
        f"the asset graph of {case!r} differs from {path.relative_to(ROOT)}; if the change is deliberate, "
        "regenerate with `python -m tests.dagster.graph_snapshots` and explain it in the commit"
    )


def test_condition_tree_records_structure_not_just_the_label() -> None:
    """Two conditions under one label but of different structure have different snapshots."""
    AC = dg.AutomationCondition
    a = (AC.missing() & AC.any_deps_updated()).with_label("same")
    b = (AC.missing() | AC.any_deps_updated()).with_label("same")
    assert condition_tree(a) != condition_tree(b) and condition_id(condition_tree(a)) != condition_id(condition_tree(b))
    assert condition_tree(a)[0] == "AND [same]" and condition_tree(a)[1] == "  missing"
