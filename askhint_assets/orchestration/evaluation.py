"""Evaluation asset: pooled frame-level AUC/AP, video AUC, per-class AUC, ASK-Hint vs the baseline."""


import math

import dagster as dg
import numpy as np
from dagster import AssetExecutionContext

from askhint_assets import settings
from askhint_assets.config import PipelineSettings
from askhint_assets.datasets.base import VideoRecord
from askhint_assets.evaluation.frames import smooth, window_frame_scores
from askhint_assets.evaluation.metrics import EvalResult, evaluate, pooled_frame_arrays
from askhint_assets.evaluation.plots import per_class_bar, roc_plot
from askhint_assets.evaluation.published import published_rows
from askhint_assets.hashing import hash_obj
from askhint_assets.orchestration.data import load_videos
from askhint_assets.orchestration.metadata import image_md, md_table
from askhint_assets.orchestration.resources import StoreResource
from askhint_assets.store import now

GROUP = "evaluation"
SMOKE_NOTE = (
    "**Smoke-test model**: a tiny Qwen2.5-VL trained for minutes on synthetic clips. "
    "Its AUC shows the wiring works; it is not a result about ASK-Hint."
)


def frame_scores_for(st, ref: dict, videos: list[VideoRecord], rule: str, kernel: int) -> dict[str, np.ndarray]:
    """Per-frame scores of one prediction set: window scores spread over the frames they cover."""
    df = st.query(
        "SELECT video_id, start_frame, end_frame, score FROM predictions WHERE dataset = ? AND plan = ? "
        "AND question_set = ? AND model = ? AND template = ? ORDER BY video_id, unit",
        [ref["dataset"], ref["plan"], ref["question_set"], ref["model"], ref["template"]],
    )
    windows: dict[str, list[tuple[int, int, float]]] = {}
    for vid, s, e, score in df.iter_rows():
        windows.setdefault(vid, []).append((s, e, score))
    out = {}
    for v in videos:
        if v.video_id not in windows:
            continue
        fs = window_frame_scores(windows[v.video_id], v.num_frames, rule=rule)
        out[v.video_id] = smooth(fs, kernel) if kernel > 1 else fs
    return out


def _report_rows(ref: dict, result: EvalResult, report_id: str, granularity: str, dataset: str) -> list[dict]:
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
        }
        for r in result.to_rows()
    ]


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def report_markdown(dataset: str, refs: dict[str, dict], results: dict[str, EvalResult], n_failed: int) -> str:
    """The human-readable report: headline metrics side by side, per-class AUC, published numbers."""
    a, b = results["askhint"], results["abstract"]
    lines = [f"# askhint report: data set `{dataset}`", ""]
    if refs["askhint"]["smoke_model"]:
        lines += [SMOKE_NOTE, ""]
    lines += [
        f"Model `{refs['askhint']['model']}`, Q* `{refs['askhint']['question_set']}`, "
        f"{a.n_videos} videos ({a.n_anomalous_videos} anomalous), {a.n_frames} frames; "
        f"{n_failed} video(s) failed and are excluded.",
        "",
        "| metric (%) | ASK-Hint | abstract prompt |",
        "|---|---|---|",
    ]
    for name in ("frame_auc", "frame_ap", "video_auc", "false_alarm_rate"):
        lines.append(f"| {name} | {_fmt(getattr(a, name))} | {_fmt(getattr(b, name))} |")
    for c in sorted(set(a.per_class_auc) | set(b.per_class_auc)):
        lines.append(f"| auc/{c} | {_fmt(a.per_class_auc.get(c))} | {_fmt(b.per_class_auc.get(c))} |")
    lines += ["", "AP is scikit-learn's average_precision_score (step-wise), over pooled frames.", ""]
    lines += ["## Published frame-level numbers (%)", "", md_table(published_rows())]
    for note in a.notes + b.notes:
        lines.append(f"\n_note: {note}_")
    return "\n".join(lines)


def build_evaluation_assets(s: PipelineSettings) -> list:
    sc = s.scoring

    @dg.asset(
        group_name=GROUP,
        code_version="1-" + hash_obj({"rule": sc.frame_rule, "smooth": sc.smoothing}, length=8),
        description="Pooled frame-level ROC-AUC and AP, video-level AUC, per-class AUC and false-alarm "
        "rate for ASK-Hint and the abstract baseline on the same videos (table `eval_reports`), "
        "with ROC and per-class plots and the published numbers beside ours.",
    )
    def evaluation_report(
        context: AssetExecutionContext,
        askhint_predictions: dict,
        abstract_predictions: dict,
        dataset_index: dict,
        store: StoreResource,
    ) -> dg.Output[dict]:
        st = store.store()
        dataset = dataset_index["dataset"]
        videos = load_videos(st, dataset)
        n_failed = len(load_videos(st, dataset, only_ok=False)) - len(videos)
        refs = {"askhint": askhint_predictions, "abstract": abstract_predictions}
        results, curves, rows, report_ids = {}, {}, [], {}
        for name, ref in refs.items():
            scores = frame_scores_for(st, ref, videos, sc.frame_rule, sc.smoothing)
            missing = [v.video_id for v in videos if v.video_id not in scores]
            if missing:
                raise dg.Failure(f"{name}: no predictions for {len(missing)} video(s), e.g. {missing[:5]}")
            result = evaluate(scores, videos)
            y, sc_, _ = pooled_frame_arrays(scores, videos)
            curves[f"{name} (AUC {_fmt(result.frame_auc)})"] = (y, sc_)
            report_id = "ev-" + hash_obj({"ref": ref, "metrics": result.to_rows(), "videos": len(videos)})
            rows += _report_rows(ref, result, report_id, sc.granularity, dataset)
            results[name], report_ids[name] = result, report_id
        st.upsert("eval_reports", rows)
        md = report_markdown(dataset, refs, results, n_failed)
        reports = settings.home() / "reports"
        reports.mkdir(parents=True, exist_ok=True)
        (reports / f"{dataset}.md").write_text(md + "\n")
        roc = roc_plot(curves, f"ROC, pooled frames: {dataset}")
        per_class = {
            c: {"ASK-Hint": results["askhint"].per_class_auc.get(c, float("nan")),
                "abstract": results["abstract"].per_class_auc.get(c, float("nan"))}
            for c in sorted(results["askhint"].per_class_auc)
        }
        bars = per_class_bar(per_class, f"Per-class AUC: {dataset}")
        a = results["askhint"]
        return dg.Output(
            {"dataset": dataset, "report_ids": report_ids, "frame_auc": a.frame_auc},
            data_version=dg.DataVersion(hash_obj(report_ids)),
            metadata={
                "frame_auc": a.frame_auc,
                "frame_ap": a.frame_ap,
                "video_auc": a.video_auc,
                "abstract_frame_auc": results["abstract"].frame_auc,
                "videos": a.n_videos,
                "frames": a.n_frames,
                "failed_videos": n_failed,
                "smoke_test_model": bool(askhint_predictions["smoke_model"]),
                "report": dg.MetadataValue.md(md),
                "roc": dg.MetadataValue.md(image_md(roc, "ROC curve")),
                "per_class_auc": dg.MetadataValue.md(image_md(bars, "per-class AUC")),
                "report_file": dg.MetadataValue.path(str(reports / f"{dataset}.md")),
            },
        )

    return [evaluation_report]
