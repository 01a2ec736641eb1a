"""The asset checks' rules without Dagster: hand-inserted rows in a temporary DuckDB, each rule at its edges."""

from __future__ import annotations

import json
import math
from datetime import datetime

import pytest

from askhint_assets.pipeline import checks
from askhint_assets.pipeline.checks import QSTAR_MAX, QSTAR_MIN, Markdown, Table
from askhint_assets.refs import ClustersRef, FrozenDict, PredictionsRef, QStarRef, ReportRef
from askhint_assets.store import Store

T0 = datetime(2026, 1, 1)
PLANS = {"window": "pl-w", "video": "pl-v"}


def _qstar(question_set: str, target_size: int) -> QStarRef:
    return QStarRef(question_set=question_set, questions=(), prompt_set="ucf", prompt_version="cp-1",
                    clustering_id="cl-1", target_size=target_size, n_clusters=1, question_classes=())


def _clusters(version: str, clustering_id: str) -> ClustersRef:
    return ClustersRef(prompt_set="ucf", version=version, embedder="e", clustering_id=clustering_id)


def _report_ref(report_ids: dict[str, str]) -> ReportRef:
    return ReportRef(dataset="d", report_ids=FrozenDict(report_ids), frame_auc=0.5)


@pytest.fixture()
def st(tmp_path) -> Store:
    return Store(tmp_path / "askhint.duckdb")


def _question_set(st: Store, qs: str, n: int) -> None:
    st.upsert("question_sets", [{"question_set": qs, "questions": [f"Q{i}?" for i in range(n)], "prompt_set": "ucf",
                                 "prompt_version": "cp-1", "clustering_id": "cl-1", "settings": "{}",
                                 "method": "centrality", "created_at": T0}])


def test_qstar_passes_only_at_its_target_within_the_bounds(st):
    for n in (QSTAR_MIN - 1, QSTAR_MIN, QSTAR_MAX, QSTAR_MAX + 1):
        _question_set(st, f"qs-{n}", n)
    at_min = checks.qstar_size(st, _qstar(f"qs-{QSTAR_MIN}", QSTAR_MIN))
    assert at_min.passed and at_min.description == f"{QSTAR_MIN} questions, as targeted"
    assert at_min.metadata["questions"] == Markdown("\n".join(f"{i + 1}. Q{i}?" for i in range(QSTAR_MIN)))
    assert checks.qstar_size(st, _qstar(f"qs-{QSTAR_MAX}", QSTAR_MAX)).passed
    for n in (QSTAR_MIN - 1, QSTAR_MAX + 1):
        out = checks.qstar_size(st, _qstar(f"qs-{n}", n))
        assert not out.passed and out.description == f"size {n} outside [{QSTAR_MIN}, {QSTAR_MAX}]"
    off = checks.qstar_size(st, _qstar(f"qs-{QSTAR_MAX}", QSTAR_MIN))
    assert not off.passed and off.description == f"size {QSTAR_MAX} != target {QSTAR_MIN}"
    missing = checks.qstar_size(st, _qstar("qs-none", 6))
    assert not missing.passed and missing.metadata == {"question_set": "qs-none", "target_size": 6}


def _prompt_version(st: Store, version: str, classes: list[str]) -> None:
    st.upsert("prompt_versions", [{"version": version, "prompt_set": "ucf", "kind": "class_prompts",
                                   "content": json.dumps({"classes": {c: {} for c in classes}}), "files": "{}",
                                   "created_at": T0}])


def test_clusters_must_cover_every_class_and_a_taxonomy_without_classes_fails(st):
    _prompt_version(st, "cp-1", ["Theft", "Abuse", "Arson"])
    _prompt_version(st, "cp-empty", [])
    rows = [("cl-all", "Abuse/1", "Abuse", 0), ("cl-all", "Arson/1", "Arson", 1), ("cl-all", "Theft/1", "Theft", 1),
            ("cl-all", "Theft/2", "Theft", 0), ("cl-gap", "Abuse/1", "Abuse", 0), ("cl-gap", "Arson/1", "Arson", 0)]
    st.upsert("question_clusters", [
        {"clustering_id": c, "prompt_version": "cp-1", "question_id": q, "class": k, "question": q + "?",
         "cluster": n, "was_noise": False, "settings": "{}"} for c, q, k, n in rows
    ])
    full = checks.clusters_cover_classes(st, _clusters("cp-1", "cl-all"))
    assert full.passed and full.description == "all 3 classes covered"
    assert full.metadata["clusters"] == 2 and full.metadata["uncovered"] == []
    assert full.metadata["coverage"] == Table((
        {"class": "Abuse", "clusters": "0", "questions": 1}, {"class": "Arson", "clusters": "1", "questions": 1},
        {"class": "Theft", "clusters": "0, 1", "questions": 2},
    ))
    gap = checks.clusters_cover_classes(st, _clusters("cp-1", "cl-gap"))
    assert not gap.passed and gap.description == "uncovered classes: Theft" and gap.metadata["uncovered"] == ["Theft"]
    assert gap.metadata["coverage"].rows[-1] == {"class": "Theft", "clusters": "-", "questions": 0}
    assert not checks.clusters_cover_classes(st, _clusters("cp-empty", "cl-all")).passed


def _videos(st: Store, statuses: dict[str, str], dataset: str = "d") -> None:
    st.upsert("videos", [{"dataset": dataset, "video_id": v, "status": s, "label": "normal", "num_frames": 10}
                         for v, s in statuses.items()])


def _predictions(st: Store, template: str, qs: str, units: list[tuple], dataset: str = "d") -> None:
    """Prediction rows of ``(plan, video, parse_ok[, score_source, reason])`` units."""
    st.upsert("predictions", [
        {"dataset": dataset, "plan": u[0], "video_id": u[1], "unit": i, "start_frame": 0, "end_frame": 10,
         "question_set": qs, "model": "m", "template": template, "score": 0.5,
         "score_source": u[3] if len(u) > 3 else "logprobs", "score_reason": u[4] if len(u) > 4 else None,
         "parse_ok": u[2], "raw_stage1": "Normal" if u[2] else "???", "created_at": T0}
        for i, u in enumerate(units)
    ])


def _pref(template: str, qs: str, dataset: str = "d") -> PredictionsRef:
    return PredictionsRef(dataset=dataset, plans=FrozenDict(PLANS), question_set=qs, templates_version="tp-1",
                          model="m", template=template, smoke_model=False)


def test_every_ok_video_needs_rows_under_every_plan(st):
    _videos(st, {"v1": "ok", "v2": "ok", "v3": "failed"})
    full = [(p, v, True) for p in PLANS.values() for v in ("v1", "v2")]
    _predictions(st, "askhint", "qs-full", [*full, ("pl-w", "v2", True, "failed")])
    _predictions(st, "abstract", "abstract", [u for u in full if u[:2] != ("pl-v", "v2")])
    ok = checks.every_video_predicted(st, _pref("askhint", "qs-full"))
    assert ok.passed and ok.description == "all 2 videos predicted under 2 plan(s)"
    assert (ok.metadata["ok_videos"], ok.metadata["units"], ok.metadata["failed_units"]) == (2, 5, 1)
    gap = checks.every_video_predicted(st, _pref("abstract", "abstract"))
    assert not gap.passed and gap.description == "1 of 2 videos without predictions in video (pl-v)"
    assert gap.metadata["missing_videos"] == {"video (pl-v)": ["v2"]} and gap.metadata["plans"] == PLANS
    none = checks.every_video_predicted(st, _pref("askhint", "qs-none"))
    assert not none.passed and none.metadata["missing_videos"] == {"window (pl-w)": ["v1", "v2"],
                                                                   "video (pl-v)": ["v1", "v2"]}
    _videos(st, {"e1": "failed"}, dataset="e")
    empty = checks.every_video_predicted(st, _pref("askhint", "qs-full", dataset="e"))
    assert not empty.passed and empty.description == "no ok videos in the data set"


def test_parse_failures_must_stay_below_the_threshold(st):
    _predictions(st, "askhint", "qs-1", [("pl-w", f"v{i}", i >= 2) for i in range(10)])  # 2 of 10 unparsed
    _predictions(st, "askhint", "qs-null", [("pl-w", "v0", None), ("pl-w", "v1", True)])
    ref = _pref("askhint", "qs-1")
    at = checks.parse_failures(st, ref, 0.2)
    assert not at.passed and at.description == "2/10 units unparsed (20.0%; threshold 20%)"
    assert at.metadata["rate"] == pytest.approx(0.2) and at.metadata["examples"].rows[0]["stage1"] == "???"
    assert checks.parse_failures(st, ref, 0.21).passed
    null = checks.parse_failures(st, _pref("askhint", "qs-null"), 0.6)  # NULL parse_ok counts as unparsed
    assert null.metadata["unparsed"] == 1 and null.passed
    assert not checks.parse_failures(st, _pref("askhint", "qs-null"), 0.5).passed
    nothing = checks.parse_failures(st, _pref("askhint", "qs-none"))
    assert not nothing.passed and nothing.description == "no prediction rows"


def test_every_scored_unit_must_come_from_logprobs(st):
    reason = "the server returned no log-probabilities"
    _predictions(st, "askhint", "qs-1", [("pl-w", "v0", True), ("pl-w", "v1", True), ("pl-w", "v2", True, "failed")])
    ok = checks.scored_from_logprobs(st, _pref("askhint", "qs-1"))
    assert ok.passed and ok.metadata["units"] == 2  # failed units are not scored: they do not count
    _predictions(st, "askhint", "qs-2", [("pl-w", "v0", True), ("pl-w", "v1", True, "answer", reason)])
    weak = checks.scored_from_logprobs(st, _pref("askhint", "qs-2"))
    assert not weak.passed and weak.description == "1 of 2 units not scored from log-probabilities"
    assert {"score_source": "answer", "reason": reason, "n": 1} in weak.metadata["sources"].rows
    nothing = checks.scored_from_logprobs(st, _pref("askhint", "qs-none"))
    assert not nothing.passed and nothing.description == "no prediction rows"


def _report(st: Store, rid: str, template: str, auc: float, granularity: str = "window", smoke: bool = False) -> None:
    st.upsert("eval_reports", [{"report_id": rid, "created_at": T0, "dataset": "d", "question_set": "qs-1",
                                "model": "m", "template": template, "granularity": granularity,
                                "metric": "frame_auc", "value": auc, "smoke_model": smoke, "source": "pipeline"}])


def test_askhint_must_not_fall_below_abstract_at_any_granularity(st):
    _report(st, "w-a", "askhint", 0.70)
    _report(st, "w-b", "abstract", 0.70)  # a tie is not below
    _report(st, "v-a", "askhint", 0.61, "video")
    _report(st, "v-b", "abstract", 0.72, "video")
    _report(st, "n-a", "askhint", math.nan, "tree", smoke=True)
    tie = checks.askhint_not_below_abstract(st, _report_ref({"window/askhint": "w-a", "window/abstract": "w-b"}))
    assert tie.passed and tie.description == "window: ASK-Hint 0.7000 >= abstract 0.7000"
    assert tie.metadata["smoke_test_model"] is False
    both = checks.askhint_not_below_abstract(st, _report_ref({
        "window/askhint": "w-a", "window/abstract": "w-b", "video/askhint": "v-a", "video/abstract": "v-b"}))
    assert not both.passed and "video: ASK-Hint 0.6100 < abstract 0.7200" in both.description
    assert [r["ok"] for r in both.metadata["comparison"].rows] == [True, False]
    nan = checks.askhint_not_below_abstract(st, _report_ref({"tree/askhint": "n-a", "tree/abstract": "w-b"}))
    assert not nan.passed and nan.description == "tree: frame AUC missing (smoke-test model: informational)"
    assert nan.metadata["comparison"].rows[0]["askhint"] == "n/a"
    assert not checks.askhint_not_below_abstract(st, _report_ref({})).passed
