"""The report's text: ASK-Hint beside the abstract prompt per granularity, cost beside accuracy, the published
numbers. Plain formatting of evaluated results; nothing here reads the store."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from askhint_assets.evaluation.markdown import md_table
from askhint_assets.evaluation.metrics import EvalResult
from askhint_assets.evaluation.published import published_rows
from askhint_assets.prompts.templates import Template
from askhint_assets.refs import PredictionsRef

if TYPE_CHECKING:
    from askhint_assets.settings import ScoringSettings

LABELS = {Template.ASKHINT: "ASK-Hint", Template.PER_QUESTION: "ASK-Hint, per question",
          Template.ABSTRACT: "abstract prompt", Template.FOLLOW_UP: "ASK-Hint, follow-ups where uncertain"}
SMOKE_NOTE = (
    "**Smoke-test model**: a tiny Qwen2.5-VL trained for minutes on synthetic clips. "
    "Its AUC shows the wiring works; it is not a result about ASK-Hint."
)


def percent(x: float | None) -> str:
    """``x`` as a percentage with two decimals; ``n/a`` for None or NaN."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def report_markdown(
    dataset: str, refs: dict[str, PredictionsRef], results: dict[tuple[str, str], EvalResult], n_failed: int,
    score_sources: dict[str, dict[str, int]] | None = None,
    timings: dict[str, dict[str, int]] | None = None,
    trade: list[dict] | None = None,
    band_note: str | None = None,
) -> str:
    """The human-readable report: per granularity, ASK-Hint beside the abstract prompt; published numbers."""
    granularities = list(dict.fromkeys(g for g, _ in results))
    first = results[(granularities[0], Template.ASKHINT)]
    lines = [f"# askhint report: data set `{dataset}`", ""]
    head = refs[Template.ASKHINT]
    if head.smoke_model:
        lines += [SMOKE_NOTE, ""]
    lines += [
        f"Model `{head.model}`, Q* `{head.question_set}`, "
        f"{first.n_videos} videos ({first.n_anomalous_videos} anomalous), {first.n_frames} frames; "
        f"{n_failed} video(s) failed and are excluded.",
    ]
    for name, counts in (score_sources or {}).items():
        lines.append(f"\n{LABELS[name]} units by score source: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                     + (" (answer: scored 0/1 from the answer text, the server gave no log-probabilities; "
                        "see `score_reason`)" if counts.get("answer") else ""))
    for name, counts in (timings or {}).items():
        if set(counts) - {"video"}:
            shown = ", ".join(f"{k} {v}" for k, v in counts.items())
            lines.append(f"\n**{LABELS[name]} answers by video input:** {shown}"
                         + " (video/server_default: timed at the server's default frame rate, "
                         "`model.video_timing: server_default`, so Qwen2.5-VL's time positions do not follow the "
                         "sampled frames; images: no time positions)")
    names = list(refs)
    for g in granularities:
        res = [results[(g, n)] for n in names]
        lines += ["", f"## Granularity `{g}`", ""]
        lines += ["| metric (%) | " + " | ".join(LABELS[n] for n in names) + " |", "|---" * (len(names) + 1) + "|"]
        for metric in ("frame_auc", "frame_ap", "video_auc", "false_alarm_rate"):
            lines.append(f"| {metric} | " + " | ".join(percent(getattr(r, metric)) for r in res) + " |")
        for c in sorted({c for r in res for c in r.per_class_auc}):
            lines.append(f"| auc/{c} | " + " | ".join(percent(r.per_class_auc.get(c)) for r in res) + " |")
        for note in dict.fromkeys(n for r in res for n in r.notes):
            lines.append(f"\n_note: {note}_")
    if trade:
        lines += ["", "## What each granularity costs", "",
                  "Requests per video count every request a unit needed (stage 1, per-question, stage 2), cached "
                  "or not: what the set costs a cold cache. Frames per video: the frames those requests carry "
                  "(each request sends its unit's sampled frames; the visual prompt tokens grow with them).", "",
                  trade_markdown(trade)]
        if band_note:
            lines += ["", band_note]
    lines += [
        "",
        "Pooled frame-level metrics over every frame of every video; AP is scikit-learn's "
        "average_precision_score (step-wise); video AUC uses each video's maximum frame score.",
        "",
        "## Published frame-level numbers (%)",
        "",
        md_table(published_rows()),
    ]
    return "\n".join(lines)


def trade_markdown(trade: list[dict]) -> str:
    """The cost/accuracy table: one row per granularity and template."""
    head = ("| granularity | template | frame AUC | frame AP | video AUC | requests per video | frames per video |\n"
            "|---|---|---:|---:|---:|---:|---:|")
    rows = [f"| {t['granularity']} | {t['template']} | {percent(t['frame_auc'])} | {percent(t['frame_ap'])} | "
            f"{percent(t['video_auc'])} | {t['requests_per_video']:.2f} | {t['frames_per_video']:.1f} |"
            for t in trade]
    return "\n".join([head, *rows])


def band_markdown(sc: ScoringSettings) -> str | None:
    """Where the uncertain band is used (tree splits, follow-ups) and where it came from; None where unused."""
    uses = ([f"a tree node is split at score >= {sc.uncertain_band[0]}, frames take the `{sc.tree_frame_rule}` "
             "node's score"] if "tree" in sc.granularities else [])
    if sc.follow_up == "uncertain":
        uses.append(f"follow-ups ask each Q* question where the joint score is in [{sc.uncertain_band[0]}, "
                    f"{sc.uncertain_band[1]})")
    if not uses:
        return None
    return f"Uncertain band {list(sc.uncertain_band)}: " + "; ".join(uses) + f". Band from: {sc.band_source}."
