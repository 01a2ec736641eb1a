"""Lineage, diff and history on a DuckDB filled with constructed rows (and the CLI around them)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from askhint_assets.cli import main
from askhint_assets.store import Store
from askhint_assets.store.lineage import LineageError, diff, history, lineage

T0 = datetime(2026, 3, 1, 12, 0)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _fill(store: Store) -> None:
    """Two Q* versions (qs-a from cp-1, qs-b from its child cp-2) evaluated on data set d, plus the baseline."""
    store.upsert("prompt_versions", [
        {"version": v, "prompt_set": "ucf", "kind": k, "parent": p, "produced_by": "prompts_store",
         "content": "{}", "files": json.dumps({"class_questions.yaml": h}), "created_at": at(m)}
        for v, k, p, h, m in (("cp-1", "class_prompts", None, "h1", 0), ("tp-1", "templates", None, "t1", 0),
                              ("cp-2", "class_prompts", "cp-1", "h2", 30))
    ])
    clusters = {"cl-1": ("cp-1", ["q1?", "q2?", "q3?", "q5?"]), "cl-2": ("cp-2", ["q1?", "q2?", "q4?", "q5?"])}
    store.upsert("question_clusters", [
        {"clustering_id": c, "prompt_version": pv, "question_id": f"C{i}/1", "class": f"C{i}", "question": q,
         "cluster": i % 2, "was_noise": i == 3, "settings": json.dumps({"min_cluster_size": 2})}
        for c, (pv, qs) in clusters.items() for i, q in enumerate(qs)
    ])
    store.upsert("question_sets", [
        {"question_set": "qs-a", "questions": ["q1?", "q2?", "q3?"], "prompt_set": "ucf", "prompt_version": "cp-1",
         "clustering_id": "cl-1", "settings": json.dumps({"target_size": 3}), "method": "centrality",
         "created_at": at(1)},
        {"question_set": "qs-b", "questions": ["q1?", "q2?", "q4?"], "prompt_set": "ucf", "prompt_version": "cp-2",
         "clustering_id": "cl-2", "settings": json.dumps({"target_size": 3, "dedup_threshold": 0.9}),
         "method": "centrality", "created_at": at(31)},
    ])
    store.upsert("videos", [{"dataset": "d", "video_id": v, "status": "ok", "num_frames": 40} for v in ("v1", "v2")])
    store.upsert("plans", [{"plan": "pl-w", "granularity": "window",
                            "settings": json.dumps({"granularity": "window", "window_s": 4.0}), "created_at": at(0)}])
    store.upsert("scoring_units", [
        {"dataset": "d", "plan": "pl-w", "video_id": v, "unit": u, "start_frame": 20 * u, "end_frame": 20 * u + 20,
         "frames_key": f"{v}{u}", "frame_indices": list(range(8)), "frames_fps": 4.0}
        for v in ("v1", "v2") for u in (0, 1)
    ])
    preds, responses, calls = [], [], []
    for qs, template, run, minute in (("qs-a", "askhint", "run-a", 2), ("abstract", "abstract", "run-0", 2),
                                      ("qs-b", "askhint", "run-b", 32)):
        for v in ("v1", "v2"):
            for u in (0, 1):
                h = f"{qs}-{v}-{u}"
                preds.append({"dataset": "d", "plan": "pl-w", "video_id": v, "unit": u, "start_frame": 20 * u,
                              "end_frame": 20 * u + 20, "question_set": qs, "model": "m", "template": template,
                              "score": 0.5, "score_source": "logprobs", "parse_ok": u == 0, "stage1_request": h,
                              "templates_version": "tp-1", "run_id": run, "created_at": at(minute)})
                responses.append({"request_hash": h, "backend": "fake", "model": "fake-vlm", "text": "Normal",
                                  "choice_logprobs": None, "created_at": at(minute),
                                  "fingerprint": '{"backend": "fake", "model": "fake-vlm", "threshold": 128}'})
                calls.append({"call_id": h, "request_hash": h, "backend": "fake", "model": "fake-vlm",
                              "latency_s": 0.1, "ok": True, "error": None, "run_id": run, "created_at": at(minute)})
    store.upsert("predictions", preds)
    store.record_calls(responses, calls)
    reports = (("ev-a", "qs-a", "askhint", 0.60, 3), ("ev-abs", "abstract", "abstract", 0.50, 3),
               ("ev-b", "qs-b", "askhint", 0.70, 33), ("ev-abs2", "abstract", "abstract", 0.50, 33))
    store.upsert("eval_reports", [
        {"report_id": rid, "created_at": at(m), "dataset": "d", "question_set": qs, "model": "m", "template": t,
         "granularity": "window", "plan": "pl-w", "templates_version": "tp-1", "metric": metric,
         "value": auc if metric == "frame_auc" else 0.4, "n_videos": 2, "n_frames": 80, "smoke_model": True,
         "source": "pipeline", "eval_settings": '{"frame_rule": "mean", "smoothing": 0}'}
        for rid, qs, t, auc, m in reports for metric in ("frame_auc", "frame_ap")
    ])


@pytest.fixture()
def store(tmp_path) -> Store:
    st = Store(tmp_path / "askhint.duckdb")
    _fill(st)
    return st


def _legacy(store: Store) -> None:
    """The database as older versions wrote it: no plan or templates version recorded, no plans table."""
    with store.connect() as con:
        con.execute("ALTER TABLE eval_reports DROP COLUMN plan")
        con.execute("ALTER TABLE eval_reports DROP COLUMN templates_version")
        con.execute("ALTER TABLE predictions DROP COLUMN templates_version")
        con.execute("DROP TABLE plans")
        con.execute("UPDATE eval_reports SET eval_settings = NULL")
        con.execute("UPDATE responses SET fingerprint = NULL")


def test_default_lineage_skips_a_newer_ablation_report_whose_question_set_still_traces(store):
    """After a prompt edit the prompt-count ablation writes the newest rows; the default is still the newest
    pipeline report of the ASK-Hint template, and the ablation report traces to its recorded question set."""
    store.upsert("question_sets", [
        {"question_set": "qs-abl", "questions": ["q1?", "q2?", "q4?", "q5?"], "prompt_set": "ucf",
         "prompt_version": "cp-2", "clustering_id": "cl-2", "settings": json.dumps({"target_size": 4}),
         "method": "ablation", "created_at": at(40)}])
    store.upsert("eval_reports", [
        {"report_id": "ab-4", "created_at": at(41), "dataset": "d", "question_set": "qs-abl", "model": "m",
         "template": "askhint", "granularity": "window", "plan": "pl-w", "templates_version": "tp-1",
         "metric": "frame_auc", "value": 0.55, "n_videos": 2, "n_frames": 80, "smoke_model": True,
         "source": "ablation:size=4", "eval_settings": '{"frame_rule": "mean", "smoothing": 0}'}])
    assert lineage(store)["report"]["report_id"] == "ev-b"
    d = lineage(store, report_id="ab-4")
    assert d["question_set"]["questions"] == ["q1?", "q2?", "q4?", "q5?"]
    assert d["class_prompts"]["version"] == "cp-2"
    assert [h["question_set"] for h in history(store, "d")] == ["qs-a", "qs-b"]  # not a Q* version


def test_lineage_of_the_latest_report_reaches_the_prompt_version_and_its_ancestors(store):
    d = lineage(store)
    assert d["report"]["report_id"] == "ev-b" and d["report"]["metrics"]["frame_auc"] == 0.70
    assert d["baseline"]["report_id"] == "ev-abs2"
    q = d["question_set"]
    assert q["question_set"] == "qs-b" and q["questions"] == ["q1?", "q2?", "q4?"]
    assert q["settings"]["dedup_threshold"] == 0.9
    assert d["class_prompts"]["version"] == "cp-2" and d["class_prompts"]["parent"] == "cp-1"
    assert [a["version"] for a in d["class_prompts"]["ancestors"]] == ["cp-1"]
    assert d["class_prompts"]["files"] == {"class_questions.yaml": "h2"}
    members = {x["question"]: x for c in d["clusters"]["clusters"] for x in c["questions"]}
    assert members["q4?"]["in_qstar"] and not members["q5?"]["in_qstar"]
    assert d["clusters"]["settings"] == {"min_cluster_size": 2}
    p = d["predictions"]
    assert p["plan"] == "pl-w" and p["units"] == 4 and p["videos"] == 2 and p["unparsed"] == 2
    assert p["runs"] == ["run-b"]
    assert d["plan"]["settings"]["window_s"] == 4.0 and d["plan"]["max_frames_per_unit"] == 8
    assert d["plan"]["max_units_per_video"] == 2
    assert d["model"]["answered_by"] == [{"backend": "fake", "model": "fake-vlm", "units": 4}]
    assert d["model"]["calls_in_prediction_runs"]["requests_sent"] == 4
    assert d["templates"] == {"version": "tp-1", "created_at": "2026-03-01 12:00:00", "parent": None,
                              "inferred": False}
    assert d["model"]["fingerprints"] == [{"backend": "fake", "model": "fake-vlm", "threshold": 128}]
    assert d["report"]["eval_settings"] == {"frame_rule": "mean", "smoothing": 0}
    assert not d.get("untraceable")  # everything behind this report is in the database
    json.dumps(d, allow_nan=False)


def test_lineage_by_report_id_prefix_and_data_set(store):
    assert lineage(store, report_id="ev-a")["question_set"]["question_set"] == "qs-a"  # exact beats prefix
    assert lineage(store, dataset="d")["report"]["report_id"] == "ev-b"
    with pytest.raises(LineageError, match="ambiguous"):
        lineage(store, report_id="ev-")
    with pytest.raises(LineageError, match="no report"):
        lineage(store, report_id="ev-zzz")
    with pytest.raises(LineageError, match="no askhint evaluation report for data set 'other'"):
        lineage(store, dataset="other")


def test_lineage_of_an_older_database_infers_what_it_cannot_read(store):
    _legacy(store)
    d = lineage(store, report_id="ev-a")
    assert d["templates"]["inferred"] and d["templates"]["version"] == "tp-1"
    assert d["plan"]["settings"] is None and d["plan"]["plan"] == "pl-w"
    gaps = " ".join(d["untraceable"])
    assert "templates_version" in gaps and "only their hash" in gaps
    assert "evaluation settings" in gaps and "backend fingerprint" in gaps


def test_lineage_of_external_scores_says_so(store):
    store.upsert("eval_reports", [{"report_id": "ext", "created_at": at(50), "dataset": "d", "metric": "frame_auc",
                                   "value": 0.9, "n_videos": 2, "n_frames": 80, "source": "scores:x.csv"}])
    d = lineage(store, report_id="ext")
    assert d["question_set"] is None and "external scores" in d["untraceable"][0]


def test_diff_lists_questions_and_the_auc_difference_on_the_same_videos(store):
    d = diff(store, "qs-a", "qs-b")
    assert d["only_in_a"] == ["q3?"] and d["only_in_b"] == ["q4?"] and d["common"] == ["q1?", "q2?"]
    assert d["settings_changed"] == {"dedup_threshold": [None, 0.9]}
    [pair] = d["auc"]
    assert pair["difference"] == pytest.approx(0.10) and pair["same_videos"] and pair["plan"] == "pl-w"
    assert d["auc_note"] is None
    assert diff(store, "qs-b", "qs-a")["auc"][0]["difference"] == pytest.approx(-0.10)


def test_diff_without_a_common_evaluation_says_the_auc_is_unknown(store):
    store.upsert("question_sets", [{"question_set": "qs-c", "questions": ["q9?"], "prompt_set": "ucf",
                                    "prompt_version": "cp-2", "clustering_id": "cl-2", "settings": "{}",
                                    "created_at": at(60)}])
    d = diff(store, "qs-a", "qs-c")
    assert d["auc"] == [] and "AUC difference unknown" in d["auc_note"]
    assert diff(store, "qs-a", "qs-b", dataset="elsewhere")["auc"] == []
    with pytest.raises(LineageError, match="ambiguous"):
        diff(store, "qs-", "qs-a")


def test_diff_works_on_an_older_database(store):
    _legacy(store)
    [pair] = diff(store, "qs-a", "qs-b")["auc"]
    assert pair["plan"] is None and pair["same_videos"] and pair["difference"] == pytest.approx(0.10)


def test_history_lists_versions_oldest_first_with_their_auc(store):
    rows = history(store, "d")
    assert [(r["question_set"], r["prompt_version"], r["parent_version"], r["size"]) for r in rows] == [
        ("qs-a", "cp-1", None, 3), ("qs-b", "cp-2", "cp-1", 3)]
    assert [r["frame_auc"] for r in rows] == [0.60, 0.70]
    assert rows[1]["frame_auc_by_dataset"] == {"d": 0.70}
    assert history(store, "other") == []
    assert len(history(store)) == 2


def test_cli_lineage_diff_history(store, monkeypatch):
    monkeypatch.setenv("ASKHINT_HOME", str(store.path.parent))
    runner = CliRunner()
    out = runner.invoke(main, ["lineage"])
    assert out.exit_code == 0, out.output
    assert "report ev-b" in out.output and "Q* qs-b" in out.output and "ancestors: cp-1" in out.output
    assert "templates tp-1 (recorded" in out.output
    out = runner.invoke(main, ["lineage", "--report", "ev-a", "--json"])
    assert json.loads(out.output)["question_set"]["question_set"] == "qs-a"
    out = runner.invoke(main, ["diff", "qs-a", "qs-b"])
    assert out.exit_code == 0, out.output
    assert "  - q3?" in out.output and "  + q4?" in out.output and "B-A +10.00" in out.output
    out = runner.invoke(main, ["history", "--dataset", "d"])
    assert out.exit_code == 0 and "qs-a" in out.output and "frame AUC 70.00" in out.output
    out = runner.invoke(main, ["lineage", "--report", "nope"])
    assert isinstance(out.exception, LineageError)  # `askhint` prints it as `error: ...` and exits 2
