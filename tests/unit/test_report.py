"""The evaluation report and the prompt-count ablation, without Dagster: hand-built videos and predictions in a
temporary DuckDB, the numbers checked against scikit-learn on frame vectors written out by hand."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from askhint_assets import paths
from askhint_assets.errors import AskHintError, MissingArtefactError
from askhint_assets.evaluation.report_text import SMOKE_NOTE, percent
from askhint_assets.pipeline import ablation
from askhint_assets.pipeline.report import build_report, frame_scores_for, latest_reports
from askhint_assets.refs import ClustersRef, FrozenDict, PredictionsRef
from askhint_assets.settings import ScoringSettings
from askhint_assets.store import Store
from askhint_assets.store.predictions import store_predictions
from askhint_assets.store.videos import load_videos, replace_units, replace_videos
from askhint_assets.video.sampling import SamplingConfig

DS, PLAN = "toy", "pl-w"
SC = ScoringSettings(granularities=("window",), frame_rule="mean", smoothing=0)
SAMPLING = SamplingConfig(max_frames=4, fallback_fps=1.0)
VIDEOS = [  # video, label, interval, frames
    ("a1", "Abuse", [[4, 8]], 12),
    ("a2", "Arrest", [[0, 3]], 8),
    ("n1", "Normal", [], 8),
]
WINDOWS = {  # template → video → (start, end, score); overlapping windows of a1 take the mean
    "askhint": {"a1": [(0, 6, 0.2), (4, 10, 0.8), (8, 12, 0.6)], "a2": [(0, 4, 0.9), (4, 8, 0.1)],
                "n1": [(0, 4, 0.3), (4, 8, 0.4)]},
    "abstract": {"a1": [(0, 12, 0.5)], "a2": [(0, 8, 0.7)], "n1": [(0, 8, 0.6)]},
}
FRAMES = {  # the frame scores WINDOWS give, written out by hand
    "askhint": {"a1": [.2] * 4 + [.5] * 2 + [.8] * 2 + [.7] * 2 + [.6] * 2, "a2": [.9] * 4 + [.1] * 4,
                "n1": [.3] * 4 + [.4] * 4},
    "abstract": {"a1": [.5] * 12, "a2": [.7] * 8, "n1": [.6] * 8},
}
TRUTH = {"a1": [0] * 4 + [1] * 4 + [0] * 4, "a2": [1] * 3 + [0] * 5, "n1": [0] * 8}


def _ref(template: str, question_set: str = "qs-1") -> PredictionsRef:
    return PredictionsRef(dataset=DS, plans=FrozenDict({"window": PLAN}), question_set=question_set, model="m",
                          template=template, smoke_model=False, templates_version="tp-1")


def _rows(template: str, question_set: str, windows: dict) -> list[dict]:
    return [{"dataset": DS, "plan": PLAN, "video_id": v, "unit": i, "start_frame": s, "end_frame": e,
             "question_set": question_set, "model": "m", "template": template, "score": score,
             "score_source": "logprobs", "answer": "Normal", "parse_ok": True,
             "stage1_request": f"r-{template}-{question_set}-{v}-{i}", "templates_version": "tp-1"}
            for v, ws in windows.items() for i, (s, e, score) in enumerate(ws)]


@pytest.fixture()
def st(tmp_path, monkeypatch) -> Store:
    monkeypatch.setenv("ASKHINT_HOME", str(tmp_path))
    store = Store(paths.db_path())
    replace_videos(store, DS, [
        {"dataset": DS, "video_id": v, "label": label, "classes": [] if label == "Normal" else [label],
         "intervals": json.dumps(iv), "num_frames": n, "fps": 4.0, "path": f"{v}.mp4", "status": "ok"}
        for v, label, iv, n in VIDEOS
    ] + [{"dataset": DS, "video_id": "bad", "label": "Normal", "classes": [], "intervals": "[]", "num_frames": None,
          "fps": None, "path": "bad.mp4", "status": "failed", "reason": "undecodable"}])
    return store


def _pooled(template: str, videos=("a1", "a2", "n1")) -> tuple[np.ndarray, np.ndarray]:
    return (np.concatenate([TRUTH[v] for v in videos]),
            np.concatenate([FRAMES[template][v] for v in videos]))


def _metrics(st: Store, report_id: str) -> dict[str, float]:
    df = st.query("SELECT metric, value FROM eval_reports WHERE report_id = ?", [report_id])
    return dict(zip(df["metric"], df["value"], strict=True))


def test_frame_scores_spread_windows_over_their_frames(st):
    store_predictions(st, _rows("askhint", "qs-1", WINDOWS["askhint"]))
    got = frame_scores_for(st, _ref("askhint"), PLAN, load_videos(st, DS), "mean", 0)
    assert sorted(got) == ["a1", "a2", "n1"]
    for v, frames in FRAMES["askhint"].items():
        assert got[v].tolist() == pytest.approx(frames), v


def test_report_rows_and_text_agree_with_scikit_learn(st):
    for template, ws in WINDOWS.items():
        store_predictions(st, _rows(template, "qs-1" if template == "askhint" else "abstract", ws))
    refs = {"askhint": _ref("askhint"), "abstract": _ref("abstract", "abstract")}
    report = build_report(st, refs, DS, SC, SAMPLING, '{"frame_rule": "mean"}')

    assert set(report.report_ids) == {"window/askhint", "window/abstract"}
    for template in ("askhint", "abstract"):
        y, s = _pooled(template)
        stored = _metrics(st, report.report_ids[f"window/{template}"])
        maxima = [max(FRAMES[template][v]) for v in ("a1", "a2", "n1")]
        assert stored["frame_auc"] == pytest.approx(roc_auc_score(y, s))
        assert stored["frame_ap"] == pytest.approx(average_precision_score(y, s))
        assert stored["video_auc"] == pytest.approx(roc_auc_score([1, 1, 0], maxima))
        for cls, v in (("Abuse", "a1"), ("Arrest", "a2")):
            yc, sc = _pooled(template, (v, "n1"))
            assert stored[f"auc/{cls}"] == pytest.approx(roc_auc_score(yc, sc))
        result = report.results[("window", template)]
        assert (result.n_videos, result.n_frames) == (3, 28)

    y, s = _pooled("askhint")
    y0, s0 = _pooled("abstract")
    assert f"| frame_auc | {100 * roc_auc_score(y, s):.2f} | {100 * roc_auc_score(y0, s0):.2f} |" in report.markdown
    assert "3 videos (2 anomalous), 28 frames; 1 video(s) failed and are excluded." in report.markdown
    assert report.n_failed == 1 and report.head == "window"
    # 7 units of one request each over 3 videos; ASK-Hint first, as the report's columns
    assert [(t["template"], t["requests_per_video"]) for t in report.trade] == [
        ("ASK-Hint", pytest.approx(7 / 3)), ("abstract prompt", 1.0)]
    assert paths.report_path(DS).read_text() == report.markdown + "\n"
    png = paths.report_path(DS).with_name(f"{DS}_auc_vs_requests.png")
    assert png.read_bytes() == report.trade_png and png.read_bytes()[:4] == b"\x89PNG"


def test_a_video_without_predictions_stops_the_report_and_names_it(st):
    store_predictions(st, _rows("askhint", "qs-1", WINDOWS["askhint"]))
    store_predictions(st, _rows("abstract", "abstract", {k: v for k, v in WINDOWS["abstract"].items() if k != "n1"}))
    refs = {"askhint": _ref("askhint"), "abstract": _ref("abstract", "abstract")}
    with pytest.raises(MissingArtefactError) as e:
        build_report(st, refs, DS, SC, SAMPLING, "{}")
    assert str(e.value) == ("abstract/window: no predictions for 1 video(s), e.g. ['n1']; materialize the "
                            "prediction assets first")
    assert not paths.report_path(DS).exists()


def test_percent_formats_missing_values_as_n_a():
    assert [percent(0.12345), percent(float("nan")), percent(None), percent(1.0)] == ["12.35", "n/a", "n/a", "100.00"]


def test_ablation_records_scores_and_evaluates_every_size(st, monkeypatch):
    """Each size's questions are recorded, scored by the given function and evaluated; the rows say the size."""
    replace_units(st, DS, PLAN, [
        {"dataset": DS, "plan": PLAN, "video_id": v, "unit": i, "start_frame": s, "end_frame": e,
         "frames_key": f"{v}-{i}", "frame_indices": [s], "frames_fps": 1.0}
        for v, ws in WINDOWS["askhint"].items() for i, (s, e, _) in enumerate(ws)
    ])
    monkeypatch.setattr(ablation, "select_qstar",
                        lambda st, ref, size: ([SimpleNamespace(question=f"Q{i}?") for i in range(size)], [], None))
    asked = []

    def score(units, questions, question_set):  # the larger set answers as WINDOWS says, the smaller one 0.5
        asked.append((len(units), questions))
        flat = {v: [(s, e, p if len(questions) > 2 else 0.5) for s, e, p in ws] for v, ws in WINDOWS["askhint"].items()}
        store_predictions(st, [{**r, "model": "smoke"} for r in _rows("askhint", question_set, flat)])
        return 10 * len(questions)

    clusters = ClustersRef(prompt_set="ucf", version="cp-1", embedder="e", clustering_id="cl-1")
    ab = ablation.prompt_count_ablation(st, DS, clusters, "tp-1", [2, 3], PLAN, "window", SC, "{}", "smoke", True,
                                        score)

    assert asked == [(7, ["Q0?", "Q1?"]), (7, ["Q0?", "Q1?", "Q2?"])]
    assert ab.sizes == [2, 3] and [t["requests_sent"] for t in ab.table] == [20, 30]
    y, s = _pooled("askhint")
    assert ab.aucs == [pytest.approx(0.5), pytest.approx(roc_auc_score(y, s))]
    rows = st.query("SELECT report_id, source, question_set, value FROM eval_reports WHERE metric = 'frame_auc' "
                    "ORDER BY source")
    assert rows["source"].to_list() == ["ablation:size=2", "ablation:size=3"]
    assert all(r.startswith("ab-") for r in rows["report_id"])
    assert rows["question_set"].to_list() == [t["question_set"] for t in ab.table]
    methods = st.query("SELECT method FROM question_sets")["method"].to_list()
    assert methods == ["ablation", "ablation"]
    assert ab.markdown.startswith(SMOKE_NOTE) and ab.plot_png[:4] == b"\x89PNG"


def test_latest_reports_name_the_missing_report_then_read_them(st):
    with pytest.raises(AskHintError, match=f"{paths.report_path(DS)}: no report yet; run `make demo`"):
        latest_reports([DS])
    paths.report_path(DS).parent.mkdir(parents=True)
    paths.report_path(DS).write_text("# the report\n")
    store_predictions(st, _rows("askhint", "qs-1", WINDOWS["askhint"]))
    found = latest_reports([DS])
    assert found.texts == ["# the report\n"] and found.files == [paths.report_path(DS)]
    assert (found.prediction_rows, found.requests_sent, found.runs) == (7, 0, 0)
