"""The asset checks on rows written to a temporary DuckDB: each passes on good rows and fails on bad ones."""

from __future__ import annotations

import json
from datetime import datetime

import dagster as dg
import pytest

from askhint_assets.orchestration.chain import ChainNames
from askhint_assets.orchestration.checks import (
    abstract_every_video_predicted,
    askhint_every_video_predicted,
    askhint_not_below_abstract,
    askhint_scored_from_logprobs,
    build_dataset_checks,
    build_prompt_checks,
    clusters_cover_every_class,
    parse_failure_check,
    qstar_size_within_bounds,
)
from askhint_assets.orchestration.resources import StoreResource
from askhint_assets.refs import ClustersRef, FrozenDict, PredictionsRef, QStarRef, ReportRef
from askhint_assets.store import Store

T0 = datetime(2026, 1, 1)
PLANS = {"window": "pl-w", "video": "pl-v"}


@pytest.fixture()
def db(tmp_path) -> tuple[Store, StoreResource]:
    path = tmp_path / "askhint.duckdb"
    return Store(path), StoreResource(db_path=str(path))


def _clusters(clustering_id: str) -> ClustersRef:
    return ClustersRef(prompt_set="ucf", version="cp-1", embedder="e", clustering_id=clustering_id)


def _report_ref(report_ids: dict[str, str]) -> ReportRef:
    return ReportRef(dataset="d", report_ids=FrozenDict(report_ids), frame_auc=0.5)


def _run(check: dg.AssetChecksDefinition, resource: StoreResource, **asset_value) -> dg.AssetCheckResult:
    return check(dg.build_asset_check_context(resources={"store": resource}), **asset_value)


def _question_set(store: Store, qs: str, n: int) -> None:
    store.upsert("question_sets", [{"question_set": qs, "questions": [f"Q{i}?" for i in range(n)],
                                    "prompt_set": "ucf", "prompt_version": "cp-1", "clustering_id": "cl-1",
                                    "settings": "{}", "method": "centrality", "created_at": T0}])


def _qref(qs: str, target: int) -> dict[str, QStarRef]:
    return {"guiding_questions": QStarRef(question_set=qs, questions=(), prompt_set="ucf", prompt_version="cp-1",
                                          clustering_id="cl-1", target_size=target, n_clusters=1,
                                          question_classes=())}


def test_qstar_size_passes_at_target_and_fails_off_target_out_of_bounds_or_unstored(db):
    store, res = db
    _question_set(store, "qs-ok", 6)
    _question_set(store, "qs-small", 2)
    ok = _run(qstar_size_within_bounds, res, **_qref("qs-ok", 6))
    assert ok.passed and ok.metadata["size"].value == 6
    off = _run(qstar_size_within_bounds, res, **_qref("qs-ok", 5))
    assert not off.passed and "!= target 5" in off.description
    small = _run(qstar_size_within_bounds, res, **_qref("qs-small", 2))
    assert not small.passed and "outside [3, 12]" in small.description
    assert not _run(qstar_size_within_bounds, res, **_qref("qs-missing", 6)).passed


def test_clusters_must_cover_every_class_of_the_prompt_version(db):
    store, res = db
    store.upsert("prompt_versions", [{"version": "cp-1", "prompt_set": "ucf", "kind": "class_prompts",
                                      "content": json.dumps({"classes": {"Abuse": {}, "Arson": {}, "Theft": {}}}),
                                      "files": "{}", "created_at": T0}])
    rows = [("cl-all", "Abuse/1", "Abuse", 0), ("cl-all", "Arson/1", "Arson", 1), ("cl-all", "Theft/1", "Theft", 1),
            ("cl-gap", "Abuse/1", "Abuse", 0), ("cl-gap", "Arson/1", "Arson", 0)]
    store.upsert("question_clusters", [
        {"clustering_id": c, "prompt_version": "cp-1", "question_id": q, "class": k, "question": q + "?",
         "cluster": n, "was_noise": False, "settings": "{}"} for c, q, k, n in rows
    ])
    ok = _run(clusters_cover_every_class, res, question_clusters=_clusters("cl-all"))
    assert ok.passed and ok.metadata["clusters"].value == 2
    gap = _run(clusters_cover_every_class, res, question_clusters=_clusters("cl-gap"))
    assert not gap.passed and gap.metadata["uncovered"].value == ["Theft"]


def _videos(store: Store) -> None:
    store.upsert("videos", [{"dataset": "d", "video_id": v, "status": s, "label": "normal", "num_frames": 10}
                            for v, s in (("v1", "ok"), ("v2", "ok"), ("v3", "failed"))])


def _predictions(store: Store, template: str, qs: str, units: list[tuple[str, str, bool]]) -> None:
    store.upsert("predictions", [
        {"dataset": "d", "plan": plan, "video_id": v, "unit": i, "start_frame": 0, "end_frame": 10,
         "question_set": qs, "model": "m", "template": template, "score": 0.5, "score_source": "logprobs",
         "parse_ok": ok, "raw_stage1": "Normal" if ok else "???", "created_at": T0}
        for i, (plan, v, ok) in enumerate(units)
    ])


def _pref(template: str, qs: str, plans: dict | None = None) -> PredictionsRef:
    return PredictionsRef(dataset="d", plans=FrozenDict(plans or PLANS), question_set=qs, templates_version="tp-1",
                          model="m", template=template, smoke_model=False)


def test_every_ok_video_needs_predictions_under_every_plan(db):
    store, res = db
    _videos(store)
    full = [(p, v, True) for p in PLANS.values() for v in ("v1", "v2")]
    _predictions(store, "askhint", "qs-full", full)
    _predictions(store, "abstract", "abstract", [u for u in full if not (u[0] == "pl-v" and u[1] == "v2")])
    ok = _run(askhint_every_video_predicted, res, askhint_predictions=_pref("askhint", "qs-full"))
    assert ok.passed and ok.metadata["ok_videos"].value == 2  # the failed video does not count
    gap = _run(abstract_every_video_predicted, res, abstract_predictions=_pref("abstract", "abstract"))
    assert not gap.passed
    assert gap.metadata["missing_videos"].value == {"video (pl-v)": ["v2"]}
    old = {"dataset": "d", "plans": PLANS, "question_set": "qs-full", "model": "m", "template": "askhint"}
    with pytest.raises(dg.DagsterTypeCheckDidNotPass, match='expected type "PredictionsRef"'):  # a stored dict
        _run(askhint_every_video_predicted, res, askhint_predictions=old)
    nothing = _run(askhint_every_video_predicted, res, askhint_predictions=_pref("askhint", "qs-none"))
    assert not nothing.passed and nothing.metadata["missing_videos"].value["window (pl-w)"] == ["v1", "v2"]


def test_parse_failure_rate_fails_at_or_above_the_threshold(db):
    store, res = db
    units = [("pl-w", f"v{i}", i >= 3) for i in range(10)]  # 3 of 10 unparsed
    _predictions(store, "askhint", "qs-1", units)
    ref = {"askhint_predictions": _pref("askhint", "qs-1")}
    bad = _run(parse_failure_check(), res, **ref)
    assert not bad.passed and bad.metadata["rate"].value == pytest.approx(0.3)
    assert "???" in bad.metadata["examples"].value
    assert _run(parse_failure_check(0.5), res, **ref).passed
    assert not _run(parse_failure_check(), res, askhint_predictions=_pref("askhint", "qs-none")).passed


def _report(store: Store, rid: str, template: str, auc: float, granularity: str = "window") -> None:
    store.upsert("eval_reports", [{"report_id": rid, "created_at": T0, "dataset": "d", "question_set": "qs-1",
                                   "model": "m", "template": template, "granularity": granularity,
                                   "metric": "frame_auc", "value": auc, "smoke_model": True, "source": "pipeline"}])


def test_askhint_below_abstract_warns(db):
    store, res = db
    _report(store, "ev-a", "askhint", 0.61)
    _report(store, "ev-b", "abstract", 0.72)
    _report(store, "ev-c", "askhint", 0.80, "video")
    _report(store, "ev-d", "abstract", 0.70, "video")
    worse = _run(askhint_not_below_abstract, res, evaluation_report=_report_ref({
        "window/askhint": "ev-a", "window/abstract": "ev-b", "video/askhint": "ev-c", "video/abstract": "ev-d"}))
    assert not worse.passed and worse.severity == dg.AssetCheckSeverity.WARN
    assert "window: ASK-Hint 0.6100 < abstract 0.7200" in worse.description
    assert "smoke-test model: informational" in worse.description
    better = _run(askhint_not_below_abstract, res, evaluation_report=_report_ref({
        "video/askhint": "ev-c", "video/abstract": "ev-d"}))
    assert better.passed and better.severity == dg.AssetCheckSeverity.WARN
    legacy = _run(askhint_not_below_abstract, res, evaluation_report=_report_ref({"askhint": "ev-a",
                                                                                  "abstract": "ev-x"}))
    assert not legacy.passed and "frame AUC missing" in legacy.description


def test_a_failing_blocking_check_stops_what_is_downstream(db):
    """Materialized through Dagster with a store of bad rows: Q* of 2 questions never reaches a child."""
    store, res = db
    _question_set(store, "qs-small", 2)

    @dg.asset(name="guiding_questions")
    def fake_qstar() -> QStarRef:
        return _qref("qs-small", 2)["guiding_questions"]

    @dg.asset(deps=[fake_qstar])
    def child() -> None:
        raise AssertionError("must not run")

    defs = dg.Definitions(assets=[fake_qstar, child], asset_checks=[qstar_size_within_bounds],
                          resources={"store": res})
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(raise_on_error=False)
    evaluations = result.get_asset_check_evaluations()
    assert [e.passed for e in evaluations] == [False]
    assert not result.success
    assert dg.AssetKey("child") not in {e.asset_key for e in result.get_asset_materialization_events()}
    assert "child" not in {e.step_key for e in result.all_events if e.is_step_failure}


def test_units_scored_from_the_answer_text_warn(db):
    store, res = db
    _predictions(store, "askhint", "qs-1", [("pl-w", f"v{i}", True) for i in range(4)])
    ref = {"askhint_predictions": _pref("askhint", "qs-1")}
    ok = _run(askhint_scored_from_logprobs, res, **ref)
    assert ok.passed and ok.metadata["not_from_logprobs"].value == 0
    with store.connect() as con:
        con.execute("UPDATE predictions SET score_source = 'answer', score_reason = 'the server returned no "
                    "log-probabilities' WHERE video_id IN ('v1', 'v2')")
    warn = _run(askhint_scored_from_logprobs, res, **ref)
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    assert warn.description == "2 of 4 units not scored from log-probabilities"
    assert "the server returned no log-probabilities" in warn.metadata["sources"].value
    assert not _run(askhint_scored_from_logprobs, res, askhint_predictions=_pref("askhint", "qs-none")).passed


def test_the_chain_checks_are_seven_with_the_blocking_ones():
    checks = [*build_prompt_checks(ChainNames()), *build_dataset_checks(ChainNames())]
    specs = {(s.asset_key.to_user_string(), s.name): s for c in checks for s in c.check_specs}
    assert len(specs) == 7
    blocking = {k for k, s in specs.items() if s.blocking}
    assert blocking == {("guiding_questions", "qstar_size_within_bounds"),
                        ("question_clusters", "clusters_cover_every_class"),
                        ("askhint_predictions", "every_video_predicted"),
                        ("abstract_predictions", "every_video_predicted")}
