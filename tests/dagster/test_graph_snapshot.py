"""The asset graph, frozen: keys, parents, groups, op names, code versions, checks, automation, sensors
and schedules for the default settings, two example configs and a sharded per-question one.

A refactor that changes the graph fails here; a deliberate change regenerates the snapshot with
``ASKHINT_UPDATE_SNAPSHOTS=1 pytest tests/dagster/test_graph_snapshot.py`` and says why in its commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = Path(__file__).with_name("snapshots")
CASES = {
    "default": None,
    "demo_two_datasets": ROOT / "configs" / "demo_two_datasets.yaml",
    "vllm_servers": ROOT / "configs" / "two_datasets_vllm_servers.yaml",  # shards, two prompt sets
    "shards_per_question": SNAPSHOTS / "shards_per_question.yaml",  # one data set, shards, per-question mode
}


def graph_snapshot(defs: dg.Definitions) -> dict:
    """A JSON-able description of everything a user sees of the graph (independent of object ids)."""
    graph = defs.resolve_asset_graph()
    assets: dict[str, dict] = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        cond = node.automation_condition
        assets[key.to_user_string()] = {
            "parents": sorted(k.to_user_string() for k in node.parent_keys),
            "group": node.group_name,
            "code_version": node.code_version,
            "kind": "materializable" if node.is_materializable else "observable",
            "automation": cond.get_label() if cond is not None else None,
        }
    for a in defs.assets or []:
        if isinstance(a, dg.AssetsDefinition) and a.is_executable:
            for key in a.keys:
                assets[key.to_user_string()]["op"] = a.node_def.name
    checks = sorted(
        f"{ck.asset_key.to_user_string()}:{ck.name}"
        for c in defs.asset_checks or []
        for ck in c.check_keys
    )
    sensors = sorted(s.name for s in defs.sensors or [])
    schedules = {s.name: s.cron_schedule for s in defs.schedules or []}
    return {"assets": assets, "checks": checks, "sensors": sensors, "schedules": schedules}


@pytest.mark.parametrize("case", sorted(CASES))
def test_asset_graph_matches_snapshot(case: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASKHINT_HOME", str(tmp_path))
    monkeypatch.delenv("ASKHINT_CONFIG", raising=False)
    monkeypatch.delenv("ASKHINT_PROMPTS_STORE", raising=False)
    from askhint_assets.definitions import build_defs
    from askhint_assets.settings import load_settings

    config = CASES[case]
    defs = build_defs(load_settings(config) if config else load_settings(None))
    got = graph_snapshot(defs)
    path = SNAPSHOTS / f"{case}.json"
    if os.environ.get("ASKHINT_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(path.read_text())
    assert got == want, (
        f"the asset graph of {case!r} differs from {path.relative_to(ROOT)}; if the change is deliberate, "
        "regenerate with ASKHINT_UPDATE_SNAPSHOTS=1 and explain it in the commit"
    )
