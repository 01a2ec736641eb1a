"""Choosing the uncertain band on a validation split: the rule, and ``askhint choose-band`` on stored scores."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from askhint_assets.cli import main
from askhint_assets.evaluation.band import choose_band
from askhint_assets.pipeline.data import plan_id
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


def test_choose_band_picks_the_split_and_the_frame_rule_by_validation_frame_auc(tmp_path, monkeypatch) -> None:
    """On the demo validation split's videos (its annotations, no model): a full tree scored from the known
    intervals with noise; every printed grid point's frame AUC is recomputed here with scikit-learn."""
    import json

    import numpy as np
    from sklearn.metrics import roc_auc_score

    from askhint_assets.demo.datasets import _plan
    from askhint_assets.demo.validation import VALIDATION_SEED
    from askhint_assets.evaluation.tree_frames import tree_frame_scores
    from askhint_assets.video.tree import tree_grid

    monkeypatch.setenv("ASKHINT_HOME", str(tmp_path / "home"))
    cfg = tmp_path / "val.yaml"
    cfg.write_text(yaml.safe_dump({"dataset": {"name": "val", "kind": "ucf_crime", "root": str(tmp_path / "val")},
                                   "scoring": {"granularities": ["video", "tree"], "uncertain_band": [0.0, 1.0]}}))
    s = load_settings(cfg)
    items = _plan(2, 8, (8, 12), 30, VALIDATION_SEED)  # the demo validation split: 12 anomalous, 8 normal clips
    rng = np.random.default_rng(5)
    st = Store(tmp_path / "home" / "askhint.duckdb")
    videos, preds, truth = [], [], {}
    for it in items:
        vid, n = Path(it["rel"]).stem, it["frames"]
        y = np.zeros(n, np.int8)
        for a, b in it["intervals"]:
            y[a:b] = 1
        truth[vid] = y
        videos.append({"dataset": "val", "video_id": vid, "label": it["cls"], "classes": [it["cls"]],
                       "intervals": json.dumps(it["intervals"]), "num_frames": n, "fps": 30.0, "status": "ok"})
        for node in tree_grid(n, 30.0, 4.0, 2.0).all_nodes():  # the full tree, as asked with low 0
            score = float(np.clip(0.8 * y[node.start:node.end].mean() + 0.3 * rng.random(), 0, 1))
            row = {"dataset": "val", "video_id": vid, "question_set": "qs", "model": "m", "template": "askhint",
                   "score_source": "logprobs", "score": score, "start_frame": node.start, "end_frame": node.end}
            preds.append({**row, "plan": plan_id(s, "tree"), "unit": node.index})
            if node.index == 0:
                preds.append({**row, "plan": plan_id(s, "video"), "unit": 0})
    st.upsert("videos", videos)
    st.upsert("predictions", preds)
    out = CliRunner().invoke(main, ["choose-band", "--config", str(cfg), "--dataset", "val", "--auc-slack", "0"])
    assert out.exit_code == 0, out.output
    grid = [line.split("|")[1:6] for line in out.output.splitlines() if line.startswith("# | 0") or
            line.startswith("# | 1")]
    assert len(grid) >= 4 and {g[1].strip() for g in grid} == {"deepest", "max"}
    nodes = {}
    for p in preds:
        if p["plan"] == plan_id(s, "tree"):
            nodes.setdefault(p["video_id"], {})[p["unit"]] = p
    best = None
    for low, rule, auc, per_video, mark in grid:
        low, rule = float(low), rule.strip()
        ys, ss, counts = [], [], []
        for vid, by_unit in nodes.items():  # a node is asked when every ancestor scored >= low
            asked = []
            for k, p in by_unit.items():
                a, ok = k, True
                while a > 0:
                    a = (a - 1) // 2
                    ok = ok and by_unit[a]["score"] >= low
                if ok:
                    asked.append((k, p["start_frame"], p["end_frame"], p["score"]))
            counts.append(len(asked))
            ys.append(truth[vid])
            ss.append(tree_frame_scores(asked, len(truth[vid]), rule))
        expected = 100 * roc_auc_score(np.concatenate(ys), np.concatenate(ss))
        assert abs(float(auc) - expected) < 0.006, (low, rule, auc, expected)
        assert abs(float(per_video) - np.mean(counts)) < 0.006
        key = (-round(expected, 6), np.mean(counts))
        if best is None or key < best[0]:
            best = (key, low, rule)
        if "chosen" in mark:
            chosen = (low, rule)
    assert chosen[0] == best[1] and chosen[1] == best[2]  # the best AUC (ties: fewer nodes)
    assert f"uncertain_band: [{chosen[0]}," in out.output and f"tree_frame_rule: {chosen[1]}" in out.output
    assert "low and tree_frame_rule by frame AUC" in out.output
    slack = CliRunner().invoke(main, ["choose-band", "--config", str(cfg), "--dataset", "val", "--auc-slack", "3"])
    points = [(float(g[2]), float(g[3]), float(g[0]), g[1].strip()) for g in grid]
    top = max(a for a, *_ in points)
    cheapest = min(n for a, n, *_ in points if a >= top - 3)
    picked = next(line for line in slack.output.splitlines() if "chosen" in line).split("|")[1:5]
    assert float(picked[3]) == cheapest and float(picked[2]) >= top - 3  # the fewest nodes within 3 points
