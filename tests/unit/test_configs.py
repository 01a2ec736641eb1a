"""Every example settings file in ``configs/`` (the README points at them) loads and builds the code location."""

from __future__ import annotations

from pathlib import Path

import pytest

from askhint_assets.settings_file import load_settings

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_there_are_example_configs():
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_example_config_builds_definitions(path: Path):
    from askhint_assets.definitions import build_defs

    s = load_settings(path)
    graph = build_defs(s).resolve_asset_graph()
    names = {k.path[-1] for k in graph.get_all_asset_keys()}
    assert {"guiding_questions", "askhint_predictions", "evaluation_report"} <= names
    if s.execution.shards > 1:
        assert f"askhint_predictions_shard_{s.execution.shards - 1}" in names
    assert len({k for k in graph.get_all_asset_keys() if k.path[-1] == "evaluation_report"}) == len(s.per_dataset())
