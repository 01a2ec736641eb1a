"""Asset checks on the prompt chain, the predictions and the evaluation.

Each check receives its asset's value (the small reference dict the asset returns: versions, data
set, plan, model) and reads DuckDB through the ``store`` resource, so a check run on its own (from
the UI) judges exactly the rows the latest materialization wrote. Blocking checks stop the run's
downstream steps when they fail (a bad Q* never reaches the VLM); with the automation conditions of
``automation.py`` a failed blocking check also keeps the VLM assets from being requested.
"""

from __future__ import annotations

import math

import dagster as dg

from askhint_assets.orchestration.metadata import md_table
from askhint_assets.orchestration.prompts import load_class_prompts
from askhint_assets.orchestration.resources import StoreResource

QSTAR_MIN, QSTAR_MAX = 3, 12
PARSE_FAILURE_THRESHOLD = 0.2
_PRED_KEY = "dataset = ? AND list_contains(?, plan) AND question_set = ? AND model = ? AND template = ?"


def plans_of(ref: dict) -> dict[str, str]:
    """Granularity → plan id of a prediction reference (older references carry one ``plan``)."""
    return dict(ref["plans"]) if "plans" in ref else {"-": ref["plan"]}


def _pred_params(ref: dict) -> list:
    return [ref["dataset"], sorted(plans_of(ref).values()), ref["question_set"], ref["model"], ref["template"]]


@dg.asset_check(
    asset="guiding_questions",
    name="qstar_size_within_bounds",
    blocking=True,
    description=f"Q* as stored in `question_sets` has exactly the target size, and {QSTAR_MIN} <= size <= "
    f"{QSTAR_MAX} (fewer questions give the model too little to go on, more dilute the prompt).",
)
def qstar_size_within_bounds(guiding_questions: dict, store: StoreResource) -> dg.AssetCheckResult:
    qs = guiding_questions["question_set"]
    target = int(guiding_questions["target_size"])
    stored = store.store().scalar("SELECT questions FROM question_sets WHERE question_set = ?", [qs])
    if stored is None:
        return dg.AssetCheckResult(
            passed=False,
            description=f"question set {qs} is not in question_sets",
            metadata={"question_set": qs, "target_size": target},
        )
    size = len(stored)
    problems = []
    if size != target:
        problems.append(f"size {size} != target {target}")
    if not QSTAR_MIN <= size <= QSTAR_MAX:
        problems.append(f"size {size} outside [{QSTAR_MIN}, {QSTAR_MAX}]")
    return dg.AssetCheckResult(
        passed=not problems,
        description="; ".join(problems) or f"{size} questions, as targeted",
        metadata={
            "question_set": qs,
            "size": size,
            "target_size": target,
            "bounds": f"[{QSTAR_MIN}, {QSTAR_MAX}]",
            "questions": dg.MetadataValue.md("\n".join(f"{i}. {q}" for i, q in enumerate(stored, 1))),
        },
    )


@dg.asset_check(
    asset="question_clusters",
    name="clusters_cover_every_class",
    blocking=True,
    description="Every class of the prompt version's taxonomy has at least one question in some cluster "
    "(rows of `question_clusters` for this clustering); an uncovered class cannot inform Q*.",
)
def clusters_cover_every_class(question_clusters: dict, store: StoreResource) -> dg.AssetCheckResult:
    st = store.store()
    classes = sorted(load_class_prompts(st, question_clusters["version"])["classes"])
    df = st.query(
        "SELECT class, list(DISTINCT cluster ORDER BY cluster) AS clusters, count(*) AS questions "
        "FROM question_clusters WHERE clustering_id = ? GROUP BY class ORDER BY class",
        [question_clusters["clustering_id"]],
    )
    covered = {r["class"]: r for r in df.iter_rows(named=True)}
    missing = [c for c in classes if c not in covered]
    n_clusters = len({c for r in covered.values() for c in r["clusters"]})
    table = [
        {"class": c, "clusters": ", ".join(map(str, covered[c]["clusters"])) if c in covered else "-",
         "questions": covered[c]["questions"] if c in covered else 0}
        for c in classes
    ]
    return dg.AssetCheckResult(
        passed=bool(classes) and not missing,
        description=f"uncovered classes: {', '.join(missing)}" if missing else f"all {len(classes)} classes covered",
        metadata={
            "clustering_id": question_clusters["clustering_id"],
            "prompt_version": question_clusters["version"],
            "classes": len(classes),
            "clusters": n_clusters,
            "uncovered": dg.MetadataValue.json(missing),
            "coverage": dg.MetadataValue.md(md_table(table)),
        },
    )


def _predictions_cover_videos(ref: dict, store: StoreResource) -> dg.AssetCheckResult:
    st = store.store()
    ok = set(
        st.query("SELECT video_id FROM videos WHERE dataset = ? AND status = 'ok'", [ref["dataset"]])["video_id"]
    )
    df = st.query(
        f"SELECT plan, video_id, count(*) AS units, count(*) FILTER (score_source = 'failed') AS failed "
        f"FROM predictions WHERE {_PRED_KEY} GROUP BY plan, video_id",
        _pred_params(ref),
    )
    missing = {}
    for g, plan in plans_of(ref).items():
        got = set(df.filter(df["plan"] == plan)["video_id"])
        if ok - got:
            missing[f"{g} ({plan})"] = sorted(ok - got)
    n_missing = len(set().union(*missing.values())) if missing else 0
    return dg.AssetCheckResult(
        passed=bool(ok) and not missing,
        description=(
            "no ok videos in the data set" if not ok
            else f"{n_missing} of {len(ok)} videos without predictions in {', '.join(missing)}" if missing
            else f"all {len(ok)} videos predicted under {len(plans_of(ref))} plan(s)"
        ),
        metadata={
            "dataset": ref["dataset"],
            "template": ref["template"],
            "question_set": ref["question_set"],
            "plans": dg.MetadataValue.json(plans_of(ref)),
            "ok_videos": len(ok),
            "units": int(df["units"].sum()) if df.height else 0,
            "failed_units": int(df["failed"].sum()) if df.height else 0,
            "missing_videos": dg.MetadataValue.json({k: v[:50] for k, v in missing.items()}),
        },
    )


_COVERAGE_DESCRIPTION = (
    "Every video of the data set with status `ok` in `videos` has prediction rows for this question set, "
    "model, plan and template (a video without them would silently drop out of the AUC)."
)


@dg.asset_check(asset="askhint_predictions", name="every_video_predicted", blocking=True,
                description=_COVERAGE_DESCRIPTION)
def askhint_every_video_predicted(askhint_predictions: dict, store: StoreResource) -> dg.AssetCheckResult:
    return _predictions_cover_videos(askhint_predictions, store)


@dg.asset_check(asset="abstract_predictions", name="every_video_predicted", blocking=True,
                description=_COVERAGE_DESCRIPTION)
def abstract_every_video_predicted(abstract_predictions: dict, store: StoreResource) -> dg.AssetCheckResult:
    return _predictions_cover_videos(abstract_predictions, store)


def parse_failure_check(threshold: float = PARSE_FAILURE_THRESHOLD) -> dg.AssetChecksDefinition:
    """The parse-failure check on ``askhint_predictions`` with the given maximum rate."""

    @dg.asset_check(
        asset="askhint_predictions",
        name="parse_failure_rate",
        description=f"Share of scoring units whose answer could not be parsed (`parse_ok` false: stage 1 "
        f"not Normal/Abnormal, or stage 2 without group) is below {threshold:.0%}. Not blocking: scores "
        "fall back to the answer-token log-probabilities, but a high rate means the template and the "
        "model disagree.",
    )
    def parse_failure_rate(askhint_predictions: dict, store: StoreResource) -> dg.AssetCheckResult:
        st = store.store()
        df = st.query(
            f"SELECT parse_ok, raw_stage1, raw_stage2, video_id, unit FROM predictions WHERE {_PRED_KEY} "
            "ORDER BY video_id, unit",
            _pred_params(askhint_predictions),
        )
        n = df.height
        bad = df.filter(~df["parse_ok"].fill_null(False))
        rate = bad.height / n if n else 1.0
        examples = [
            {"video": r["video_id"], "unit": r["unit"], "stage1": (r["raw_stage1"] or "")[:80],
             "stage2": (r["raw_stage2"] or "")[:80]}
            for r in bad.head(5).iter_rows(named=True)
        ]
        return dg.AssetCheckResult(
            passed=n > 0 and rate < threshold,
            description=f"{bad.height}/{n} units unparsed ({rate:.1%}; threshold {threshold:.0%})"
            if n else "no prediction rows",
            metadata={
                "units": n,
                "unparsed": bad.height,
                "rate": float(rate),
                "threshold": float(threshold),
                "examples": dg.MetadataValue.md(md_table(examples)),
            },
        )

    return parse_failure_rate


@dg.asset_check(
    asset="askhint_predictions",
    name="scored_from_logprobs",
    description="Every unit is scored from the answer-token log-probabilities (severity WARN). A server that "
    "returns none (e.g. `transformers serve`, endpoints that refuse them with video) leaves the answer text "
    "to score: 0 or 1 per unit, a coarser ranking; those units carry `score_source = answer` and the reason.",
)
def askhint_scored_from_logprobs(askhint_predictions: dict, store: StoreResource) -> dg.AssetCheckResult:
    df = store.store().query(
        f"SELECT score_source, coalesce(score_reason, '') AS reason, count(*) AS n FROM predictions "
        f"WHERE {_PRED_KEY} AND score_source <> 'failed' GROUP BY ALL ORDER BY n DESC",
        _pred_params(askhint_predictions),
    )
    total = int(df["n"].sum()) if df.height else 0
    weak = df.filter(df["score_source"] != "logprobs")
    n_weak = int(weak["n"].sum()) if weak.height else 0
    return dg.AssetCheckResult(
        passed=total > 0 and n_weak == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{n_weak} of {total} units not scored from log-probabilities" if total else "no prediction rows",
        metadata={"units": total, "not_from_logprobs": n_weak,
                  "sources": dg.MetadataValue.md(md_table(df.to_dicts()))},
    )


@dg.asset_check(
    asset="evaluation_report",
    name="askhint_not_below_abstract",
    description="ASK-Hint's pooled frame-level AUC is not below the abstract-prompt baseline's on the same "
    "videos, at every evaluated granularity (severity WARN). With the smoke-test model the comparison is "
    "informational only: that model says nothing about ASK-Hint.",
)
def askhint_not_below_abstract(evaluation_report: dict, store: StoreResource) -> dg.AssetCheckResult:
    ids = evaluation_report["report_ids"]  # "<granularity>/<template>" (older reports: "<template>") -> id
    df = store.store().query(
        "SELECT report_id, value, smoke_model FROM eval_reports WHERE list_contains(?, report_id) "
        "AND metric = 'frame_auc'",
        [sorted(ids.values())],
    )
    value = {r["report_id"]: r["value"] for r in df.iter_rows(named=True)}
    smoke = bool(df["smoke_model"].any()) if df.height else False
    per: dict[str, dict[str, float | None]] = {}
    for key, rid in ids.items():
        g, _, template = key.rpartition("/")
        v = value.get(rid)
        per.setdefault(g or "-", {})[template] = None if v is None or math.isnan(v) else v
    rows, passed, texts = [], True, []
    for g, auc in per.items():
        a, b = auc.get("askhint"), auc.get("abstract")
        ok = a is not None and b is not None and a >= b
        passed &= ok
        texts.append(f"{g}: " + (f"ASK-Hint {a:.4f} {'>=' if ok else '<'} abstract {b:.4f}"
                                 if a is not None and b is not None else "frame AUC missing"))
        rows.append({"granularity": g, "askhint": a if a is not None else "n/a",
                     "abstract": b if b is not None else "n/a", "ok": ok})
    text = "; ".join(texts) + (" (smoke-test model: informational)" if smoke else "")
    return dg.AssetCheckResult(
        passed=passed and bool(per),
        severity=dg.AssetCheckSeverity.WARN,
        description=text,
        metadata={
            "smoke_test_model": smoke,
            "comparison": dg.MetadataValue.md(md_table(rows)),
            "report_ids": dg.MetadataValue.json(ids),
        },
    )


def build_checks(parse_failure_threshold: float = PARSE_FAILURE_THRESHOLD) -> list[dg.AssetChecksDefinition]:
    """Every askhint asset check (the parse-failure threshold is the one setting)."""
    return [
        qstar_size_within_bounds,
        clusters_cover_every_class,
        askhint_every_video_predicted,
        abstract_every_video_predicted,
        parse_failure_check(parse_failure_threshold),
        askhint_scored_from_logprobs,
        askhint_not_below_abstract,
    ]
