"""Asset checks on the prompt chain, the predictions and the evaluation.

Each check receives its asset's value (the typed reference the asset returns, :mod:`askhint_assets.refs`:
versions, data set, plans, model), applies its rule from :mod:`askhint_assets.pipeline.checks` to the rows in DuckDB
(the ``store`` resource), and reports the outcome; so a check run on its own (from the UI) judges
exactly the rows the latest materialization wrote. Blocking checks stop the run's downstream steps
when they fail (a bad Q* never reaches the VLM); with the automation conditions of ``automation.py``
a failed blocking check also keeps the VLM assets from being requested.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from askhint_assets.evaluation.markdown import md_table
from askhint_assets.orchestration.chain import ChainNames
from askhint_assets.orchestration.resources import StoreResource
from askhint_assets.pipeline import checks as rules
from askhint_assets.pipeline.checks import PARSE_FAILURE_THRESHOLD, QSTAR_MAX, QSTAR_MIN, CheckOutcome
from askhint_assets.refs import ClustersRef, PredictionsRef, QStarRef, ReportRef

WARN = dg.AssetCheckSeverity.WARN


def _metadata_value(v: Any) -> Any:
    """A rule's plain metadata value as Dagster shows it: tables and markdown rendered, dicts and lists as JSON."""
    if isinstance(v, rules.Table):
        return dg.MetadataValue.md(md_table(list(v.rows)))
    if isinstance(v, rules.Markdown):
        return dg.MetadataValue.md(v.text)
    if isinstance(v, dict | list):
        return dg.MetadataValue.json(v)
    return v


def _result(outcome: CheckOutcome, severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR
            ) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=severity,
        description=outcome.description,
        metadata={k: _metadata_value(v) for k, v in outcome.metadata.items()},
    )


_QSTAR_SPEC = dict(
    name="qstar_size_within_bounds",
    blocking=True,
    description=f"Q* as stored in `question_sets` has exactly the target size, and {QSTAR_MIN} <= size <= "
    f"{QSTAR_MAX} (fewer questions give the model too little to go on, more dilute the prompt).",
)


def _qstar_size(guiding_questions: QStarRef, store: StoreResource) -> dg.AssetCheckResult:
    return _result(rules.qstar_size(store.store(), guiding_questions))


_CLUSTERS_SPEC = dict(
    name="clusters_cover_every_class",
    blocking=True,
    description="Every class of the prompt version's taxonomy has at least one question in some cluster "
    "(rows of `question_clusters` for this clustering); an uncovered class cannot inform Q*.",
)


def _clusters_cover(question_clusters: ClustersRef, store: StoreResource) -> dg.AssetCheckResult:
    return _result(rules.clusters_cover_classes(store.store(), question_clusters))


_COVERAGE_DESCRIPTION = (
    "Every video of the data set with status `ok` in `videos` has prediction rows for this question set, "
    "model, plan and template (a video without them would silently drop out of the AUC)."
)


def _askhint_covered(askhint_predictions: PredictionsRef, store: StoreResource) -> dg.AssetCheckResult:
    return _result(rules.every_video_predicted(store.store(), askhint_predictions))


def _abstract_covered(abstract_predictions: PredictionsRef, store: StoreResource) -> dg.AssetCheckResult:
    return _result(rules.every_video_predicted(store.store(), abstract_predictions))


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
    def parse_failure_rate(askhint_predictions: PredictionsRef, store: StoreResource) -> dg.AssetCheckResult:
        return _result(rules.parse_failures(store.store(), askhint_predictions, threshold))

    return parse_failure_rate


_LOGPROBS_SPEC = dict(
    name="scored_from_logprobs",
    description="Every unit is scored from the answer-token log-probabilities (severity WARN). A server that "
    "returns none (e.g. `transformers serve`, endpoints that refuse them with video) leaves the answer text "
    "to score: 0 or 1 per unit, a coarser ranking; those units carry `score_source = answer` and the reason.",
)


def _scored_from_logprobs(askhint_predictions: PredictionsRef, store: StoreResource) -> dg.AssetCheckResult:
    return _result(rules.scored_from_logprobs(store.store(), askhint_predictions), WARN)


_NOT_BELOW_SPEC = dict(
    name="askhint_not_below_abstract",
    description="ASK-Hint's pooled frame-level AUC is not below the abstract-prompt baseline's on the same "
    "videos, at every evaluated granularity (severity WARN). With the smoke-test model the comparison is "
    "informational only: that model says nothing about ASK-Hint.",
)


def _not_below_abstract(evaluation_report: ReportRef, store: StoreResource) -> dg.AssetCheckResult:
    return _result(rules.askhint_not_below_abstract(store.store(), evaluation_report), WARN)


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
