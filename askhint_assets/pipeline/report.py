"""The evaluation report of one data set: every (granularity, template) evaluated from the stored predictions,
its rows stored (``eval_reports``), the markdown report and its plots written under the home."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from askhint_assets import ids, paths
from askhint_assets.datasets.base import VideoRecord
from askhint_assets.errors import AskHintError, MissingArtefactError
from askhint_assets.evaluation.cost import cost_of
from askhint_assets.evaluation.frames import smooth, window_frame_scores
from askhint_assets.evaluation.metrics import EvalResult, evaluate, pooled_frame_arrays
from askhint_assets.evaluation.plots import per_class_bar, roc_plot, trade_plot
from askhint_assets.evaluation.report_text import LABELS, band_markdown, report_markdown
from askhint_assets.evaluation.tree_frames import tree_frame_scores
from askhint_assets.prompts.templates import Template
from askhint_assets.refs import PredictionsRef, RowsOf, SizePredictionsRef
from askhint_assets.settings import ScoringSettings
from askhint_assets.store import Store, now
from askhint_assets.store.lineage import history
from askhint_assets.store.predictions import (
    activity,
    node_scores,
    request_spans,
    score_path_counts,
    score_source_counts,
    store_report_rows,
    unit_scores,
    video_timings,
)
from askhint_assets.store.videos import load_videos
from askhint_assets.video.sampling import SamplingConfig


def frame_scores_for(
    st: Store, ref: RowsOf, plan: str, videos: list[VideoRecord], rule: str, kernel: int, *, tree: bool = False
) -> dict[str, np.ndarray]:
    """Per-frame scores of one prediction set under one plan: unit scores spread over their frames by ``rule``
    (``tree``: a tree plan's nodes, the deepest or highest covering each frame), smoothed by ``kernel`` > 1."""
    per_video = node_scores(st, ref, plan) if tree else unit_scores(st, ref, plan)
    spread = tree_frame_scores if tree else window_frame_scores
    out = {}
    for v in videos:
        if v.video_id not in per_video:
            continue
        fs = spread(per_video[v.video_id], v.num_frames, rule=rule)
        out[v.video_id] = smooth(fs, kernel) if kernel > 1 else fs
    return out


def report_rows(
    ref: PredictionsRef | SizePredictionsRef, result: EvalResult, report_id: str, granularity: str, plan: str,
    dataset: str, eval_settings: str,
    source: str = "pipeline",
) -> list[dict]:
    """The ``eval_reports`` rows of one evaluated prediction set (NaN values stored as NULL)."""
    ts = now()
    return [
        {
            "report_id": report_id,
            "created_at": ts,
            "dataset": dataset,
            "question_set": ref.question_set,
            "model": ref.model,
            "template": ref.template,
            "granularity": granularity,
            "metric": r["metric"],
            "value": None if r["value"] is None or math.isnan(r["value"]) else float(r["value"]),
            "n_videos": result.n_videos,
            "n_frames": result.n_frames,
            "smoke_model": bool(ref.smoke_model),
            "source": source,
            "plan": plan,
            "templates_version": ref.templates_version,
            "eval_settings": eval_settings,
        }
        for r in result.to_rows()
    ]


def trade_rows(st: Store, refs: dict[str, PredictionsRef], results: dict[tuple[str, str], EvalResult],
               videos: list[VideoRecord], sampling: SamplingConfig) -> list[dict]:
    """Accuracy beside cost for every (granularity, template) evaluated."""
    by_id = {v.video_id: v for v in videos}
    out = []
    for (g, name), r in results.items():
        c = cost_of(request_spans(st, refs[name], refs[name].plans[g]), by_id, sampling)
        out.append({"granularity": g, "template": LABELS[name], "frame_auc": r.frame_auc, "frame_ap": r.frame_ap,
                    "video_auc": r.video_auc, "requests_per_video": c.requests_per_video,
                    "frames_per_video": c.frames_per_video})
    return out


@dataclass(frozen=True)
class Report:
    """One data set's evaluation: results per (granularity, template), the report's text and plots."""

    dataset: str
    head: str  # the headline granularity (the first configured)
    refs: dict[str, PredictionsRef]  # template → prediction reference, follow-ups included where asked
    results: dict[tuple[str, str], EvalResult]
    report_ids: dict[str, str]  # "granularity/template" → report id
    n_failed: int  # videos that failed and are excluded
    sources: dict[str, dict[str, int]]  # template → units by score source (follow-ups: by path too)
    timings: dict[str, dict[str, int]]  # template → answers by video input
    trade: list[dict]  # accuracy beside cost, one row per (granularity, template)
    markdown: str
    report_file: Path
    trade_png: bytes
    roc_png: bytes
    per_class_png: bytes
    versions: list[dict]  # the Q* versions evaluated on this data set, oldest first

    @property
    def askhint(self) -> EvalResult:
        return self.results[(self.head, Template.ASKHINT)]

    @property
    def abstract(self) -> EvalResult:
        return self.results[(self.head, Template.ABSTRACT)]


def _evaluate_all(st: Store, refs: dict[str, PredictionsRef], videos: list[VideoRecord], sc: ScoringSettings,
                  dataset: str, eval_settings: str) -> tuple[dict, dict, dict, list[dict]]:
    """Results, report ids and the headline granularity's ROC inputs of every (granularity, template)."""
    head = sc.granularities[0]
    results, curves, rows, report_ids = {}, {}, [], {}
    for g, plan in refs[Template.ASKHINT].plans.items():
        for name, ref in refs.items():
            tree = g == "tree"
            scores = frame_scores_for(st, ref, plan, videos, sc.tree_frame_rule if tree else sc.frame_rule,
                                      sc.smoothing, tree=tree)
            missing = [v.video_id for v in videos if v.video_id not in scores]
            if missing:
                raise MissingArtefactError(f"{name}/{g}: no predictions for {len(missing)} video(s), e.g. "
                                           f"{missing[:5]}; materialize the prediction assets first")
            result = evaluate(scores, videos)
            if g == head:
                y, ys, _ = pooled_frame_arrays(scores, videos)
                curves[LABELS[name]] = (y, ys)
            report_id = ids.report_id(ref, plan, result.to_rows())
            rows += report_rows(ref, result, report_id, g, plan, dataset, eval_settings)
            results[(g, name)], report_ids[f"{g}/{name}"] = result, report_id
    return results, report_ids, curves, rows


def build_report(st: Store, refs: dict[str, PredictionsRef], dataset: str, sc: ScoringSettings,
                 sampling: SamplingConfig, eval_settings: str) -> Report:
    """Evaluate every (granularity, template) of ``refs`` on the data set's videos, store the rows, and write
    the markdown report and its AUC-vs-requests plot (``paths.report_path``). ``eval_settings``: the JSON the
    rows record of how frame scores were made. Raises :class:`MissingArtefactError` where a video has no
    predictions."""
    if sc.follow_up == "uncertain":  # stored by askhint_predictions beside its joint rows
        refs = {**refs, Template.FOLLOW_UP: dataclasses.replace(refs[Template.ASKHINT], template=Template.FOLLOW_UP)}
    videos = load_videos(st, dataset)
    n_failed = len(load_videos(st, dataset, only_ok=False)) - len(videos)
    head = sc.granularities[0]
    results, report_ids, curves, rows = _evaluate_all(st, refs, videos, sc, dataset, eval_settings)
    store_report_rows(st, rows)
    sources = {name: score_source_counts(st, ref) for name, ref in refs.items()}
    if Template.FOLLOW_UP in refs:
        sources[Template.FOLLOW_UP] |= {f"path {k}": v
                                        for k, v in score_path_counts(st, refs[Template.FOLLOW_UP]).items()}
    timings = {name: video_timings(st, ref) for name, ref in refs.items()}
    trade = trade_rows(st, refs, results, videos, sampling)
    report_file = paths.report_path(dataset)
    report_file.parent.mkdir(parents=True, exist_ok=True)
    series: dict[str, list] = {}
    for t in trade:
        series.setdefault(t["template"], []).append((t["requests_per_video"], t["frame_auc"], t["granularity"]))
    trade_png = trade_plot(series, f"Frame AUC against requests per video: {dataset}")
    trade_file = report_file.with_name(f"{report_file.stem}_auc_vs_requests.png")
    trade_file.write_bytes(trade_png)
    band_note = (band_markdown(sc) or "") + f"\n\n![frame AUC against requests per video]({trade_file.name})"
    md = report_markdown(dataset, refs, results, n_failed, sources, timings, trade, band_note)
    report_file.write_text(md + "\n")
    roc = roc_plot(curves, f"ROC, pooled frames ({head}): {dataset}")
    per_class = {
        c: {LABELS[n]: results[(head, n)].per_class_auc.get(c, float("nan")) for n in refs}
        for c in sorted(results[(head, Template.ASKHINT)].per_class_auc)
    }
    bars = per_class_bar(per_class, f"Per-class AUC ({head}): {dataset}")
    versions = [
        {"question_set": h["question_set"], "created_at": h["created_at"], "size": h["size"],
         "frame_auc": h.get("frame_auc"), "Q*": " / ".join(h["questions"])}
        for h in history(st, dataset)
    ]
    return Report(dataset=dataset, head=head, refs=refs, results=results, report_ids=report_ids, n_failed=n_failed,
                  sources=sources, timings=timings, trade=trade, markdown=md, report_file=report_file,
                  trade_png=trade_png, roc_png=roc, per_class_png=bars, versions=versions)


@dataclass(frozen=True)
class ReportFiles:
    """The latest report of each configured data set and what the store holds (``askhint report``)."""

    texts: list[str]
    files: list[Path]
    db: Path
    prediction_rows: int
    requests_sent: int
    runs: int


def latest_reports(datasets: list[str]) -> ReportFiles:
    """The report files of ``datasets`` and the store's activity; an :class:`AskHintError` naming the report
    files not written yet."""
    files = [paths.report_path(name) for name in datasets]
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise AskHintError(f"{', '.join(missing)}: no report yet; run `make demo` or materialize evaluation_report")
    texts = [p.read_text() for p in files]
    preds, sent, runs = activity(Store(paths.db_path()), datasets)
    return ReportFiles(texts, files, paths.db_path(), preds, sent, runs)
