"""Scoring units with a template through the cached model: shared by the prediction assets and the
prompt-count ablation (a Dagster-layer helper, not an asset module)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dagster import AssetExecutionContext

from askhint_assets import paths
from askhint_assets.errors import VideoError
from askhint_assets.inference import predict, predict_per_question
from askhint_assets.orchestration.resources import StoreResource, VLMResource, model_label
from askhint_assets.pipeline import prompt_length
from askhint_assets.pipeline.prompt_length import stored_templates
from askhint_assets.pipeline.runner import CachedRunner
from askhint_assets.prompts.templates import Template
from askhint_assets.settings import PipelineSettings
from askhint_assets.store.predictions import store_predictions
from askhint_assets.store.videos import mark_videos_failed, unit_frame_rows
from askhint_assets.video.frame_cache import FrameCache
from askhint_assets.video.frame_source import DecodeOptions, FrameSource, default_workers, unit_frames
from askhint_assets.video.units import Unit


def decode_options(s: PipelineSettings) -> DecodeOptions:
    """How the scoring step decodes frames missing from the cache: as the plan sampled them, ahead of the
    model in ``execution.decode_workers`` processes (0: cores minus one)."""
    ex = s.execution
    return DecodeOptions.for_plan(s.sampling.config(), ex.decode_workers or default_workers(), ex.decode_ahead)


@dataclass(frozen=True)
class ScoringTask:
    """What to ask about every unit: the template, its questions (Q*; none for the abstract prompt) and how
    to read the frames and treat undecodable videos."""

    template: str
    questions: list[str]
    question_set: str
    templates_ref: dict
    aggregate: str = "max"  # per-question mode: how P(Yes) of the questions combine
    on_error: str = "skip"  # an undecodable video: skip (recorded as failed) or raise
    # how frames missing from the cache are decoded: as planned (max_side, sampling mode), in the worker pool
    decode: DecodeOptions = field(default_factory=DecodeOptions)


def score_units(
    context: AssetExecutionContext,
    units: list[Unit],
    task: ScoringTask,
    store: StoreResource,
    vlm: VLMResource,
    shard: tuple[int, int] | None = None,
) -> tuple[list[dict], CachedRunner, dict[str, str]]:
    """Score ``units`` with ``task``; rows are upserted chunk by chunk (a killed run resumes). Frames
    come from the cache or are decoded on demand; returns the rows, the runner and the videos that could
    not be decoded (recorded as failed; with ``on_error: raise`` an error)."""
    st = store.store()
    template, templates_ref = task.template, task.templates_ref
    templates = stored_templates(st, templates_ref)
    source = frame_source(st, units, task.decode)
    runner = CachedRunner(vlm.get_backend(shard), st, run_id=context.run_id, batch_size=vlm.batch_size)
    done = [0]

    def keep(rows: list[dict]) -> None:
        for r in rows:
            r["templates_version"] = templates_ref["version"]
        store_predictions(st, rows)
        done[0] += len(rows)
        context.log.info(f"{template}: {done[0]}/{len(units)} units scored ({runner.stats.sent} requests sent)")

    common = dict(
        templates=templates,
        questions=task.questions,
        question_set=task.question_set,
        model=model_label(vlm),
        runner=runner,
        load_frames=source.load,
        on_rows=keep,
    )
    with source:  # stops its decoding processes, if any
        if template == Template.PER_QUESTION:
            rows = predict_per_question(units, aggregate=task.aggregate, **common)
        else:
            rows = predict(units, template=template, **common)
    if source.failed:
        _mark_failed(st, units[0].dataset, source.failed, task.on_error, context)
    return rows, runner, dict(source.failed)


def check_prompt_length(s: PipelineSettings, task: ScoringTask, store: StoreResource, vlm: VLMResource) -> str:
    """The pipeline's prompt-length check (:func:`askhint_assets.pipeline.prompt_length.check_prompt_length`)
    for ``task`` with the resource's model."""
    return prompt_length.check_prompt_length(
        s, task.template, stored_templates(store.store(), task.templates_ref), task.questions,
        vlm.backend, vlm.model_path, vlm.resolved_model_path,
    )


def frame_source(st, units: list[Unit], decode: DecodeOptions) -> FrameSource:
    """The frames of ``units``: cached, or decoded on demand from their videos (one pass per video; the
    next videos, in the units' order, in ``decode.workers`` processes)."""
    videos = sorted({u.video_id for u in units})
    plans = sorted({u.plan for u in units})
    rows = unit_frame_rows(st, units[0].dataset if units else "", plans, videos)
    return FrameSource(FrameCache(paths.frames_cache_dir()), unit_frames(rows), decode)


def _mark_failed(st, dataset: str, failed: dict[str, str], on_error: str, context: AssetExecutionContext) -> None:
    """Videos that could not be decoded while scoring: recorded as failed (excluded from evaluation) or,
    with ``on_error: raise``, the end of the run."""
    first = next(iter(sorted(failed)))
    if on_error == "raise":
        raise VideoError(first, failed[first])
    mark_videos_failed(st, dataset, failed)
    for vid, reason in sorted(failed.items()):
        context.log.warning(f"video {vid} failed while decoding for the model: {reason}")
