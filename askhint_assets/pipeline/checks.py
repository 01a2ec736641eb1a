"""The rules the asset checks apply, without Dagster: each reads the store for the reference an asset returned
and says whether its rows pass, why, and what to show beside the verdict.

Metadata values are plain: numbers, strings and booleans as they are, dicts and lists as JSON, a
:class:`Table` of row dicts and :class:`Markdown` text for the Dagster layer to render as markdown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from askhint_assets.prompts.templates import Template
from askhint_assets.refs import ClustersRef, PredictionsRef, QStarRef, ReportRef
from askhint_assets.store import Store
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
"""Bounds of a Q*'s size: fewer questions give the model too little to go on, more dilute the prompt."""
PARSE_FAILURE_THRESHOLD = 0.2
"""Default largest share of unparsed answers a prediction set may have."""


@dataclass(frozen=True)
class Table:
    """Rows to show as a markdown table."""

    rows: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Markdown:
    """Text to show as markdown."""

    text: str


@dataclass(frozen=True)
class CheckOutcome:
    """A check's verdict, the one line saying why, and what to show beside it (in display order)."""

    passed: bool
    description: str
    metadata: dict[str, Any]


def qstar_size(st: Store, guiding_questions: QStarRef) -> CheckOutcome:
    """Q* as stored has exactly its target size, within [:data:`QSTAR_MIN`, :data:`QSTAR_MAX`]."""
    qs = guiding_questions.question_set
    target = int(guiding_questions.target_size)
    stored = question_set_questions(st, qs)
    if stored is None:
        return CheckOutcome(False, f"question set {qs} is not in question_sets",
                            {"question_set": qs, "target_size": target})
    size = len(stored)
    problems = []
    if size != target:
        problems.append(f"size {size} != target {target}")
    if not QSTAR_MIN <= size <= QSTAR_MAX:
        problems.append(f"size {size} outside [{QSTAR_MIN}, {QSTAR_MAX}]")
    return CheckOutcome(
        passed=not problems,
        description="; ".join(problems) or f"{size} questions, as targeted",
        metadata={
            "question_set": qs,
            "size": size,
            "target_size": target,
            "bounds": f"[{QSTAR_MIN}, {QSTAR_MAX}]",
            "questions": Markdown("\n".join(f"{i}. {q}" for i, q in enumerate(stored, 1))),
        },
    )


def clusters_cover_classes(st: Store, question_clusters: ClustersRef) -> CheckOutcome:
    """Every class of the prompt version's taxonomy has a question in some cluster of the clustering."""
    classes = sorted(prompt_version_content(st, question_clusters.version)["classes"])
    covered = cluster_coverage(st, question_clusters.clustering_id)
    missing = [c for c in classes if c not in covered]
    n_clusters = len({c for r in covered.values() for c in r["clusters"]})
    rows = tuple(
        {"class": c, "clusters": ", ".join(map(str, covered[c]["clusters"])) if c in covered else "-",
         "questions": covered[c]["questions"] if c in covered else 0}
        for c in classes
    )
    return CheckOutcome(
        passed=bool(classes) and not missing,
        description=f"uncovered classes: {', '.join(missing)}" if missing else f"all {len(classes)} classes covered",
        metadata={
            "clustering_id": question_clusters.clustering_id,
            "prompt_version": question_clusters.version,
            "classes": len(classes),
            "clusters": n_clusters,
            "uncovered": missing,
            "coverage": Table(rows),
        },
    )


def every_video_predicted(st: Store, predictions: PredictionsRef) -> CheckOutcome:
    """Every ``ok`` video of the data set has prediction rows of this set under every plan."""
    ok = ok_video_ids(st, predictions.dataset)
    df = units_per_video(st, predictions)
    plans = plans_of(predictions)
    missing = {}
    for g, plan in plans.items():
        got = set(df.filter(df["plan"] == plan)["video_id"])
        if ok - got:
            missing[f"{g} ({plan})"] = sorted(ok - got)
    n_missing = len(set().union(*missing.values())) if missing else 0
    return CheckOutcome(
        passed=bool(ok) and not missing,
        description=(
            "no ok videos in the data set" if not ok
            else f"{n_missing} of {len(ok)} videos without predictions in {', '.join(missing)}" if missing
            else f"all {len(ok)} videos predicted under {len(plans)} plan(s)"
        ),
        metadata={
            "dataset": predictions.dataset,
            "template": predictions.template,
            "question_set": predictions.question_set,
            "plans": plans,
            "ok_videos": len(ok),
            "units": int(df["units"].sum()) if df.height else 0,
            "failed_units": int(df["failed"].sum()) if df.height else 0,
            "missing_videos": {k: v[:50] for k, v in missing.items()},
        },
    )


def parse_failures(st: Store, predictions: PredictionsRef, threshold: float = PARSE_FAILURE_THRESHOLD) -> CheckOutcome:
    """The share of units whose answer could not be parsed is below ``threshold`` (no rows: fails)."""
    df = parse_results(st, predictions)
    n = df.height
    bad = df.filter(~df["parse_ok"].fill_null(False))
    rate = bad.height / n if n else 1.0
    examples = tuple(
        {"video": r["video_id"], "unit": r["unit"], "stage1": (r["raw_stage1"] or "")[:80],
         "stage2": (r["raw_stage2"] or "")[:80]}
        for r in bad.head(5).iter_rows(named=True)
    )
    return CheckOutcome(
        passed=n > 0 and rate < threshold,
        description=f"{bad.height}/{n} units unparsed ({rate:.1%}; threshold {threshold:.0%})"
        if n else "no prediction rows",
        metadata={
            "units": n,
            "unparsed": bad.height,
            "rate": float(rate),
            "threshold": float(threshold),
            "examples": Table(examples),
        },
    )


def scored_from_logprobs(st: Store, predictions: PredictionsRef) -> CheckOutcome:
    """Every scored unit got its score from the answer-token log-probabilities (no rows: fails)."""
    df = score_sources(st, predictions)
    total = int(df["n"].sum()) if df.height else 0
    weak = df.filter(df["score_source"] != "logprobs")
    n_weak = int(weak["n"].sum()) if weak.height else 0
    return CheckOutcome(
        passed=total > 0 and n_weak == 0,
        description=f"{n_weak} of {total} units not scored from log-probabilities" if total else "no prediction rows",
        metadata={"units": total, "not_from_logprobs": n_weak, "sources": Table(tuple(df.to_dicts()))},
    )


def askhint_not_below_abstract(st: Store, evaluation_report: ReportRef) -> CheckOutcome:
    """ASK-Hint's frame AUC is at least the abstract baseline's at every granularity of the report."""
    ids = evaluation_report.report_ids  # "<granularity>/<template>" (older reports: "<template>") -> id
    df = frame_auc_of_reports(st, list(ids.values()))
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
    return CheckOutcome(
        passed=passed and bool(per),
        description="; ".join(texts) + (" (smoke-test model: informational)" if smoke else ""),
        metadata={"smoke_test_model": smoke, "comparison": Table(tuple(rows)), "report_ids": dict(ids)},
    )
