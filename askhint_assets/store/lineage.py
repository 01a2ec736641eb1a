"""Where a result came from, read from DuckDB alone (no Dagster): report → predictions → Q* → clusters →
class-prompt version, plus the plan, the model and what the database cannot tell.

Every function opens one read-only connection (while a run holds DuckDB's write lock it waits, as
:meth:`Store.connect` retries) and works on databases written by older versions, whose missing
columns it reports under ``untraceable``. Results are JSON-ready: timestamps as ISO strings, NaN as
``None``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import duckdb

from askhint_assets.errors import AskHintError
from askhint_assets.prompts.templates import Template
from askhint_assets.store.db import Store
from askhint_assets.store.prompts import ABLATION_METHOD

HEADLINE = ("frame_auc", "frame_ap", "video_auc", "false_alarm_rate")


class LineageError(AskHintError):
    """A report or question set that is not in the database, or an ambiguous prefix."""


def _clean(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat(sep=" ", timespec="seconds")
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> dict[str, Any] | None:
    rows = _rows(con, sql, params)
    return rows[0] if rows else None


def _has(con: duckdb.DuckDBPyConnection, table: str, column: str | None = None) -> bool:
    """Whether ``table`` (and ``column``) exists: databases written by older versions lack newer columns."""
    sql = "SELECT count(*) FROM information_schema.columns WHERE table_name = ?"
    params = [table]
    if column:
        sql, params = sql + " AND column_name = ?", [table, column]
    return con.execute(sql, params).fetchone()[0] > 0


def _json(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw


def _resolve(con: duckdb.DuckDBPyConnection, table: str, column: str, ref: str, what: str) -> str:
    """An id given in full or as a unique prefix."""
    ids = [r[column] for r in _rows(con, f"SELECT DISTINCT {column} FROM {table} WHERE starts_with({column}, ?)",
                                     [ref])]
    if ref in ids:
        return ref
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise LineageError(f"no {what} {ref!r} in {table}")
    raise LineageError(f"{what} prefix {ref!r} is ambiguous: {', '.join(sorted(ids)[:5])}")


# -- reports -----------------------------------------------------------------------------------------


def _report(con: duckdb.DuckDBPyConnection, report_id: str) -> dict[str, Any]:
    rows = _rows(con, "SELECT * FROM eval_reports WHERE report_id = ? ORDER BY metric", [report_id])
    head = rows[0]
    keys = ("report_id", "created_at", "dataset", "question_set", "model", "template", "granularity", "plan",
            "templates_version", "n_videos", "n_frames", "smoke_model", "source")
    return {**{k: head.get(k) for k in keys}, "eval_settings": _json(head.get("eval_settings")),
            "metrics": {r["metric"]: r["value"] for r in rows}}


def _latest_report_id(con: duckdb.DuckDBPyConnection, dataset: str | None) -> str:
    """The newest report of the pipeline's ASK-Hint template (not an ablation size or a score file)."""
    where, params = "template = ?", [Template.ASKHINT]
    if _has(con, "eval_reports", "source"):
        where += " AND (source = 'pipeline' OR source IS NULL)"
    if dataset:
        where, params = where + " AND dataset = ?", [*params, dataset]
    row = _one(con, f"SELECT report_id FROM eval_reports WHERE {where} ORDER BY created_at DESC, report_id LIMIT 1",
               params)
    if row is None:
        raise LineageError(
            f"no askhint evaluation report{f' for data set {dataset!r}' if dataset else ''}; "
            "materialize evaluation_report first"
        )
    return row["report_id"]


def _baseline(con: duckdb.DuckDBPyConnection, rep: dict[str, Any]) -> dict[str, Any] | None:
    """The abstract-prompt report evaluated with ``rep`` (same data set, model, granularity, nearest in time)."""
    same_plan = " AND plan = ?" if rep["plan"] else ""
    row = _one(
        con,
        "SELECT report_id FROM eval_reports WHERE template = ? AND dataset = ? AND model = ? "
        f"AND granularity = ?{same_plan} ORDER BY abs(epoch(created_at) - epoch(?::TIMESTAMP)), report_id LIMIT 1",
        [Template.ABSTRACT, rep["dataset"], rep["model"], rep["granularity"], *([rep["plan"]] if rep["plan"] else []),
         rep["created_at"]],
    )
    if row is None:
        return None
    b = _report(con, row["report_id"])
    return {"report_id": b["report_id"], "created_at": b["created_at"],
            "metrics": {k: b["metrics"].get(k) for k in HEADLINE}}


# -- predictions, plan, model ------------------------------------------------------------------------


def _predictions(con: duckdb.DuckDBPyConnection, rep: dict[str, Any], gaps: list[str]) -> dict[str, Any] | None:
    tv = "list(DISTINCT templates_version ORDER BY templates_version)" if _has(con, "predictions",
                                                                               "templates_version") else "NULL"
    key = "dataset = ? AND question_set = ? AND model = ? AND template = ?"
    params = [rep["dataset"], rep["question_set"], rep["model"], rep["template"]]
    if rep["plan"]:
        key, params = key + " AND plan = ?", [*params, rep["plan"]]
    plans = _rows(
        con,
        "SELECT plan, count(*) AS units, count(DISTINCT video_id) AS videos, min(created_at) AS first_written, "
        "max(created_at) AS last_written, count(*) FILTER (NOT parse_ok) AS unparsed, "
        "count(*) FILTER (score_source = 'failed') AS failed_units, list(DISTINCT run_id ORDER BY run_id) AS runs, "
        f"{tv} AS templates_versions FROM predictions WHERE {key} GROUP BY plan ORDER BY max(created_at) DESC",
        params,
    )
    if not plans:
        gaps.append("no prediction rows match the report (dataset, question_set, model, template, plan): deleted "
                    "or replaced since")
        return None
    if len(plans) > 1:
        same_size = [p for p in plans if p["videos"] == rep["n_videos"]]
        gaps.append(
            f"{len(plans)} scoring plans have predictions for this question set and model and the report names "
            "none (no eval_reports.plan), so the plan is inferred: the most recent with the report's video count"
        )
        plans = same_size or plans
    p = plans[0]
    sources = _rows(
        con,
        "SELECT score_source, count(*) AS n FROM predictions WHERE dataset = ? AND plan = ? AND question_set = ? "
        "AND model = ? AND template = ? GROUP BY 1 ORDER BY 1",
        [rep["dataset"], p["plan"], rep["question_set"], rep["model"], rep["template"]],
    )
    if rep["created_at"] is not None and p["last_written"] is not None and p["last_written"] > rep["created_at"]:
        gaps.append("some prediction rows were rewritten after the report (rows are replaced by key)")
    return {**p, "score_sources": {r["score_source"]: r["n"] for r in sources}}


def _plan(con: duckdb.DuckDBPyConnection, dataset: str, plan: str, granularity: str | None,
          gaps: list[str]) -> dict[str, Any]:
    stats = _one(
        con,
        "WITH u AS (SELECT video_id, len(frame_indices) AS nf, end_frame - start_frame AS span, frames_fps "
        "FROM scoring_units WHERE dataset = ? AND plan = ?), v AS (SELECT video_id, count(*) AS n FROM u GROUP BY 1) "
        "SELECT (SELECT count(*) FROM u) AS units, (SELECT count(*) FROM v) AS videos, "
        "(SELECT max(n) FROM v) AS max_units_per_video, min(nf) AS min_frames_per_unit, "
        "max(nf) AS max_frames_per_unit, avg(nf) AS mean_frames_per_unit, median(span) AS median_unit_span_frames, "
        "avg(frames_fps) AS mean_sampled_fps FROM u",
        [dataset, plan],
    )
    row = _one(con, "SELECT granularity, settings FROM plans WHERE plan = ?", [plan]) if _has(con, "plans") else None
    if row is None:
        gaps.append(f"sampling/scoring settings of plan {plan}: only their hash (the plan id) is stored (no `plans` "
                    "row); frame counts and spans are observed from scoring_units")
    return {"plan": plan, "granularity": row["granularity"] if row else granularity,
            "settings": _json(row["settings"]) if row else None, **(stats or {})}


def _model(con: duckdb.DuckDBPyConnection, rep: dict[str, Any], plan: str, runs: list[str]) -> dict[str, Any]:
    answered_by = _rows(
        con,
        "SELECT r.backend, r.model, count(*) AS units FROM predictions p JOIN responses r "
        "ON r.request_hash = p.stage1_request WHERE p.dataset = ? AND p.plan = ? AND p.question_set = ? "
        "AND p.model = ? AND p.template = ? GROUP BY 1, 2 ORDER BY 3 DESC",
        [rep["dataset"], plan, rep["question_set"], rep["model"], rep["template"]],
    )
    calls = _one(
        con,
        "SELECT count(*) AS requests_sent, count(*) FILTER (NOT ok) AS failed, avg(latency_s) AS mean_latency_s "
        "FROM model_calls WHERE list_contains(?, run_id)",
        [runs],
    )
    fingerprints = [
        _json(r["fingerprint"]) for r in _rows(
            con,
            "SELECT DISTINCT r.fingerprint FROM predictions p JOIN responses r ON r.request_hash = p.stage1_request "
            "WHERE p.dataset = ? AND p.plan = ? AND p.question_set = ? AND p.model = ? AND p.template = ? "
            "AND r.fingerprint IS NOT NULL",
            [rep["dataset"], plan, rep["question_set"], rep["model"], rep["template"]],
        )
    ]
    return {"label": rep["model"], "smoke_model": rep["smoke_model"], "answered_by": answered_by,
            "fingerprints": fingerprints, "calls_in_prediction_runs": calls}


# -- prompt versions -----------------------------------------------------------------------------------


def _prompt_version(con: duckdb.DuckDBPyConnection, version: str | None) -> dict[str, Any] | None:
    row = _one(
        con,
        "SELECT version, prompt_set, kind, parent, produced_by, created_at, files FROM prompt_versions "
        "WHERE version = ?",
        [version],
    )
    if row is None:
        return None
    row["files"] = _json(row["files"])
    ancestors, seen, parent = [], {version}, row["parent"]
    while parent and parent not in seen and len(ancestors) < 100:
        seen.add(parent)
        p = _one(con, "SELECT version, parent, created_at FROM prompt_versions WHERE version = ?", [parent])
        if p is None:
            break
        ancestors.append({"version": p["version"], "created_at": p["created_at"]})
        parent = p["parent"]
    return {**row, "ancestors": ancestors}


def _question_set(con: duckdb.DuckDBPyConnection, qs: str) -> dict[str, Any] | None:
    row = _one(con, "SELECT * FROM question_sets WHERE question_set = ?", [qs])
    if row is not None:
        row["questions"] = list(row["questions"] or [])
        row["settings"] = _json(row["settings"])
    return row


def _clusters(con: duckdb.DuckDBPyConnection, clustering_id: str, qstar: list[str]) -> dict[str, Any] | None:
    rows = _rows(
        con,
        "SELECT cluster, question_id, class, question, was_noise, settings FROM question_clusters "
        "WHERE clustering_id = ? ORDER BY cluster, question_id",
        [clustering_id],
    )
    if not rows:
        return None
    chosen = set(qstar)
    clusters: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        clusters.setdefault(r["cluster"], []).append(
            {"question_id": r["question_id"], "class": r["class"], "question": r["question"],
             "was_noise": r["was_noise"], "in_qstar": r["question"] in chosen}
        )
    return {
        "clustering_id": clustering_id,
        "settings": _json(rows[0]["settings"]),
        "clusters": [{"cluster": c, "questions": qs} for c, qs in sorted(clusters.items())],
    }


def _templates(con: duckdb.DuckDBPyConnection, rep: dict[str, Any], preds: dict[str, Any] | None,
               prompt_set: str | None, gaps: list[str]) -> dict[str, Any]:
    recorded = [v for v in (preds or {}).get("templates_versions") or [] if v]
    version = rep["templates_version"] or (recorded[0] if len(recorded) == 1 else None)
    if version:
        row = _one(con, "SELECT created_at, parent FROM prompt_versions WHERE version = ?", [version])
        if len(recorded) > 1:
            gaps.append(f"prediction rows were written with {len(recorded)} template versions: {', '.join(recorded)}")
        return {"version": version, "created_at": row["created_at"] if row else None,
                "parent": row["parent"] if row else None, "inferred": False}
    rows = _rows(
        con,
        "SELECT version, created_at FROM prompt_versions WHERE kind = 'templates' AND prompt_set = ? "
        "ORDER BY created_at DESC",
        [prompt_set],
    )
    written = preds["first_written"] if preds else None
    before = [r for r in rows if written is None or r["created_at"] <= written]
    pick = before[0] if before else None
    gaps.append("template version: neither eval_reports nor predictions record `templates_version` here, so it is "
                "inferred from timestamps (wrong if the templates were reverted to an earlier version)")
    return {"version": pick["version"] if pick else None, "created_at": pick["created_at"] if pick else None,
            "parent": None, "inferred": True}


# -- public API ----------------------------------------------------------------------------------------


def lineage(store: Store, report_id: str | None = None, dataset: str | None = None) -> dict[str, Any]:
    """The chain behind an evaluation report (default: the latest ASK-Hint report, of ``dataset`` if given).

    Keys: ``report`` (metrics), ``baseline`` (the abstract report beside it), ``predictions``, ``plan``,
    ``model``, ``question_set`` (Q*), ``clusters``, ``class_prompts`` (with ``ancestors``),
    ``templates`` (recorded; inferred from timestamps on older databases) and ``untraceable`` (what the
    database cannot tell, and why).
    """
    gaps: list[str] = []
    with store.connect(read_only=True) as con:
        if report_id:
            rid = _resolve(con, "eval_reports", "report_id", report_id, "report")
        else:
            rid = _latest_report_id(con, dataset)
        rep = _report(con, rid)
        out: dict[str, Any] = {"report": rep, "baseline": None, "predictions": None, "plan": None, "model": None,
                               "question_set": None, "clusters": None, "class_prompts": None, "templates": None}
        if rep["template"] is None:
            gaps.append(f"report from external scores ({rep['source']}): no predictions, Q* or prompts behind it")
            return _clean({**out, "untraceable": gaps})
        out["baseline"] = _baseline(con, rep) if rep["template"] == Template.ASKHINT else None
        preds = _predictions(con, rep, gaps)
        out["predictions"] = preds
        if preds is not None:
            out["plan"] = _plan(con, rep["dataset"], preds["plan"], rep["granularity"], gaps)
            out["model"] = _model(con, rep, preds["plan"], preds["runs"])
        qs = _question_set(con, rep["question_set"]) if rep["template"] == Template.ASKHINT else None
        if rep["template"] == Template.ASKHINT and qs is None:
            gaps.append(f"question set {rep['question_set']} is not in question_sets")
        out["question_set"] = qs
        prompt_set = qs["prompt_set"] if qs else None
        if qs is not None:
            out["clusters"] = _clusters(con, qs["clustering_id"], qs["questions"])
            out["class_prompts"] = _prompt_version(con, qs["prompt_version"])
        if prompt_set is None:  # the abstract baseline: take the prompt set from any Q* of the data set
            row = _one(con, "SELECT q.prompt_set FROM eval_reports e JOIN question_sets q USING (question_set) "
                            "WHERE e.dataset = ? ORDER BY e.created_at DESC LIMIT 1", [rep["dataset"]])
            prompt_set = row["prompt_set"] if row else None
        out["templates"] = _templates(con, rep, preds, prompt_set, gaps)
    if not (out["model"] or {}).get("fingerprints"):
        gaps.append("model settings (the backend fingerprint: model, dtype, decoding): not stored with these "
                    "answers (written before fingerprints were recorded); they enter the request hashes only")
    if not rep.get("eval_settings"):
        gaps.append("evaluation settings (frame_rule, smoothing): not stored with this report (an older row)")
    return _clean({**out, "untraceable": gaps})


def _auc_pairs(con: duckdb.DuckDBPyConnection, a: str, b: str, dataset: str | None) -> list[dict[str, Any]]:
    """Latest frame AUC of ``a`` and ``b`` per (data set, model, granularity, plan) both were evaluated on."""
    plan = "plan" if _has(con, "eval_reports", "plan") else "NULL::VARCHAR"
    where = " AND dataset = ?" if dataset else ""
    return _rows(
        con,
        f"WITH e AS (SELECT question_set, dataset, model, granularity, {plan} AS plan, value, n_videos, report_id, "
        "smoke_model, created_at FROM eval_reports WHERE template = ? AND metric = 'frame_auc' "
        f"AND question_set IN (?, ?){where}), "
        "r AS (SELECT *, row_number() OVER (PARTITION BY question_set, dataset, model, granularity, plan "
        "ORDER BY created_at DESC) AS k FROM e) "
        "SELECT x.dataset, x.model, x.granularity, x.plan, x.value AS auc_a, y.value AS auc_b, x.n_videos AS videos_a, "
        "y.n_videos AS videos_b, x.report_id AS report_a, y.report_id AS report_b, x.smoke_model OR y.smoke_model "
        "AS smoke_model FROM r x JOIN r y ON x.dataset = y.dataset AND x.model = y.model "
        "AND x.granularity = y.granularity AND x.plan IS NOT DISTINCT FROM y.plan "
        "WHERE x.k = 1 AND y.k = 1 AND x.question_set = ? AND y.question_set = ? "
        "ORDER BY x.dataset, x.model, x.granularity",
        [Template.ASKHINT, a, b, *([dataset] if dataset else []), a, b],
    )


def _same_videos(con: duckdb.DuckDBPyConnection, a: str, b: str, pair: dict[str, Any]) -> bool:
    plan = " AND plan = ?" if pair["plan"] else ""
    sql = ("SELECT list(DISTINCT video_id ORDER BY video_id) FROM predictions WHERE template = ? AND "
           f"question_set = ? AND dataset = ? AND model = ?{plan}")
    extra = [pair["plan"]] if pair["plan"] else []
    va = con.execute(sql, [Template.ASKHINT, a, pair["dataset"], pair["model"], *extra]).fetchone()[0]
    vb = con.execute(sql, [Template.ASKHINT, b, pair["dataset"], pair["model"], *extra]).fetchone()[0]
    return bool(va) and va == vb


def diff(store: Store, version_a: str, version_b: str, dataset: str | None = None) -> dict[str, Any]:
    """Two Q* versions (ids or unique prefixes): questions only in A, only in B, in both, and the frame-AUC
    difference (B - A) wherever both were evaluated on the same data set, model and granularity."""
    with store.connect(read_only=True) as con:
        a = _resolve(con, "question_sets", "question_set", version_a, "question set")
        b = _resolve(con, "question_sets", "question_set", version_b, "question set")
        qa, qb = _question_set(con, a), _question_set(con, b)
        pairs = _auc_pairs(con, a, b, dataset)
        for p in pairs:
            p["difference"] = None if p["auc_a"] is None or p["auc_b"] is None else p["auc_b"] - p["auc_a"]
            p["same_videos"] = _same_videos(con, a, b, p)
    in_b = set(qb["questions"])
    in_a = set(qa["questions"])
    note = None
    if not pairs:
        note = (f"no pair of askhint reports evaluates both {a} and {b} on the same data set, model and "
                f"granularity{f' for {dataset!r}' if dataset else ''}: AUC difference unknown")
    return _clean({
        "a": {k: qa[k] for k in ("question_set", "prompt_version", "clustering_id", "created_at")},
        "b": {k: qb[k] for k in ("question_set", "prompt_version", "clustering_id", "created_at")},
        "only_in_a": [q for q in qa["questions"] if q not in in_b],
        "only_in_b": [q for q in qb["questions"] if q not in in_a],
        "common": [q for q in qa["questions"] if q in in_b],
        "settings_changed": {k: [qa["settings"].get(k), qb["settings"].get(k)]
                             for k in sorted(set(qa["settings"]) | set(qb["settings"]))
                             if qa["settings"].get(k) != qb["settings"].get(k)},
        "auc": pairs,
        "auc_note": note,
    })


def history(store: Store, dataset: str | None = None) -> list[dict[str, Any]]:
    """Q* versions oldest first: created_at, prompt version and its parent, size, questions, and the latest
    ASK-Hint frame AUC per data set (``frame_auc`` is the one of ``dataset``; window granularity where
    both were evaluated; ablation rows excluded). With ``dataset``, only the
    versions of the prompt sets evaluated on it. Question sets only the prompt-count ablation made are not Q*
    versions and are left out."""
    with store.connect(read_only=True) as con:
        sets = _rows(
            con,
            "SELECT q.question_set, q.created_at, q.prompt_set, q.prompt_version, p.parent AS parent_version, "
            "q.questions FROM question_sets q LEFT JOIN prompt_versions p ON p.version = q.prompt_version "
            "WHERE coalesce(q.method, '') <> ? ORDER BY q.created_at, q.question_set",
            [ABLATION_METHOD],
        )
        aucs = _rows(
            con,
            "SELECT question_set, dataset, model, value, n_videos, smoke_model FROM eval_reports "
            "WHERE template = ? AND metric = 'frame_auc' AND coalesce(source, '') NOT LIKE 'ablation:%' "
            "QUALIFY row_number() OVER (PARTITION BY question_set, dataset "
            "ORDER BY created_at DESC, granularity = 'video', granularity) = 1",
            [Template.ASKHINT],
        )
    by_qs: dict[str, dict[str, dict[str, Any]]] = {}
    for r in aucs:
        by_qs.setdefault(r["question_set"], {})[r["dataset"]] = r
    if dataset:
        prompt_sets = {s["prompt_set"] for s in sets if dataset in by_qs.get(s["question_set"], {})}
        sets = [s for s in sets if s["prompt_set"] in prompt_sets]
    out = []
    for s in sets:
        evals = by_qs.get(s["question_set"], {})
        row = {**s, "questions": list(s["questions"] or []), "size": len(s["questions"] or []),
               "frame_auc_by_dataset": {d: e["value"] for d, e in sorted(evals.items())}}
        if dataset:
            e = evals.get(dataset)
            row |= {"frame_auc": e["value"] if e else None, "model": e["model"] if e else None,
                    "smoke_model": e["smoke_model"] if e else None}
        out.append(row)
    return _clean(out)
