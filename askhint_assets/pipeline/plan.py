"""What a run of some settings will cost, before it starts, without calling a model or decoding a frame:
scoring units per granularity, frames decoded, requests per template, video tokens per request (the
Qwen2.5-VL processor arithmetic of :func:`askhint_assets.vlm.preprocess.video_tokens`) and prompt tokens
(text through the model's tokenizer where one is given). ``askhint plan`` reads the videos and prints it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from askhint_assets.errors import AskHintError
from askhint_assets.prompts.defaults import qstar_target
from askhint_assets.prompts.loader import PromptSet, load_prompt_set
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
    """The numbers :func:`estimate` finds (``askhint plan`` prints them: ``cli_plan.lines``)."""

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
    from askhint_assets.vlm.backends.openai_payload import resolve_video_mode

    return resolve_video_mode(settings.model.video_input, settings.model.family)


def template_texts(ps: PromptSet, n_questions: int, per_question: bool = False) -> dict[str, list]:
    """Messages of each template of ``ps`` with ``n_questions`` placeholder guiding questions of typical length
    (and the per-question template where ``per_question``)."""
    from askhint_assets.prompts.templates import abstract_messages, stage1_messages, stage2_messages, yes_no_messages

    pool = [q for qs in ps.class_questions.values() for q in qs]
    qs = (pool * (n_questions // max(len(pool), 1) + 1))[:n_questions]
    t = ps.templates
    out = {"askhint/stage1": stage1_messages(t, qs), "askhint/stage2": stage2_messages(t, qs, t.abnormal_word),
           Template.ABSTRACT: abstract_messages(t)}
    if per_question:
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
    """Units, frames, requests and tokens of a run of ``settings`` over ``videos`` (no model, no decoding).

    ``n_questions``: the Q* size to count with (default: the settings', else the prompt set's).
    """
    from askhint_assets.video.decode import target_size
    from askhint_assets.video.sampling import sample_indices
    from askhint_assets.vlm import families
    from askhint_assets.vlm.preprocess import image_tokens, video_tokens

    sc, cfg = settings.scoring, settings.sampling.config()
    lo, hi, _ = pixel_bounds_for(settings)
    mode = input_mode(settings)
    ps = load_prompt_set(settings.prompt_dir())
    nq = n_questions or qstar_target(settings.questions.target_size, ps.settings)
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
    texts = template_texts(ps, nq, sc.per_question)
    for name, msgs in texts.items():
        if tokenizer is not None:
            prompt = families.render_prompt(settings.model.family, msgs, None)
            rep.text_tokens[name] = len(tokenizer.encode(prompt, add_special_tokens=False))
            rep.prompt_tokens[name] = rep.requests[name] * rep.text_tokens[name] + (
                vis * (nq if name == Template.PER_QUESTION else 1))
    if tokenizer is None:
        rep.notes.append("no tokenizer at hand: text tokens not counted (give --tokenizer FOLDER)")
    return rep
