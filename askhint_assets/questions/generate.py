"""Stage 1 of ASK-Hint, offline: a model writes 3-5 action-centric yes/no questions per anomaly class.

Pure functions (no Dagster, no I/O): the text-only request of each class (its name and taxonomy
description), lenient parsing and validation of the answers, and the ``class_questions.yaml`` text
in the schema ``prompts.loader`` accepts. ``askhint generate-questions`` sends the requests through
the cache and writes a new prompt set for review.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from askhint_assets.hashing import hash_obj
from askhint_assets.prompts.loader import PromptSet
from askhint_assets.questions.compress import parse_questions
from askhint_assets.vlm.types import Message, VLMRequest, VLMResponse

MIN_QUESTIONS, MAX_QUESTIONS = 3, 5
MAX_NEW_TOKENS = 256  # per class; the backend's own ``model.max_new_tokens`` caps it
SYSTEM = (
    "You write short yes/no questions that help a video model spot one kind of anomaly in surveillance "
    "video. Each question asks about a visible action or event."
)
PROMPT = (
    "Anomaly class: {name}\nDescription: {description}\n"
    "Write {lo} to {hi} yes/no questions about visible actions that would reveal this class in a "
    'surveillance video. Write one question per line, each ending with "?", and nothing else.'
)


@dataclass(frozen=True)
class ClassResult:
    """The questions kept for one class and what was wrong with its answer."""

    cls: str
    questions: tuple[str, ...]
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return MIN_QUESTIONS <= len(self.questions) <= MAX_QUESTIONS


def generation_settings(ps: PromptSet, classes: Sequence[str], max_new_tokens: int = MAX_NEW_TOKENS) -> dict:
    """What, besides the model, determines the generated questions (recorded with them)."""
    return {
        "source_prompt_set": ps.name,
        "source_version": ps.version,
        "classes": list(classes),
        "questions_per_class": [MIN_QUESTIONS, MAX_QUESTIONS],
        "max_new_tokens": max_new_tokens,
        "prompt": hash_obj([SYSTEM, PROMPT], length=10),
    }


def class_requests(
    ps: PromptSet, classes: Sequence[str] | None = None, *, max_new_tokens: int = MAX_NEW_TOKENS
) -> dict[str, VLMRequest]:
    """Class → its text-only request, in taxonomy order (default: every class of ``ps``)."""
    wanted = list(ps.classes) if classes is None else [c for c in ps.classes if c in set(classes)]
    return {
        c: VLMRequest(
            messages=[
                Message("system", SYSTEM),
                Message(
                    "user",
                    PROMPT.format(name=c, description=ps.classes[c].description, lo=MIN_QUESTIONS, hi=MAX_QUESTIONS),
                ),
            ],
            frames=None,
            max_new_tokens=max_new_tokens,
        )
        for c in wanted
    }


def validate_answers(answers: Mapping[str, VLMResponse], taken: Iterable[str] = ()) -> dict[str, ClassResult]:
    """Parse each class's answer (JSON list or numbered/bulleted lines; only questions ending with "?").

    A question already kept for an earlier class, or in ``taken`` (questions of classes that keep
    their curated ones), is dropped: the loader refuses duplicates across classes. More than
    ``MAX_QUESTIONS`` are cut to the first ones; fewer than ``MIN_QUESTIONS`` fail the class.
    """
    seen = {q.casefold() for q in taken}
    out: dict[str, ClassResult] = {}
    for cls, resp in answers.items():
        if not resp.ok:
            out[cls] = ClassResult(cls, (), (f"request failed: {resp.error}",))
            continue
        parsed = parse_questions(resp.text)
        problems: list[str] = []
        kept = [q for q in parsed if q.casefold() not in seen]
        if len(kept) < len(parsed):
            problems.append(f"dropped {len(parsed) - len(kept)} question(s) that repeat another class's")
        if len(kept) > MAX_QUESTIONS:
            problems.append(f"kept the first {MAX_QUESTIONS} of {len(kept)} questions")
            kept = kept[:MAX_QUESTIONS]
        if len(kept) < MIN_QUESTIONS:
            problems.append(
                f"only {len(kept)} valid question(s), needs {MIN_QUESTIONS}-{MAX_QUESTIONS}; "
                f"answer: {resp.text[:160]!r}"
            )
        else:
            seen |= {q.casefold() for q in kept}
        out[cls] = ClassResult(cls, tuple(kept), tuple(problems))
    return out


def render_class_questions(questions: Mapping[str, Sequence[str]], header: Mapping[str, Any]) -> str:
    """``class_questions.yaml`` text: a comment header (``key: value``, values as JSON), then class → list."""
    lines = ["# Class questions written by a model for review (askhint generate-questions)."]
    lines += [f"# {k}: {v if isinstance(v, str) else json.dumps(v, sort_keys=True)}" for k, v in header.items()]
    lines.append('# Each must end with "?"; ids are <Class>/<n>, counting from 1 in this order.')
    body = yaml.safe_dump(
        {c: list(qs) for c, qs in questions.items()}, sort_keys=False, allow_unicode=True, width=10_000
    )
    return "\n".join(line.replace("\n", " ") for line in lines) + "\n" + body
