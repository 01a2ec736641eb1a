"""``askhint plan``: what a run will cost, before it starts, without calling a model or decoding a frame.

For the settings at hand: videos (frame count, fps and size from the container headers, or from a
``video,num_frames`` list with ``--fps`` and ``--size``), scoring units per granularity, frames decoded,
requests per template, video tokens per request (the Qwen2.5-VL processor arithmetic of
:func:`askhint_assets.vlm.preprocess.video_tokens`, checked against the official processor), prompt tokens
(text through the model's tokenizer where one is at hand) and how many responses the cache already holds
for this backend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import click

from askhint_assets.errors import AskHintError, InputError
from askhint_assets.prompts.templates import Template

# Qwen/Qwen2.5-VL-7B-Instruct's published preprocessor_config.json bounds (no video config in the release).
RELEASED_MIN_PIXELS, RELEASED_MAX_PIXELS = 3136, 12845056


@dataclass(frozen=True)
class PlanVideo:
    video_id: str
    num_frames: int
    fps: float
    width: int
    height: int


@dataclass
class PlanReport:
    """The numbers :func:`estimate` finds (``lines`` renders them)."""

    videos: int = 0
    source_frames: int = 0
    units: dict[str, int] = field(default_factory=dict)  # granularity -> units
    frames_decoded: int = 0
    requests: dict[str, int] = field(default_factory=dict)  # template -> requests (stage 2: at most)
    video_tokens: dict[str, tuple[int, float, int]] = field(default_factory=dict)  # granularity -> min/mean/max
    text_tokens: dict[str, int] = field(default_factory=dict)  # template -> text tokens per request
    prompt_tokens: dict[str, int] = field(default_factory=dict)  # template -> total prompt tokens
    notes: list[str] = field(default_factory=list)
    tree_best: int = 0  # tree granularity: units when every root is judged normal (units["tree"]: every node split)


def videos_from_headers(settings) -> list[PlanVideo]:
    """The data set's videos with frame count, fps and size from their headers (nothing decoded)."""
    from askhint_assets.datasets.registry import load_dataset, write_demo
    from askhint_assets.video.decode import probe

    ds = settings.dataset
    if not ds.root and not settings.dataset_root().exists():  # the generated demo, made as the pipeline would
        write_demo(ds.kind, settings.dataset_root())
    data = load_dataset(ds.kind, settings.dataset_root(), ds.annotations, on_error="skip")
    out = []
    for v in data.videos:
        info = probe(v.path)
        out.append(PlanVideo(v.video_id, info.num_frames, info.fps, info.width, info.height))
    return out


def videos_from_list(path: Path, fps: float, size: tuple[int, int]) -> list[PlanVideo]:
    """Videos from a ``video,num_frames`` CSV (the ``--frame-counts`` format) at one fps and size."""
    from askhint_assets.evaluation.score_files import read_frame_counts

    if not fps > 0:
        raise InputError(f"--fps must be positive, got {fps}", field="fps")
    return [PlanVideo(v, n, fps, *size) for v, n in sorted(read_frame_counts(path).items())]


def pixel_bounds_for(settings) -> tuple[int, int, str]:
    """Video pixel bounds of the configured model, and where they come from (the model is not loaded)."""
    from askhint_assets.vlm.backends.transformers_backend import pixel_bounds
    from askhint_assets.vlm.model_source import resolve_model

    m = settings.model
    if settings.is_smoke_model:
        from askhint_assets.vlm.backends.registry import resolve_model_path

        folder: Path | None = Path(resolve_model_path(m.path))  # the committed fixture: nothing is trained
    else:
        try:
            folder = resolve_model(m.path, m.revision, download=False).path
        except AskHintError:
            folder = None
    if folder is not None and (folder / "config.json").is_file():
        lo, hi = pixel_bounds(folder)
        return lo, hi, str(folder)
    return RELEASED_MIN_PIXELS, RELEASED_MAX_PIXELS, "Qwen2.5-VL-7B-Instruct's published preprocessor_config.json"


def input_mode(settings) -> str:
    """``video`` (one video per request) or ``images`` (one image per frame), as the backend will send."""
    if settings.model.backend != "openai":
        return "video"
    from askhint_assets.vlm.backends.openai_backend import resolve_video_mode

    return resolve_video_mode(settings.model.video_input, settings.model.family)


def template_texts(settings, n_questions: int) -> dict[str, list]:
    """Messages of each template with ``n_questions`` placeholder guiding questions of typical length."""
    from askhint_assets.prompts.loader import load_prompt_set
    from askhint_assets.prompts.templates import abstract_messages, stage1_messages, stage2_messages, yes_no_messages

    ps = load_prompt_set(settings.prompt_dir())
    pool = [q for qs in ps.class_questions.values() for q in qs]
    qs = (pool * (n_questions // max(len(pool), 1) + 1))[:n_questions]
    t = ps.templates
    out = {"askhint/stage1": stage1_messages(t, qs), "askhint/stage2": stage2_messages(t, qs, t.abnormal_word),
           Template.ABSTRACT: abstract_messages(t)}
    if settings.scoring.per_question:
        out[Template.PER_QUESTION] = yes_no_messages(t, qs[0])
    return out


def _spans(v: PlanVideo, g: str, sc, rep: PlanReport):
    """The spans granularity ``g`` may ask of ``v``: its units, or for ``tree`` every node of the full tree (the
    worst case; the best case, one root per video, is counted in ``rep.tree_best``)."""
    from askhint_assets.video.sampling import Window, plan_windows
    from askhint_assets.video.tree import tree_grid

    if g != "tree":
        return plan_windows(v.num_frames, v.fps, g, window_s=sc.window_s, stride_s=sc.stride_s)
    if v.num_frames <= 0:
        return []
    rep.tree_best += 1
    return [Window(n.index, n.start, n.end) for n in tree_grid(v.num_frames, v.fps, sc.window_s,
                                                                 sc.stride_s).all_nodes()]


def estimate(settings, videos: list[PlanVideo], tokenizer=None, n_questions: int | None = None) -> PlanReport:
    """Units, frames, requests and tokens of a run of ``settings`` over ``videos`` (no model, no decoding)."""
    from askhint_assets.video.decode import target_size
    from askhint_assets.video.sampling import sample_indices
    from askhint_assets.vlm import families
    from askhint_assets.vlm.preprocess import image_tokens, video_tokens

    sc, cfg = settings.scoring, settings.sampling.config()
    lo, hi, _ = pixel_bounds_for(settings)
    mode = input_mode(settings)
    nq = n_questions or settings.questions.target_size or 6
    rep = PlanReport(videos=len(videos), source_frames=sum(v.num_frames for v in videos))
    decoded: set[tuple[str, int]] = set()
    per_unit_tokens: dict[str, list[int]] = {}
    for g in sc.granularities:
        toks = per_unit_tokens.setdefault(g, [])
        for v in videos:
            w, h = target_size(v.width, v.height, cfg.max_side)
            for win in _spans(v, g, sc, rep):
                idx = sample_indices(v.num_frames, v.fps, cfg, start=win.start, end=win.end)
                if not len(idx):
                    continue
                decoded.update((v.video_id, int(i)) for i in idx)
                n = (video_tokens(len(idx), h, w, lo, hi) if mode == "video"
                     else image_tokens(len(idx), h, w))["tokens"]
                toks.append(n + (2 if mode == "video" else 2 * len(idx)))  # + vision start/end markers
        rep.units[g] = len(toks)
        rep.video_tokens[g] = (min(toks), sum(toks) / len(toks), max(toks)) if toks else (0, 0.0, 0)
    rep.frames_decoded = len(decoded)
    units = sum(rep.units.values())
    vis = sum(sum(t) for t in per_unit_tokens.values())
    rep.requests = {"askhint/stage1": units, "askhint/stage2": units, Template.ABSTRACT: units}
    if sc.per_question:
        rep.requests[Template.PER_QUESTION] = units * nq
    if sc.follow_up == "uncertain":  # per-question requests for units whose joint score is uncertain
        rep.requests["follow_up"] = units * nq
    texts = template_texts(settings, nq)
    for name, msgs in texts.items():
        if tokenizer is not None:
            prompt = families.render_prompt(settings.model.family, msgs, None)
            rep.text_tokens[name] = len(tokenizer.encode(prompt, add_special_tokens=False))
            rep.prompt_tokens[name] = rep.requests[name] * rep.text_tokens[name] + (
                vis * (nq if name == Template.PER_QUESTION else 1))
    if tokenizer is None:
        rep.notes.append("no tokenizer at hand: text tokens not counted (give --tokenizer FOLDER)")
    return rep


def cached_responses(settings) -> int | None:
    """Responses the cache holds for the configured backend and model (openai: from any server it probed)."""
    from askhint_assets import paths
    from askhint_assets.store import Store

    db = paths.db_path()
    if not Path(db).exists():
        return None
    m = settings.model
    names = {m.path, Path(m.path).name}
    if settings.is_smoke_model:
        from askhint_assets.vlm.backends.registry import resolve_model_path

        names.add(Path(resolve_model_path(m.path)).name)
    held = 0
    for raw, n in Store(db).responses_per_fingerprint().items():
        fp = json.loads(raw)
        if fp.get("backend") == m.backend and fp.get("model") in names:
            held += n
    return held


def lines(settings, rep: PlanReport, source: str, cached: int | None) -> list[str]:
    lo, hi, where = pixel_bounds_for(settings)
    mode = input_mode(settings)
    m, sm = settings.model, settings.sampling
    out = [
        f"askhint plan ({source}; no model called, no frame decoded)",
        f"model: {m.backend} {m.path} ({m.family}); input: {mode}"
        + (" (one video per request: temporal patches and time positions)" if mode == "video"
           else " (one image per frame: about twice the visual tokens, no time positions)"),
        f"pixel bounds per frame: {lo}..{hi} ({where})",
        f"sampling: up to {sm.max_frames} frames, {sm.fallback_fps} fps for short ranges, longer side <= {sm.max_side}",
        f"videos: {rep.videos}, {rep.source_frames:,} frames in all",
    ]
    for g, n in rep.units.items():
        lo_t, mean_t, hi_t = rep.video_tokens[g]
        if g == "tree":
            out.append(f"granularity tree: {rep.tree_best:,} units at best (every video judged normal at its root), "
                       f"{n:,} at worst (every node split); the counts below take the worst case; video tokens per "
                       f"request min {lo_t:,} mean {mean_t:,.0f} max {hi_t:,}")
            continue
        out.append(f"granularity {g}: {n:,} units; video tokens per request min {lo_t:,} mean {mean_t:,.0f} "
                   f"max {hi_t:,}")
    out.append(f"frames decoded: {rep.frames_decoded:,}")
    at_most = {"askhint/stage2": " (at most: units judged abnormal)",
               "follow_up": " (at most: units whose joint score is uncertain, one per question)"}
    out.append("requests: " + ", ".join(f"{k} {v:,}" + at_most.get(k, "") for k, v in rep.requests.items()))
    if rep.text_tokens:
        out.append("text tokens per request: " + ", ".join(f"{k} {v}" for k, v in rep.text_tokens.items()))
        out.append("prompt tokens in all: " + ", ".join(f"{k} {v:,}" for k, v in rep.prompt_tokens.items()))
    out.append("response cache: " + ("no database yet" if cached is None else f"{cached:,} responses held for "
                                     "this backend and model"))
    out += [f"note: {n}" for n in rep.notes]
    return out


@click.command("plan")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Settings YAML (default: $ASKHINT_CONFIG, else the demo).")
@click.option("--frame-counts", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV video,num_frames instead of the data set's videos (with --fps and --size).")
@click.option("--fps", type=float, default=30.0, show_default=True, help="Frame rate of the listed videos.")
@click.option("--size", default="320x240", show_default=True, help="WIDTHxHEIGHT of the listed videos.")
@click.option("--tokenizer", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Model folder whose tokenizer counts the text tokens (default: the configured model's).")
def plan(config: Path | None, frame_counts: Path | None, fps: float, size: str, tokenizer: Path | None) -> None:
    """Print what a run of these settings will cost, without calling a model."""
    from askhint_assets.settings import load_settings

    try:
        settings = load_settings(config)
        for s in settings.per_dataset():
            if frame_counts is not None:
                try:
                    w, h = (int(x) for x in size.lower().split("x"))
                except ValueError:
                    raise InputError(f"--size must be WIDTHxHEIGHT, got {size!r}", field="size") from None
                videos, source = videos_from_list(frame_counts, fps, (w, h)), f"list {frame_counts}"
            else:
                videos, source = videos_from_headers(s), f"data set {s.dataset.name} at {s.dataset_root()}"
            tok = _tokenizer(s, tokenizer)
            rep = estimate(s, videos, tok)
            click.echo("\n".join(lines(s, rep, f"settings {settings.source}; {source}", cached_responses(s))))
    except AskHintError as e:
        raise click.ClickException(str(e)) from e


def _tokenizer(settings, folder: Path | None):
    """The tokenizer of ``folder`` or of the configured model where it is on disk, else None."""
    from transformers import AutoTokenizer

    if folder is None:
        _, _, where = pixel_bounds_for(settings)
        folder = Path(where) if Path(where).is_dir() else None
    if folder is None or not (folder / "tokenizer_config.json").is_file():
        return None
    return AutoTokenizer.from_pretrained(folder)
