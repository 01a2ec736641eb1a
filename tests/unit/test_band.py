"""Choosing the uncertain band on a validation split: the rule, and ``askhint choose-band`` on stored scores."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from askhint_assets.cli import main
from askhint_assets.evaluation.band import choose_band
from askhint_assets.orchestration.data import plan_id
from askhint_assets.settings_file import load_settings
from askhint_assets.store import Store


def test_band_keeps_the_recall_and_bounds_false_alarms() -> None:
    anomalous = [0.9, 0.8, 0.7, 0.35, 0.05]  # recall 0.8: four of five at or above low
    normal = [0.0, 0.01, 0.02, 0.1, 0.6]
    low, high = choose_band(anomalous, normal, recall=0.8, false_alarm=0.0)  # no normal video may reach high
    assert low == 0.35 and sum(s >= low for s in anomalous) == 4
    assert high == 0.61 and not any(s >= high for s in normal)
    assert choose_band(anomalous, normal, recall=0.8, false_alarm=0.2) == (0.35, 0.35)  # one may: high <= low
    assert choose_band([0.9], [0.95], recall=1.0, false_alarm=0.0) == (0.9, 0.96)
    with pytest.raises(ValueError, match="both"):
        choose_band([], normal)


def _settings(tmp_path: Path, name: str, granularities: list[str]) -> Path:
    f = tmp_path / f"{name}.yaml"
    f.write_text(yaml.safe_dump({"dataset": {"name": name, "kind": "ucf_crime", "root": str(tmp_path / name)},
                                 "scoring": {"granularities": granularities}}))
    return f


def test_choose_band_reads_a_validation_set_and_refuses_the_test_set(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ASKHINT_HOME", str(tmp_path / "home"))
    val = _settings(tmp_path, "val", ["video"])
    plan = plan_id(load_settings(val), "video")
    st = Store(tmp_path / "home" / "askhint.duckdb")
    scores = {"a1": ("Fighting", 0.9), "a2": ("Fighting", 0.4), "n1": ("Normal", 0.05), "n2": ("Normal", 0.2)}
    st.upsert("videos", [{"dataset": "val", "video_id": v, "label": lab, "status": "ok"}
                         for v, (lab, _) in scores.items()])
    st.upsert("predictions", [{"dataset": "val", "plan": plan, "video_id": v, "unit": 0, "question_set": "qs",
                               "model": "m", "template": "askhint", "score": sc, "score_source": "logprobs"}
                              for v, (_, sc) in scores.items()])
    out = CliRunner().invoke(main, ["choose-band", "--config", str(val), "--dataset", "val", "--recall", "1.0",
                                    "--false-alarm", "0.0"])
    assert out.exit_code == 0, out.output
    assert "uncertain_band: [0.4, 0.4]" in out.output  # recall 1: low at the weaker anomaly; high is at least low
    assert 'band_source: "validation val: 2 anomalous / 2 normal videos' in out.output
    test = _settings(tmp_path, "val_tree", ["video", "tree"])
    refused = CliRunner().invoke(main, ["choose-band", "--config", str(test), "--dataset", "val_tree"])
    assert refused.exit_code != 0 and "tune on its annotations" in refused.output
