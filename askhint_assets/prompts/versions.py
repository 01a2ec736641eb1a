"""What a prompt version is made of: the parsed content whose hash names it (:mod:`askhint_assets.ids`)."""

from __future__ import annotations

from dataclasses import asdict

from askhint_assets.prompts.loader import PromptSet, question_table


def class_prompt_content(ps: PromptSet) -> dict:
    """What determines Q*: taxonomy, class-wise questions and the Q* settings (not the templates)."""
    return {
        "prompt_set": ps.name,
        "groups": list(ps.groups),
        "classes": {c: asdict(info) for c, info in ps.classes.items()},
        "questions": question_table(ps),
        "settings": ps.settings,
    }


def template_content(ps: PromptSet) -> dict:
    return {"prompt_set": ps.name, "templates": asdict(ps.templates)}
