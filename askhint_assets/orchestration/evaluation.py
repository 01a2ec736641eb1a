"""Evaluation assets: the report (pooled frame-level AUC/AP, video AUC, per-class AUC, ASK-Hint vs the
baseline) and the prompt-count ablation; each calls its pipeline function and describes the result."""


import json

import dagster as dg
from dagster import AssetExecutionContext

from askhint_assets.evaluation.markdown import md_table
from askhint_assets.evaluation.report_text import trade_markdown
from askhint_assets.hashing import hash_obj
from askhint_assets.orchestration.automation import on_new_predictions
from askhint_assets.orchestration.chain import DatasetChain
from askhint_assets.orchestration.errors import fails_clearly
from askhint_assets.orchestration.metadata import image_md, versioned_output
from askhint_assets.orchestration.resources import StoreResource, VLMResource, model_label
from askhint_assets.orchestration.scoring import score_units
from askhint_assets.pipeline.ablation import prompt_count_ablation as run_ablation
from askhint_assets.pipeline.report import build_report
from askhint_assets.pipeline.scoring import ScoringTask, decode_options
from askhint_assets.prompts.templates import Template
from askhint_assets.refs import (
    AblationRef,
    ClustersRef,
    DatasetIndexRef,
    FramesRef,
    FrozenDict,
    PredictionsRef,
    ReportRef,
    TemplatesRef,
)

GROUP = "evaluation"
PREDICTIONS = {  # input name → template, in the report's column order
    "askhint_predictions": Template.ASKHINT,
    "per_question_predictions": Template.PER_QUESTION,
    "abstract_predictions": Template.ABSTRACT,
}


def build_evaluation_assets(chain: DatasetChain) -> list:
    """``evaluation_report`` (and ``prompt_count_ablation`` when sizes are set) of one data set's chain."""
    s, names = chain.settings, chain.names
    sc = s.scoring
    tree_rule = {"tree_rule": sc.tree_frame_rule} if "tree" in sc.granularities else {}  # others keep their hashes
    eval_json = json.dumps({"frame_rule": sc.frame_rule, "smoothing": sc.smoothing, **tree_rule})
    predictions = ("askhint_predictions", "per_question_predictions") if sc.per_question else ("askhint_predictions",)

    @dg.asset(
        key=names.key("evaluation_report"),
        group_name=names.group(GROUP),
        ins=names.ins(*predictions, "abstract_predictions", "dataset_index"),
        automation_condition=on_new_predictions(names.key("dataset_index")),
        # 2-: the output is a ReportRef (1-: a dict)
        code_version="2-" + hash_obj({"rule": sc.frame_rule, "smooth": sc.smoothing, **tree_rule}, length=8),
        description="Pooled frame-level ROC-AUC and AP, video-level AUC, per-class AUC and false-alarm "
        "rate for ASK-Hint and the abstract baseline on the same videos, at every granularity (table "
        "`eval_reports`), with ROC and per-class plots and the published numbers beside ours.",
    )
    @fails_clearly
    def evaluation_report(context: AssetExecutionContext, store: StoreResource,
                          **refs: PredictionsRef | DatasetIndexRef) -> dg.Output[ReportRef]:
        dataset = refs["dataset_index"].dataset
        by_template: dict[str, PredictionsRef] = {
            template: refs[name] for name, template in PREDICTIONS.items() if name in refs}  # type: ignore[misc]
        r = build_report(store.store(), by_template, dataset, sc, s.sampling.config(), eval_json)
        a, b = r.askhint, r.abstract
        return versioned_output(
            ReportRef(dataset=dataset, report_ids=FrozenDict(r.report_ids), frame_auc=a.frame_auc),
            data_version=dg.DataVersion(hash_obj(r.report_ids)),
            metadata={
                "frame_auc": a.frame_auc,
                "frame_ap": a.frame_ap,
                "video_auc": a.video_auc,
                "abstract_frame_auc": b.frame_auc,
                "headline_granularity": r.head,
                **{f"frame_auc/{key}": r.results[tuple(key.split("/"))].frame_auc for key in r.report_ids},
                "videos": a.n_videos,
                "frames": a.n_frames,
                "failed_videos": r.n_failed,
                "units_scored_from_answer_text": sum(c.get("answer", 0) for c in r.sources.values()),
                "answers_by_video_input": dg.MetadataValue.json(r.timings),
                "smoke_test_model": bool(r.refs[Template.ASKHINT].smoke_model),
                "report": dg.MetadataValue.md(r.markdown),
                "roc": dg.MetadataValue.md(image_md(r.roc_png, "ROC curve")),
                "per_class_auc": dg.MetadataValue.md(image_md(r.per_class_png, "per-class AUC")),
                "cost_vs_auc": dg.MetadataValue.md(trade_markdown(r.trade) + "\n\n"
                                                   + image_md(r.trade_png, "AUC vs requests")),
                "report_file": dg.MetadataValue.path(str(r.report_file)),
                "prompt_version_history": dg.MetadataValue.md(md_table(r.versions)),
            },
        )

    if not s.questions.ablation_sizes:
        return [evaluation_report]
    sizes = sorted(set(s.questions.ablation_sizes))
    ablation_granularity = "video" if "video" in s.scoring.granularities else s.scoring.granularities[0]

    @dg.asset(
        key=names.key("prompt_count_ablation"),
        group_name=names.group(GROUP),
        ins={**chain.prompts.ins("question_clusters", "inference_templates"),
             **names.ins("sampled_frames", "dataset_index")},
        # 2-: the output is an AblationRef (1-: a dict)
        code_version="2-" + hash_obj({"sizes": sizes, "g": ablation_granularity, "rule": sc.frame_rule}, length=8),
        description=f"Prompt-count ablation (the paper's Table 5): Q* of each size in {sizes} built from the "
        f"same clusters, scored at `{ablation_granularity}` granularity and evaluated; AUC against size. "
        "Requests are cached, so a size equal to the main Q* costs nothing.",
    )
    @fails_clearly
    def prompt_count_ablation(
        context: AssetExecutionContext,
        question_clusters: ClustersRef,
        inference_templates: TemplatesRef,
        sampled_frames: FramesRef,
        dataset_index: DatasetIndexRef,
        store: StoreResource,
        vlm: VLMResource,
    ) -> dg.Output[AblationRef]:
        def score(units: list, questions: list[str], question_set: str) -> int:
            task = ScoringTask(template=Template.ASKHINT, questions=questions, question_set=question_set,
                               templates_ref=inference_templates, on_error=s.dataset.on_error, decode=decode_options(s))
            _, runner, _ = score_units(context, units, task, store, vlm)
            return runner.stats.sent

        dataset = dataset_index.dataset
        ab = run_ablation(store.store(), dataset, question_clusters, inference_templates.version, sizes,
                          sampled_frames.plans[ablation_granularity], ablation_granularity, sc, eval_json,
                          model_label(vlm), vlm.is_smoke, score)
        return versioned_output(
            AblationRef(dataset=dataset, sizes=tuple(ab.sizes), frame_auc=tuple(ab.aucs)),
            data_version=dg.DataVersion(hash_obj(ab.table)),
            metadata={
                "ablation": dg.MetadataValue.md(ab.markdown),
                "auc_vs_size": dg.MetadataValue.md(image_md(ab.plot_png, "AUC vs size")),
            },
        )

    return [evaluation_report, prompt_count_ablation]
