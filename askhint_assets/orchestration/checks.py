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

from askhint_assets.orchestration.chain import ChainNames
from askhint_assets.orchestration.metadata import md_table
from askhint_assets.orchestration.resources import StoreResource
from askhint_assets.prompts.templates import Template
from askhint_assets.store.predictions import (
    frame_auc_of_reports,
    parse_results,
    plans_of,
    score_sources,
    units_per_video,
)
from askhint_assets.store.prompts import cluster_coverage, prompt_version_content, question_set_questions
from askhint_assets.store.videos import ok_video_ids

QSTAR_MIN, QSTAR_MAX = 3, 12
PARSE_FAILURE_THRESHOLD = 0.2


_QSTAR_SPEC = dict(
    name="qstar_size_within_bounds",
    blocking=True,
    description=f"Q* as stored in `question_sets` has exactly the target size, and {QSTAR_MIN} <= size <= "
    f"{QSTAR_MAX} (fewer questions give the model too little to go on, more dilute the prompt).",
)


def _qstar_size(guiding_questions: dict, store: StoreResource) -> dg.AssetCheckResult:
    qs = guiding_questions["question_set"]
    target = int(guiding_questions["target_size"])
    stored = question_set_questions(store.store(), qs)
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


_CLUSTERS_SPEC = dict(
    name="clusters_cover_every_class",
    blocking=True,
    description="Every class of the prompt version's taxonomy has at least one question in some cluster "
    "(rows of `question_clusters` for this clustering); an uncovered class cannot inform Q*.",
)


def _clusters_cover(question_clusters: dict, store: StoreResource) -> dg.AssetCheckResult:
    st = store.store()
    classes = sorted(prompt_version_content(st, question_clusters["version"])["classes"])
    covered = cluster_coverage(st, question_clusters["clustering_id"])
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
    ok = ok_video_ids(st, ref["dataset"])
    df = units_per_video(st, ref)
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


def _askhint_covered(askhint_predictions: dict, store: StoreResource) -> dg.AssetCheckResult:
    return _predictions_cover_videos(askhint_predictions, store)


def _abstract_covered(abstract_predictions: dict, store: StoreResource) -> dg.AssetCheckResult:
    return _predictions_cover_videos(abstract_predictions, store)


def _coverage_check(names: ChainNames, asset: str) -> dg.AssetChecksDefinition:
    """``every_video_predicted`` on one prediction asset of a chain (the body's parameter names the asset)."""
    body = {"askhint_predictions": _askhint_covered, "abstract_predictions": _abstract_covered}[asset]
    return dg.asset_check(asset=names.key(asset), name="every_video_predicted", blocking=True,
                          description=_COVERAGE_DESCRIPTION)(body)


def parse_failure_check(
    threshold: float = PARSE_FAILURE_THRESHOLD, names: ChainNames = ChainNames()
) -> dg.AssetChecksDefinition:
    """The parse-failure check on ``askhint_predictions`` with the given maximum rate."""

    @dg.asset_check(
        asset=names.key("askhint_predictions"),
        name="parse_failure_rate",
        description=f"Share of scoring units whose answer could not be parsed (`parse_ok` false: stage 1 "
        f"not Normal/Abnormal, or stage 2 without group) is below {threshold:.0%}. Not blocking: scores "
        "fall back to the answer-token log-probabilities, but a high rate means the template and the "
        "model disagree.",
    )
    def parse_failure_rate(askhint_predictions: dict, store: StoreResource) -> dg.AssetCheckResult:
        st = store.store()
        df = parse_results(st, askhint_predictions)
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


_LOGPROBS_SPEC = dict(
    name="scored_from_logprobs",
    description="Every unit is scored from the answer-token log-probabilities (severity WARN). A server that "
    "returns none (e.g. `transformers serve`, endpoints that refuse them with video) leaves the answer text "
    "to score: 0 or 1 per unit, a coarser ranking; those units carry `score_source = answer` and the reason.",
)


def _scored_from_logprobs(askhint_predictions: dict, store: StoreResource) -> dg.AssetCheckResult:
    df = score_sources(store.store(), askhint_predictions)
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


_NOT_BELOW_SPEC = dict(
    name="askhint_not_below_abstract",
    description="ASK-Hint's pooled frame-level AUC is not below the abstract-prompt baseline's on the same "
    "videos, at every evaluated granularity (severity WARN). With the smoke-test model the comparison is "
    "informational only: that model says nothing about ASK-Hint.",
)


def _not_below_abstract(evaluation_report: dict, store: StoreResource) -> dg.AssetCheckResult:
    ids = evaluation_report["report_ids"]  # "<granularity>/<template>" (older reports: "<template>") -> id
    df = frame_auc_of_reports(store.store(), list(ids.values()))
    value = {r["report_id"]: r["value"] for r in df.iter_rows(named=True)}
    smoke = bool(df["smoke_model"].any()) if df.height else False
    per: dict[str, dict[str, float | None]] = {}
    for key, rid in ids.items():
        g, _, template = key.rpartition("/")
        v = value.get(rid)
        per.setdefault(g or "-", {})[template] = None if v is None or math.isnan(v) else v
    rows, passed, texts = [], True, []
    for g, auc in per.items():
        a, b = auc.get(Template.ASKHINT), auc.get(Template.ABSTRACT)
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


def build_prompt_checks(names: ChainNames) -> list[dg.AssetChecksDefinition]:
    """The checks of a prompt chain (Q* size, cluster coverage), on the keys of ``names``."""
    return [
        dg.asset_check(asset=names.key("guiding_questions"), **_QSTAR_SPEC)(_qstar_size),
        dg.asset_check(asset=names.key("question_clusters"), **_CLUSTERS_SPEC)(_clusters_cover),
    ]


def build_dataset_checks(
    names: ChainNames, parse_failure_threshold: float = PARSE_FAILURE_THRESHOLD
) -> list[dg.AssetChecksDefinition]:
    """The checks of a data set's chain (coverage, parse failures, ASK-Hint vs abstract) on its keys."""
    return [
        _coverage_check(names, "askhint_predictions"),
        _coverage_check(names, "abstract_predictions"),
        parse_failure_check(parse_failure_threshold, names),
        dg.asset_check(asset=names.key("askhint_predictions"), **_LOGPROBS_SPEC)(_scored_from_logprobs),
        dg.asset_check(asset=names.key("evaluation_report"), **_NOT_BELOW_SPEC)(_not_below_abstract),
    ]


qstar_size_within_bounds, clusters_cover_every_class = build_prompt_checks(ChainNames())
(askhint_every_video_predicted, abstract_every_video_predicted, _, askhint_scored_from_logprobs,
 askhint_not_below_abstract) = build_dataset_checks(ChainNames())
