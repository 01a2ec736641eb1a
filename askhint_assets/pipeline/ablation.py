"""The prompt-count ablation (the paper's Table 5): Q* of each size built from the same clusters, scored and
evaluated at one granularity; frame AUC against size."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from askhint_assets import ids
from askhint_assets.evaluation.markdown import md_table
from askhint_assets.evaluation.metrics import evaluate
from askhint_assets.evaluation.plots import ablation_plot
from askhint_assets.evaluation.report_text import SMOKE_NOTE
from askhint_assets.pipeline.qstar import select_qstar
from askhint_assets.pipeline.report import frame_scores_for, report_rows
from askhint_assets.prompts.templates import Template
from askhint_assets.refs import ClustersRef, SizePredictionsRef
from askhint_assets.settings import ScoringSettings
from askhint_assets.store import Store
from askhint_assets.store.predictions import store_report_rows
from askhint_assets.store.prompts import ABLATION_METHOD, record_question_set
from askhint_assets.store.videos import load_units, load_videos
from askhint_assets.video.units import Unit

Score = Callable[[list[Unit], list[str], str], int]
"""Scores units with the ASK-Hint template and the given questions and question set; returns the number of
model requests sent."""


@dataclass(frozen=True)
class Ablation:
    """One row per size (size, question set, frame and video AUC, requests sent), as a table and a plot."""

    table: list[dict]
    markdown: str
    plot_png: bytes

    @property
    def sizes(self) -> list[int]:
        return [t["size"] for t in self.table]

    @property
    def aucs(self) -> list[float]:
        return [t["frame_auc"] for t in self.table]


def prompt_count_ablation(
    st: Store, dataset: str, clusters_ref: ClustersRef, templates_version: str, sizes: list[int], plan: str,
    granularity: str, sc: ScoringSettings, eval_settings: str, model: str, smoke: bool, score: Score,
) -> Ablation:
    """For each size: select Q* from ``clusters_ref``'s clusters, record the question set (method
    ``ablation``), ``score`` the plan's units with it, evaluate and store the rows (source
    ``ablation:size=<n>``)."""
    units = load_units(st, dataset, [plan])
    videos = load_videos(st, dataset)
    table, rows = [], []
    for size in sizes:
        selected, _, _ = select_qstar(st, clusters_ref, size)
        qs = [q.question for q in selected]
        qset = ids.question_set_id(qs)
        # recorded like Q*, so an ablation report traces back to its questions and clusters
        record_question_set(st, {
            "question_set": qset, "questions": qs, "prompt_set": clusters_ref.prompt_set,
            "prompt_version": clusters_ref.version, "clustering_id": clusters_ref.clustering_id,
            "settings": json.dumps({"target_size": size, "produced_by": "prompt_count_ablation"}),
            "method": ABLATION_METHOD,
        })
        sent = score(units, qs, qset)
        ref = SizePredictionsRef(dataset=dataset, question_set=qset, model=model, template=Template.ASKHINT,
                                 smoke_model=smoke, templates_version=templates_version)
        result = evaluate(frame_scores_for(st, ref, plan, videos, sc.frame_rule, sc.smoothing), videos)
        report_id = ids.report_id(ref, plan, result.to_rows(), ablation=True)
        rows += report_rows(ref, result, report_id, granularity, plan, dataset, eval_settings,
                            source=f"ablation:size={len(qs)}")
        table.append({"size": len(qs), "question_set": qset, "frame_auc": result.frame_auc,
                      "video_auc": result.video_auc, "requests_sent": sent})
    store_report_rows(st, rows)
    plot = ablation_plot([t["size"] for t in table], [t["frame_auc"] for t in table],
                         f"Frame AUC vs Q* size ({granularity})")
    md = md_table(table)
    return Ablation(table=table, markdown=SMOKE_NOTE + "\n\n" + md if smoke else md, plot_png=plot)
