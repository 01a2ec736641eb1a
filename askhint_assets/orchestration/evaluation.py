"""Evaluation asset: pooled frame-level AUC/AP, video AUC, per-class AUC, ASK-Hint vs the baseline."""


import json
import math

import dagster as dg
import numpy as np
from dagster import AssetExecutionContext

from askhint_assets import ids, paths
from askhint_assets.datasets.base import VideoRecord
from askhint_assets.evaluation.cost import cost_of
from askhint_assets.evaluation.frames import smooth, window_frame_scores
from askhint_assets.evaluation.metrics import EvalResult, evaluate, pooled_frame_arrays
from askhint_assets.evaluation.plots import ablation_plot, per_class_bar, roc_plot, trade_plot
from askhint_assets.evaluation.published import published_rows
from askhint_assets.evaluation.tree_frames import tree_frame_scores
from askhint_assets.hashing import hash_obj
from askhint_assets.orchestration.automation import on_new_predictions
from askhint_assets.orchestration.chain import DatasetChain
from askhint_assets.orchestration.errors import fails_clearly
from askhint_assets.orchestration.metadata import image_md, md_table, versioned_output
from askhint_assets.orchestration.resources import StoreResource, VLMResource, model_label
from askhint_assets.orchestration.scoring import score_units
from askhint_assets.pipeline.qstar import select_qstar
from askhint_assets.pipeline.scoring import ScoringTask, decode_options
from askhint_assets.prompts.templates import Template
from askhint_assets.store import now
from askhint_assets.store.lineage import history
from askhint_assets.store.predictions import (
    node_scores,
    request_spans,
    score_path_counts,
    score_source_counts,
    store_report_rows,
    unit_scores,
    video_timings,
)
from askhint_assets.store.prompts import ABLATION_METHOD, record_question_set
from askhint_assets.store.videos import load_units, load_videos

GROUP = "evaluation"
LABELS = {Template.ASKHINT: "ASK-Hint", Template.PER_QUESTION: "ASK-Hint, per question",
          Template.ABSTRACT: "abstract prompt", "follow_up": "ASK-Hint, follow-ups where uncertain"}
SMOKE_NOTE = (
    "**Smoke-test model**: a tiny Qwen2.5-VL trained for minutes on synthetic clips. "
    "Its AUC shows the wiring works; it is not a result about ASK-Hint."
)


def frame_scores_for(
    st, ref: dict, plan: str, videos: list[VideoRecord], rule: str, kernel: int, *, tree: bool = False
) -> dict[str, np.ndarray]:
    """Per-frame scores of one prediction set under one plan: unit scores spread over their frames by ``rule``
    (``tree``: a tree plan's nodes, the deepest or highest covering each frame)."""
    per_video = node_scores(st, ref, plan) if tree else unit_scores(st, ref, plan)
    spread = tree_frame_scores if tree else window_frame_scores
    out = {}
    for v in videos:
        if v.video_id not in per_video:
            continue
        fs = spread(per_video[v.video_id], v.num_frames, rule=rule)
        out[v.video_id] = smooth(fs, kernel) if kernel > 1 else fs
    return out


def _report_rows(
    ref: dict, result: EvalResult, report_id: str, granularity: str, plan: str, dataset: str, eval_settings: str
) -> list[dict]:
    ts = now()
    return [
        {
            "report_id": report_id,
            "created_at": ts,
            "dataset": dataset,
            "question_set": ref["question_set"],
            "model": ref["model"],
            "template": ref["template"],
            "granularity": granularity,
            "metric": r["metric"],
            "value": None if r["value"] is None or math.isnan(r["value"]) else float(r["value"]),
            "n_videos": result.n_videos,
            "n_frames": result.n_frames,
            "smoke_model": bool(ref["smoke_model"]),
            "source": "pipeline",
            "plan": plan,
            "templates_version": ref.get("templates_version"),
            "eval_settings": eval_settings,
        }
        for r in result.to_rows()
    ]


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def report_markdown(
    dataset: str, refs: dict[str, dict], results: dict[tuple[str, str], EvalResult], n_failed: int,
    score_sources: dict[str, dict[str, int]] | None = None,
    timings: dict[str, dict[str, int]] | None = None,
    trade: list[dict] | None = None,
    band_note: str | None = None,
) -> str:
    """The human-readable report: per granularity, ASK-Hint beside the abstract prompt; published numbers."""
    granularities = list(dict.fromkeys(g for g, _ in results))
    first = results[(granularities[0], Template.ASKHINT)]
    lines = [f"# askhint report: data set `{dataset}`", ""]
    if refs[Template.ASKHINT]["smoke_model"]:
        lines += [SMOKE_NOTE, ""]
    lines += [
        f"Model `{refs[Template.ASKHINT]['model']}`, Q* `{refs[Template.ASKHINT]['question_set']}`, "
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
            lines.append(f"| {metric} | " + " | ".join(_fmt(getattr(r, metric)) for r in res) + " |")
        for c in sorted({c for r in res for c in r.per_class_auc}):
            lines.append(f"| auc/{c} | " + " | ".join(_fmt(r.per_class_auc.get(c)) for r in res) + " |")
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
    rows = [f"| {t['granularity']} | {t['template']} | {_fmt(t['frame_auc'])} | {_fmt(t['frame_ap'])} | "
            f"{_fmt(t['video_auc'])} | {t['requests_per_video']:.2f} | {t['frames_per_video']:.1f} |" for t in trade]
    return "\n".join([head, *rows])


def band_markdown(sc) -> str | None:
    """Where the uncertain band is used (tree splits, follow-ups) and where it came from; None where unused."""
    uses = ([f"a tree node is split at score >= {sc.uncertain_band[0]}, frames take the `{sc.tree_frame_rule}` "
             "node's score"] if "tree" in sc.granularities else [])
    if sc.follow_up == "uncertain":
        uses.append(f"follow-ups ask each Q* question where the joint score is in [{sc.uncertain_band[0]}, "
                    f"{sc.uncertain_band[1]})")
    if not uses:
        return None
    return f"Uncertain band {list(sc.uncertain_band)}: " + "; ".join(uses) + f". Band from: {sc.band_source}."


def trade_rows(st, refs: dict[str, dict], results: dict[tuple[str, str], EvalResult], videos: list[VideoRecord],
               sampling) -> list[dict]:
    """Accuracy beside cost for every (granularity, template) evaluated."""
    by_id = {v.video_id: v for v in videos}
    out = []
    for (g, name), r in results.items():
        c = cost_of(request_spans(st, refs[name], refs[name]["plans"][g]), by_id, sampling)
        out.append({"granularity": g, "template": LABELS[name], "frame_auc": r.frame_auc, "frame_ap": r.frame_ap,
                    "video_auc": r.video_auc, "requests_per_video": c.requests_per_video,
                    "frames_per_video": c.frames_per_video})
    return out


def build_evaluation_assets(chain: DatasetChain) -> list:
    """``evaluation_report`` (and ``prompt_count_ablation`` when sizes are set) of one data set's chain."""
    s, names = chain.settings, chain.names
    sc = s.scoring
    tree_rule = {"tree_rule": sc.tree_frame_rule} if "tree" in sc.granularities else {}  # others keep their hashes
    eval_json = json.dumps({"frame_rule": sc.frame_rule, "smoothing": sc.smoothing, **tree_rule})

    def report(context: AssetExecutionContext, refs: dict[str, dict], dataset_index: dict, st) -> dg.Output[dict]:
        dataset = dataset_index["dataset"]
        if sc.follow_up == "uncertain":  # stored by askhint_predictions beside its joint rows
            refs = {**refs, "follow_up": {**refs["askhint"], "template": "follow_up"}}
        videos = load_videos(st, dataset)
        n_failed = len(load_videos(st, dataset, only_ok=False)) - len(videos)
        head = s.scoring.granularities[0]
        results, curves, rows, report_ids = {}, {}, [], {}
        for g, plan in refs[Template.ASKHINT]["plans"].items():
            for name, ref in refs.items():
                tree = g == "tree"
                scores = frame_scores_for(st, ref, plan, videos, sc.tree_frame_rule if tree else sc.frame_rule,
                                          sc.smoothing, tree=tree)
                missing = [v.video_id for v in videos if v.video_id not in scores]
                if missing:
                    raise dg.Failure(f"{name}/{g}: no predictions for {len(missing)} video(s), e.g. {missing[:5]}; "
                                     "materialize the prediction assets first")
                result = evaluate(scores, videos)
                if g == head:
                    y, ys, _ = pooled_frame_arrays(scores, videos)
                    curves[LABELS[name]] = (y, ys)
                report_id = ids.report_id(ref, plan, result.to_rows())
                rows += _report_rows(ref, result, report_id, g, plan, dataset, eval_json)
                results[(g, name)], report_ids[f"{g}/{name}"] = result, report_id
        store_report_rows(st, rows)
        sources = {name: score_source_counts(st, ref) for name, ref in refs.items()}
        if "follow_up" in refs:
            sources["follow_up"] |= {f"path {k}": v for k, v in score_path_counts(st, refs["follow_up"]).items()}
        timings = {name: video_timings(st, ref) for name, ref in refs.items()}
        trade = trade_rows(st, refs, results, videos, s.sampling.config())
        band_note = band_markdown(sc)
        report_file = paths.report_path(dataset)
        report_file.parent.mkdir(parents=True, exist_ok=True)
        series: dict[str, list] = {}
        for t in trade:
            series.setdefault(t["template"], []).append((t["requests_per_video"], t["frame_auc"], t["granularity"]))
        trade_png = trade_plot(series, f"Frame AUC against requests per video: {dataset}")
        trade_file = report_file.with_name(f"{report_file.stem}_auc_vs_requests.png")
        trade_file.write_bytes(trade_png)
        band_note = (band_note or "") + f"\n\n![frame AUC against requests per video]({trade_file.name})"
        md = report_markdown(dataset, refs, results, n_failed, sources, timings, trade, band_note)
        report_file.write_text(md + "\n")
        roc = roc_plot(curves, f"ROC, pooled frames ({head}): {dataset}")
        per_class = {
            c: {LABELS[n]: results[(head, n)].per_class_auc.get(c, float("nan")) for n in refs}
            for c in sorted(results[(head, Template.ASKHINT)].per_class_auc)
        }
        bars = per_class_bar(per_class, f"Per-class AUC ({head}): {dataset}")
        a, b = results[(head, Template.ASKHINT)], results[(head, Template.ABSTRACT)]
        versions = [
            {"question_set": h["question_set"], "created_at": h["created_at"], "size": h["size"],
             "frame_auc": h.get("frame_auc"), "Q*": " / ".join(h["questions"])}
            for h in history(st, dataset)
        ]
        return versioned_output(
            {"dataset": dataset, "report_ids": report_ids, "frame_auc": a.frame_auc},
            data_version=dg.DataVersion(hash_obj(report_ids)),
            metadata={
                "frame_auc": a.frame_auc,
                "frame_ap": a.frame_ap,
                "video_auc": a.video_auc,
                "abstract_frame_auc": b.frame_auc,
                "headline_granularity": head,
                **{f"frame_auc/{key}": results[tuple(key.split("/"))].frame_auc for key in report_ids},
                "videos": a.n_videos,
                "frames": a.n_frames,
                "failed_videos": n_failed,
                "units_scored_from_answer_text": sum(c.get("answer", 0) for c in sources.values()),
                "answers_by_video_input": dg.MetadataValue.json(timings),
                "smoke_test_model": bool(refs[Template.ASKHINT]["smoke_model"]),
                "report": dg.MetadataValue.md(md),
                "roc": dg.MetadataValue.md(image_md(roc, "ROC curve")),
                "per_class_auc": dg.MetadataValue.md(image_md(bars, "per-class AUC")),
                "cost_vs_auc": dg.MetadataValue.md(trade_markdown(trade) + "\n\n"
                                                   + image_md(trade_png, "AUC vs requests")),
                "report_file": dg.MetadataValue.path(str(report_file)),
                "prompt_version_history": dg.MetadataValue.md(md_table(versions)),
            },
        )

    predictions = ("askhint_predictions", "per_question_predictions") if sc.per_question else ("askhint_predictions",)
    spec = dict(
        key=names.key("evaluation_report"),
        group_name=names.group(GROUP),
        ins=names.ins(*predictions, "abstract_predictions", "dataset_index"),
        automation_condition=on_new_predictions(names.key("dataset_index")),
        code_version="1-" + hash_obj({"rule": sc.frame_rule, "smooth": sc.smoothing, **tree_rule}, length=8),
        description="Pooled frame-level ROC-AUC and AP, video-level AUC, per-class AUC and false-alarm "
        "rate for ASK-Hint and the abstract baseline on the same videos, at every granularity (table "
        "`eval_reports`), with ROC and per-class plots and the published numbers beside ours.",
    )
    if sc.per_question:

        @dg.asset(**spec)
        @fails_clearly
        def evaluation_report_with_per_question(
            context: AssetExecutionContext,
            askhint_predictions: dict,
            per_question_predictions: dict,
            abstract_predictions: dict,
            dataset_index: dict,
            store: StoreResource,
        ) -> dg.Output[dict]:
            refs = {
                Template.ASKHINT: askhint_predictions,
                Template.PER_QUESTION: per_question_predictions,
                Template.ABSTRACT: abstract_predictions,
            }
            return report(context, refs, dataset_index, store.store())

        evaluation_report = evaluation_report_with_per_question
    else:

        @dg.asset(**spec)
        @fails_clearly
        def evaluation_report(
            context: AssetExecutionContext,
            askhint_predictions: dict,
            abstract_predictions: dict,
            dataset_index: dict,
            store: StoreResource,
        ) -> dg.Output[dict]:
            refs = {Template.ASKHINT: askhint_predictions, Template.ABSTRACT: abstract_predictions}
            return report(context, refs, dataset_index, store.store())

    if not s.questions.ablation_sizes:
        return [evaluation_report]
    sizes = sorted(set(s.questions.ablation_sizes))
    ablation_granularity = "video" if "video" in s.scoring.granularities else s.scoring.granularities[0]

    @dg.asset(
        key=names.key("prompt_count_ablation"),
        group_name=names.group(GROUP),
        ins={**chain.prompts.ins("question_clusters", "inference_templates"),
             **names.ins("sampled_frames", "dataset_index")},
        code_version="1-" + hash_obj({"sizes": sizes, "g": ablation_granularity, "rule": sc.frame_rule}, length=8),
        description=f"Prompt-count ablation (the paper's Table 5): Q* of each size in {sizes} built from the "
        f"same clusters, scored at `{ablation_granularity}` granularity and evaluated; AUC against size. "
        "Requests are cached, so a size equal to the main Q* costs nothing.",
    )
    @fails_clearly
    def prompt_count_ablation(
        context: AssetExecutionContext,
        question_clusters: dict,
        inference_templates: dict,
        sampled_frames: dict,
        dataset_index: dict,
        store: StoreResource,
        vlm: VLMResource,
    ) -> dg.Output[dict]:
        st = store.store()
        dataset = dataset_index["dataset"]
        plan = sampled_frames["plans"][ablation_granularity]
        units = load_units(st, dataset, [plan])
        videos = load_videos(st, dataset)
        table, rows, aucs = [], [], []
        for size in sizes:
            selected, _, _ = select_qstar(st, question_clusters, size)
            qs = [q.question for q in selected]
            qset = ids.question_set_id(qs)
            # recorded like Q*, so an ablation report traces back to its questions and clusters
            record_question_set(st, {
                "question_set": qset, "questions": qs, "prompt_set": question_clusters["prompt_set"],
                "prompt_version": question_clusters["version"], "clustering_id": question_clusters["clustering_id"],
                "settings": json.dumps({"target_size": size, "produced_by": "prompt_count_ablation"}),
                "method": ABLATION_METHOD,
            })
            task = ScoringTask(template=Template.ASKHINT, questions=qs, question_set=qset,
                               templates_ref=inference_templates, on_error=s.dataset.on_error, decode=decode_options(s))
            _, runner, _ = score_units(context, units, task, store, vlm)
            ref = {"dataset": dataset, "question_set": qset, "model": model_label(vlm), "template": Template.ASKHINT,
                   "smoke_model": vlm.is_smoke, "templates_version": inference_templates["version"]}
            result = evaluate(frame_scores_for(st, ref, plan, videos, sc.frame_rule, sc.smoothing), videos)
            report_id = ids.report_id(ref, plan, result.to_rows(), ablation=True)
            for r in _report_rows(ref, result, report_id, ablation_granularity, plan, dataset, eval_json):
                r["source"] = f"ablation:size={len(qs)}"
                rows.append(r)
            aucs.append(result.frame_auc)
            table.append({"size": len(qs), "question_set": qset, "frame_auc": result.frame_auc,
                          "video_auc": result.video_auc, "requests_sent": runner.stats.sent})
        store_report_rows(st, rows)
        plot = ablation_plot([t["size"] for t in table], aucs, f"Frame AUC vs Q* size ({ablation_granularity})")
        md = md_table(table)
        if vlm.is_smoke:
            md = SMOKE_NOTE + "\n\n" + md
        return versioned_output(
            {"dataset": dataset, "sizes": [t["size"] for t in table], "frame_auc": aucs},
            data_version=dg.DataVersion(hash_obj(table)),
            metadata={
                "ablation": dg.MetadataValue.md(md),
                "auc_vs_size": dg.MetadataValue.md(image_md(plot, "AUC vs size")),
            },
        )

    return [evaluation_report, prompt_count_ablation]
