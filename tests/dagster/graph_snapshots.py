"""The asset graph as a JSON-able snapshot, and the command that regenerates the committed snapshots.

``tests/dagster/test_graph_snapshot.py`` compares the graph of each case with ``snapshots/<case>.json``;
a deliberate change is regenerated, reviewed and committed with ``python -m tests.dagster.graph_snapshots``
(the test itself never writes).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from support.environ import environ

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = Path(__file__).with_name("snapshots")
CASES: dict[str, Path | None] = {
    "default": None,
    "demo_two_datasets": ROOT / "configs" / "demo_two_datasets.yaml",
    "vllm_servers": ROOT / "configs" / "two_datasets_vllm_servers.yaml",  # shards, two prompt sets
    "shards_per_question": SNAPSHOTS / "shards_per_question.yaml",  # one data set, shards, per-question mode
}
_ENV = ("ASKHINT_HOME", "ASKHINT_CONFIG", "ASKHINT_PROMPTS_STORE")


def condition_tree(cond: dg.AutomationCondition, depth: int = 0) -> list[str]:
    """An automation condition's structure, one line per sub-condition (indented by depth): its name
    (with parameters such as an ignored selection) and its label where it has one."""
    label = cond.get_label()
    line = "  " * depth + cond.name + (f" [{label}]" if label else "")
    return [line, *(sub for child in cond.children for sub in condition_tree(child, depth + 1))]


def condition_id(tree: list[str]) -> str:
    """``<label>@<hash of the tree>``: names a condition's structure, not just its label."""
    label = tree[0].partition(" [")[2].rstrip("]") or tree[0].strip()
    return f"{label}@{hashlib.sha256(chr(10).join(tree).encode()).hexdigest()[:8]}"


def graph_snapshot(defs: dg.Definitions) -> dict:
    """A JSON-able description of everything a user sees of the graph (independent of object ids). Each
    asset names its automation condition by :func:`condition_id`; ``automation_conditions`` holds each
    distinct condition's tree (:func:`condition_tree`) once."""
    graph = defs.resolve_asset_graph()
    assets: dict[str, dict] = {}
    conditions: dict[str, list[str]] = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        cond, cid = node.automation_condition, None
        if cond is not None:
            tree = condition_tree(cond)
            cid = condition_id(tree)
            conditions[cid] = tree
        assets[key.to_user_string()] = {
            "parents": sorted(k.to_user_string() for k in node.parent_keys),
            "group": node.group_name,
            "code_version": node.code_version,
            "kind": "materializable" if node.is_materializable else "observable",
            "automation": cid,
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
    return {"assets": assets, "automation_conditions": conditions, "checks": checks, "sensors": sensors,
            "schedules": schedules}


@contextmanager
def _environment(home: Path) -> Iterator[None]:
    """Settings from the case alone: a fresh ASKHINT_HOME, no ASKHINT_CONFIG or prompt-store override."""
    with environ({"ASKHINT_HOME": str(home)}, unset=_ENV):
        yield


def case_snapshot(case: str, home: Path) -> dict:
    """The snapshot of one of :data:`CASES`, built with ``home`` as ASKHINT_HOME."""
    from askhint_assets.definitions import build_defs
    from askhint_assets.settings_file import load_settings

    with _environment(home):
        return graph_snapshot(build_defs(load_settings(CASES[case])))


def snapshot_path(case: str) -> Path:
    return SNAPSHOTS / f"{case}.json"


def dumps(snapshot: dict) -> str:
    return json.dumps(snapshot, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Rewrite the snapshots of the named cases (default: all); print which changed."""
    cases = argv if argv else sorted(CASES)
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        print(f"unknown case(s) {unknown}; expected some of {sorted(CASES)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            path, text = snapshot_path(case), dumps(case_snapshot(case, Path(tmp) / case))
            changed = not path.is_file() or path.read_text() != text
            path.write_text(text)
            print(f"{path.relative_to(ROOT)}: {'rewritten' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
