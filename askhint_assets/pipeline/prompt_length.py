"""Before any request: a scoring task's prompts measured against the model's context."""

from __future__ import annotations

from collections.abc import Callable

from askhint_assets.inference import prompts_to_check
from askhint_assets.prompts.templates import Templates
from askhint_assets.refs import TemplatesRef
from askhint_assets.settings import PipelineSettings
from askhint_assets.store import Store
from askhint_assets.store.prompts import prompt_version_content


def stored_templates(st: Store, ref: TemplatesRef) -> Templates:
    """The templates of the prompt version an ``inference_templates`` reference names."""
    t = prompt_version_content(st, ref.version, made_by="inference_templates")["templates"]
    return Templates(**{**t, "groups": tuple(t["groups"])})


def check_prompt_length(
    s: PipelineSettings,
    template: str,
    templates: Templates,
    questions: list[str],
    backend: str,
    model_path: str,
    model_folder: Callable[[], str],
) -> str:
    """The prompts of ``template`` (text with ``questions`` + the largest unit's video tokens + the answer)
    against the model's positions; an InputError naming the prompt file, the longest item and both counts
    when one cannot fit. ``model_folder`` resolves the local model (called only for a backend that loads
    one). Returns what was found, for the log (served models: not checked, their context is not known here)."""
    from askhint_assets.vlm.backends import registry
    from askhint_assets.vlm.backends.transformers_backend import pixel_bounds
    from askhint_assets.vlm.context import budget_of, check_fits
    from askhint_assets.vlm.preprocess import video_tokens

    if not registry.get_backend_entry(backend).local_model:
        return f"prompt length not checked: the context of the served model {model_path} is not known here"
    folder = model_folder()
    budget = budget_of(folder, s.model.family)
    if budget is None:
        return f"prompt length not checked: no max_position_embeddings or tokenizer in {folder}"
    side = s.sampling.max_side or 1 << 16  # no bound: the processor's per-frame pixel bound decides
    video = video_tokens(s.sampling.max_frames, side, side, *pixel_bounds(folder))["tokens"] + 2  # + start/end
    prompts = prompts_to_check(template, templates, questions, s.prompt_dir(), budget.count)
    need = check_fits(budget, prompts, video, s.model.max_new_tokens)
    return "prompt tokens at most " + ", ".join(f"{k} {v:,}" for k, v in need.items()) + (
        f" of {budget.positions:,} positions")
