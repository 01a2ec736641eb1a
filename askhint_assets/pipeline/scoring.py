"""Scoring units with a template through the cached model: shared by the prediction assets and the
prompt-count ablation. Plain Python: the Dagster layer passes its store, backend and log in a :class:`Scorer`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from askhint_assets import paths
from askhint_assets.errors import VideoError
from askhint_assets.inference import predict, predict_per_question
from askhint_assets.pipeline import prompt_length
from askhint_assets.pipeline.follow_up import follow_up_rows
from askhint_assets.pipeline.prompt_length import stored_templates
from askhint_assets.pipeline.runner import CachedRunner
from askhint_assets.pipeline.tree import (
    NodeToAsk,
    TreeSpec,
    TreeVideo,
    planned_below,
    predict_tree,
    stage2_at_leaves,
)
from askhint_assets.prompts.templates import Template
from askhint_assets.refs import TemplatesRef
from askhint_assets.settings import PipelineSettings
from askhint_assets.store import Store
from askhint_assets.store.predictions import store_predictions
from askhint_assets.store.videos import load_videos, mark_videos_failed, unit_frame_rows
from askhint_assets.video.frame_cache import FrameCache
from askhint_assets.video.frame_source import DecodeOptions, FrameSource, UnitFrames, default_workers, unit_frames
from askhint_assets.video.units import Unit, video_file_key
from askhint_assets.vlm.types import VLMBackend


def decode_options(s: PipelineSettings) -> DecodeOptions:
    """How the scoring step decodes frames missing from the cache: as the plan sampled them, ahead of the
    model in ``execution.decode_workers`` processes (0: cores minus one)."""
    ex = s.execution
    return DecodeOptions.for_plan(s.sampling.config(), ex.decode_workers or default_workers(), ex.decode_ahead,
                                  ahead_bytes=ex.tree_decode_mib << 20)


def tree_spec(s: PipelineSettings, plans: Mapping[str, str]) -> TreeSpec | None:
    """How the ``tree`` plan among ``plans`` (granularity -> plan id) is asked; None without one."""
    if "tree" not in plans:
        return None
    sc = s.scoring
    return TreeSpec(plans["tree"], sc.window_s, sc.stride_s, sc.uncertain_band[0], s.sampling.config())


@dataclass(frozen=True)
class ScoringTask:
    """What to ask about every unit: the template, its questions (Q*; none for the abstract prompt) and how
    to read the frames and treat undecodable videos."""

    template: str
    questions: Sequence[str]
    question_set: str
    templates_ref: TemplatesRef
    aggregate: str = "max"  # per-question mode: how P(Yes) of the questions combine
    on_error: str = "skip"  # an undecodable video: skip (recorded as failed) or raise
    # how frames missing from the cache are decoded: as planned (max_side, sampling mode), in the worker pool
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    tree: TreeSpec | None = None  # the units of this plan are tree roots, asked coarse to fine
    follow_up: tuple[float, float] | None = None  # askhint: per-question follow-ups for scores in this band


@dataclass(frozen=True)
class Scorer:
    """Where a scoring step stores, whom it asks and where it reports: the store, the model's backend (its label
    for the rows, its batch size), the run's id for ``model_calls``, and the caller's ``log`` and ``warn``."""

    store: Store
    backend: VLMBackend
    model: str
    batch_size: int
    run_id: str
    log: Callable[[str], None]
    warn: Callable[[str], None]


def score_units(units: list[Unit], task: ScoringTask, by: Scorer) -> tuple[list[dict], CachedRunner, dict[str, str]]:
    """Score ``units`` with ``task``; rows are upserted chunk by chunk (a killed run resumes). Frames
    come from the cache or are decoded on demand; returns the rows, the runner and the videos that could
    not be decoded (recorded as failed; with ``on_error: raise`` an error)."""
    st = by.store
    template, templates_ref = task.template, task.templates_ref
    templates = stored_templates(st, templates_ref)
    source = frame_source(st, units, task.decode)
    runner = CachedRunner(by.backend, st, run_id=by.run_id, batch_size=by.batch_size)
    done = [0]

    def keep(rows: list[dict]) -> None:
        for r in rows:
            r["templates_version"] = templates_ref.version
        store_predictions(st, rows)
        done[0] += len(rows)
        more = " planned + tree nodes as their parents are answered:" if task.tree else ""
        by.log(f"{template}: {done[0]}/{len(units)}{more} units scored ({runner.stats.sent} requests sent)")

    common = dict(
        templates=templates,
        questions=task.questions,
        question_set=task.question_set,
        model=by.model,
        runner=runner,
        load_frames=source.load,
        on_rows=keep,
    )
    roots = [u for u in units if task.tree is not None and u.plan == task.tree.plan]
    flat = [u for u in units if task.tree is None or u.plan != task.tree.plan]

    asked: dict[tuple[str, str, int], Unit] = {}  # every unit asked, tree nodes included (for follow-ups)
    where: dict[str, UnitFrames] = dict(source.by_key)  # where each frames key's frames come from

    def ask(some: list[Unit], load, stage2_for=None) -> list[dict]:
        asked.update({(u.plan, u.video_id, u.unit): u for u in some})
        if template == Template.PER_QUESTION:
            return predict_per_question(some, aggregate=task.aggregate, **{**common, "load_frames": load})
        return predict(some, template=template, stage2_for=stage2_for, **{**common, "load_frames": load})

    failed: dict[str, str] = {}
    with source:  # stops its decoding processes, if any
        rows = ask(flat, source.load) if flat else []
    failed.update(source.failed)
    if roots:
        rows += score_tree(st, roots, task, ask, failed, by.log, where)
    if task.follow_up is not None and template == Template.ASKHINT:
        def ask_per_question(some: list[Unit]) -> list[dict]:
            with FrameSource(FrameCache(paths.frames_cache_dir()), [where[u.frames_key] for u in some],
                             task.decode) as src:
                return predict_per_question(some, aggregate=task.aggregate,
                                            **{**common, "load_frames": src.load, "on_rows": None})

        follow = follow_up_rows(rows, asked, task.follow_up, ask_per_question)
        keep(follow)
        rows += follow
    if failed:
        _mark_failed(st, units[0].dataset, failed, task.on_error, by.warn)
    return rows, runner, failed


def score_tree(st: Store, roots: list[Unit], task: ScoringTask, ask, failed: dict[str, str],
               log: Callable[[str], None], where: dict[str, UnitFrames]) -> list[dict]:
    """The trees of ``roots`` (:func:`askhint_assets.pipeline.tree.predict_tree`): each level's nodes asked in one
    batch. A node whose frames lie in its ancestors' cached frames is cut from them; with ``task.decode.ahead_bytes``,
    a video's pass also decodes the whole levels below its nodes that fit (nodes a later level may ask), so a later
    level finds them cached; what no level asked is dropped from the cache at the end. Videos that fail to decode
    are added to ``failed``."""
    assert task.tree is not None
    cache = FrameCache(paths.frames_cache_dir())
    videos, wanted = {}, {r.video_id for r in roots}
    for v in load_videos(st, roots[0].dataset):
        if v.video_id in failed or v.video_id not in wanted:
            continue
        try:
            key = video_file_key(v.path)
        except OSError as e:  # gone since it was indexed: fails alone, like a video that does not decode
            failed[v.video_id] = f"cannot read {v.path}: {e.strerror or e}"
            continue
        videos[v.video_id] = TreeVideo(v.video_id, str(v.path), int(v.num_frames), float(v.fps), key)

    src = FrameSource(cache, [], task.decode)  # one for the whole tree: its decoding processes start once

    def ask_level(level: list[NodeToAsk]) -> list[dict]:
        frames = [UnitFrames(n.video.video_id, n.video.path, n.planned) for n in level]
        where.update({f.unit.frames_key: f for f in frames})
        src.add(frames)  # decoded in one pass per video when its first node is read, with what fits below
        if task.decode.ahead_bytes:
            src.expect(planned_below(level, task.tree))
        return ask([n.unit for n in level], src.load, stage2_at_leaves(level))

    def on_level(depth: int, n: int) -> None:
        log(f"{task.template}: tree level {depth}: {n} node(s) to ask")

    try:
        with src:
            rows = predict_tree([r for r in roots if r.video_id in videos], videos, task.tree, ask_level,
                                on_level=on_level)
    finally:
        src.drop_unasked()
    failed.update(src.failed)
    return rows


def check_prompt_length(s: PipelineSettings, task: ScoringTask, st: Store, backend: str, model_path: str,
                        resolve_model_path: Callable[[], str]) -> str:
    """The pipeline's prompt-length check (:func:`askhint_assets.pipeline.prompt_length.check_prompt_length`)
    for ``task`` with the named backend and model."""
    return prompt_length.check_prompt_length(
        s, task.template, stored_templates(st, task.templates_ref), task.questions, backend, model_path,
        resolve_model_path,
    )


def frame_source(st, units: list[Unit], decode: DecodeOptions) -> FrameSource:
    """The frames of ``units``: cached, or decoded on demand from their videos (one pass per video; the
    next videos, in the units' order, in ``decode.workers`` processes)."""
    videos = sorted({u.video_id for u in units})
    plans = sorted({u.plan for u in units})
    rows = unit_frame_rows(st, units[0].dataset if units else "", plans, videos)
    return FrameSource(FrameCache(paths.frames_cache_dir()), unit_frames(rows), decode)


def _mark_failed(st, dataset: str, failed: dict[str, str], on_error: str, warn: Callable[[str], None]) -> None:
    """Videos that could not be decoded while scoring: recorded as failed (excluded from evaluation) or,
    with ``on_error: raise``, the end of the run."""
    first = next(iter(sorted(failed)))
    if on_error == "raise":
        raise VideoError(first, failed[first])
    mark_videos_failed(st, dataset, failed)
    for vid, reason in sorted(failed.items()):
        warn(f"video {vid} failed while decoding for the model: {reason}")
