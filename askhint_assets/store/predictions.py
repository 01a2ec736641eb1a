"""Queries of the inference and evaluation chain: prediction rows and evaluation reports.

A prediction reference (what a prediction asset returns) names its rows: data set, plans, question
set, model and template.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from askhint_assets.prompts.templates import Template
from askhint_assets.refs import PredictionsRef, RowsOf
from askhint_assets.store.db import Store

_PRED_KEY = "dataset = ? AND list_contains(?, plan) AND question_set = ? AND model = ? AND template = ?"


def plans_of(ref: PredictionsRef) -> dict[str, str]:
    """Granularity → plan id of a prediction reference."""
    return dict(ref.plans)


def _pred_params(ref: PredictionsRef) -> list:
    return [ref.dataset, sorted(ref.plans.values()), ref.question_set, ref.model, ref.template]


def store_predictions(st: Store, rows: list[dict[str, Any]]) -> None:
    st.upsert("predictions", rows)


def unit_scores(st: Store, ref: RowsOf, plan: str) -> dict[str, list[tuple[int, int, float]]]:
    """Video → ``(start_frame, end_frame, score)`` of every unit of one prediction set under one plan."""
    df = st.query(
        "SELECT video_id, start_frame, end_frame, score FROM predictions WHERE dataset = ? AND plan = ? "
        "AND question_set = ? AND model = ? AND template = ? ORDER BY video_id, unit",
        [ref.dataset, plan, ref.question_set, ref.model, ref.template],
    )
    windows: dict[str, list[tuple[int, int, float]]] = {}
    for vid, s, e, score in df.iter_rows():
        windows.setdefault(vid, []).append((s, e, score))
    return windows


def node_scores(st: Store, ref: RowsOf, plan: str) -> dict[str, list[tuple[int, int, int, float]]]:
    """Video → ``(unit, start_frame, end_frame, score)`` of every scored unit (a tree plan: every asked node)."""
    df = st.query(
        "SELECT video_id, unit, start_frame, end_frame, score FROM predictions WHERE dataset = ? AND plan = ? "
        "AND question_set = ? AND model = ? AND template = ? AND score_source <> 'failed' ORDER BY video_id, unit",
        [ref.dataset, plan, ref.question_set, ref.model, ref.template],
    )
    out: dict[str, list[tuple[int, int, int, float]]] = {}
    for vid, unit, s, e, score in df.iter_rows():
        out.setdefault(vid, []).append((unit, s, e, score))
    return out


def request_spans(st: Store, ref: RowsOf, plan: str) -> list[tuple[str, int, int, int]]:
    """``(video_id, start_frame, end_frame, requests)`` of every scored unit of one prediction set under one
    plan: the requests its row needed (stage 1 or one per question, plus stage 2), cache hits included, i.e.
    what the set costs a cold cache."""
    df = st.query(
        "SELECT video_id, start_frame, end_frame, "
        "(CASE WHEN starts_with(stage1_request, '[') THEN json_array_length(stage1_request::JSON) ELSE 1 END) "
        "+ (CASE WHEN stage2_request IS NULL THEN 0 ELSE 1 END) AS requests FROM predictions WHERE dataset = ? "
        "AND plan = ? AND question_set = ? AND model = ? AND template = ? AND score_source <> 'failed' "
        "ORDER BY video_id, unit",
        [ref.dataset, plan, ref.question_set, ref.model, ref.template],
    )
    return [(v, int(s), int(e), int(n)) for v, s, e, n in df.iter_rows()]


def whole_video_scores(st: Store, dataset: str, plan: str, template: str = Template.ASKHINT) -> pl.DataFrame:
    """``question_set, model, video_id, score, label`` of the unit 0 of every ok video of ``dataset`` under ``plan``
    (a ``video`` plan: the whole video), for choosing the uncertain band on a validation set."""
    return st.query(
        "SELECT p.question_set, p.model, p.video_id, p.score, v.label FROM predictions p JOIN videos v "
        "ON p.dataset = v.dataset AND p.video_id = v.video_id WHERE p.dataset = ? AND p.plan = ? AND p.template = ? "
        "AND p.unit = 0 AND p.score_source <> 'failed' AND v.status = 'ok' ORDER BY p.question_set, p.model, "
        "p.video_id",
        [dataset, plan, template],
    )


def units_per_video(st: Store, ref: PredictionsRef) -> pl.DataFrame:
    """Per plan and video: the number of prediction rows and of failed ones (``plan, video_id, units, failed``)."""
    return st.query(
        f"SELECT plan, video_id, count(*) AS units, count(*) FILTER (score_source = 'failed') AS failed "
        f"FROM predictions WHERE {_PRED_KEY} GROUP BY plan, video_id",
        _pred_params(ref),
    )


def parse_results(st: Store, ref: PredictionsRef) -> pl.DataFrame:
    """``parse_ok, raw_stage1, raw_stage2, video_id, unit`` of every row of a prediction set."""
    return st.query(
        f"SELECT parse_ok, raw_stage1, raw_stage2, video_id, unit FROM predictions WHERE {_PRED_KEY} "
        "ORDER BY video_id, unit",
        _pred_params(ref),
    )


def score_sources(st: Store, ref: PredictionsRef) -> pl.DataFrame:
    """``score_source, reason, n``: how the scored (not failed) rows of a prediction set got their scores."""
    return st.query(
        f"SELECT score_source, coalesce(score_reason, '') AS reason, count(*) AS n FROM predictions "
        f"WHERE {_PRED_KEY} AND score_source <> 'failed' GROUP BY ALL ORDER BY n DESC",
        _pred_params(ref),
    )


def score_source_counts(st: Store, ref: PredictionsRef) -> dict[str, int]:
    """Units of one prediction set per score source (logprobs, answer, none, failed)."""
    df = st.query(
        f"SELECT score_source, count(*) AS n FROM predictions WHERE {_PRED_KEY} GROUP BY ALL ORDER BY 1",
        _pred_params(ref),
    )
    return {r["score_source"]: int(r["n"]) for r in df.iter_rows(named=True)}


def score_path_counts(st: Store, ref: PredictionsRef) -> dict[str, int]:
    """Units of one prediction set per ``score_path`` (follow-ups: ``joint`` or ``per_question``)."""
    df = st.query(
        f"SELECT coalesce(score_path, '-') AS path, count(*) AS n FROM predictions WHERE {_PRED_KEY} "
        "GROUP BY ALL ORDER BY 1",
        _pred_params(ref),
    )
    return {r["path"]: int(r["n"]) for r in df.iter_rows(named=True)}


def video_timings(st: Store, ref: PredictionsRef) -> dict[str, int]:
    """Stage-1 answers of one prediction set per way their video reached the model, from the fingerprint each
    answer was cached under: ``video`` (time positions from the sampled frames' rate), ``video/server_default``
    (the server's own rate, ``model.video_timing: server_default``), ``images`` (no time positions)."""
    df = st.query(
        "SELECT coalesce(json_extract_string(r.fingerprint, '$.video_mode'), 'video') AS mode, "
        "json_extract_string(r.fingerprint, '$.server.timing') AS timing, count(*) AS n "
        f"FROM (SELECT stage1_request FROM predictions WHERE {_PRED_KEY}) p "
        "JOIN responses r ON r.request_hash = p.stage1_request GROUP BY ALL",
        _pred_params(ref),
    )
    out: dict[str, int] = {}
    for r in df.iter_rows(named=True):
        key = r["mode"] + ("/server_default" if r["timing"] == "server_default" and r["mode"] == "video" else "")
        out[key] = out.get(key, 0) + int(r["n"])
    return out


def store_report_rows(st: Store, rows: list[dict[str, Any]]) -> None:
    """Insert (or replace, same report_id and metric) rows of ``eval_reports``."""
    st.upsert("eval_reports", rows)


def activity(st: Store, datasets: list[str]) -> tuple[int, int, int]:
    """``(prediction rows of the data sets, model requests ever sent, runs that sent them)``, read-only."""
    with st.connect(read_only=True) as con:
        calls = con.execute("SELECT count(*), count(DISTINCT run_id) FROM model_calls").fetchone()
        preds = con.execute(
            "SELECT count(*) FROM predictions WHERE list_contains(?, dataset)", [datasets]
        ).fetchone()[0]
    return preds, calls[0], calls[1]


def frame_auc_of_reports(st: Store, report_ids: list[str]) -> pl.DataFrame:
    """``report_id, value, smoke_model`` of the frame AUC rows of the given reports."""
    return st.query(
        "SELECT report_id, value, smoke_model FROM eval_reports WHERE list_contains(?, report_id) "
        "AND metric = 'frame_auc'",
        [sorted(report_ids)],
    )
