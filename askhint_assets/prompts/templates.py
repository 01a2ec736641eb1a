"""ASK-Hint prompt templates and the chat messages built from them.

A request is ``system`` + the stage-1 user prompt (Q* as a numbered list, answer Normal/Abnormal);
stage 2 continues that chat with the stage-1 answer and asks for one of ``groups`` plus a
one-sentence rationale, answered as ``Group: <group>\\nReason: <sentence>``.
Templates are filled with ``str.format``; a literal brace must be doubled (``{{``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from askhint_assets.vlm.types import Message

STAGE1_CHOICES: tuple[str, str] = ("Normal", "Abnormal")
YES_NO_CHOICES: tuple[str, str] = ("Yes", "No")


class Template:
    """How a unit is asked: ASK-Hint's two stages with Q*, the abstract prompt without questions, or each
    question of Q* on its own (Yes/No). The values are what ``predictions.template`` and
    ``eval_reports.template`` hold.

    Plain strings, not an ``Enum``: a template name travels into Dagster metadata, whose serializer refuses
    enums it does not know, and into the pickled asset outputs and DuckDB rows, which stay plain strings."""

    ASKHINT: Final = "askhint"
    ABSTRACT: Final = "abstract"
    PER_QUESTION: Final = "per_question"
    FOLLOW_UP: Final = "follow_up"  # not configured: askhint's rows re-asked per question where uncertain
    ALL: Final = (ASKHINT, ABSTRACT, PER_QUESTION)


# Each template field and the placeholder it must contain (None: no placeholder).
PLACEHOLDERS: dict[str, str | None] = {
    "system": None,
    "stage1": "{questions}",
    "stage2": "{groups}",
    "abstract": None,
    "yes_no": "{question}",
}


@dataclass(frozen=True)
class Templates:
    """The texts of one prompt set; ``groups`` are the stage-2 anomaly groups."""

    system: str
    stage1: str
    stage2: str
    abstract: str
    yes_no: str
    groups: tuple[str, ...]
    normal_word: str = "Normal"
    abnormal_word: str = "Abnormal"


def default_templates() -> Templates:
    """The templates of ``prompts_store/ucf_crime/templates.yaml`` (kept equal by a test)."""
    return Templates(
        system="You are a careful surveillance video analyst. Answer briefly and exactly as asked.",
        stage1=(
            "Watch the video and consider these guiding questions:\n"
            "{questions}\n"
            "Is there an anomaly in this video? Answer with exactly one word: Normal or Abnormal."
        ),
        stage2=(
            "Which group does the anomaly belong to: {groups}?\n"
            "Answer in two lines:\n"
            "Group: <group>\n"
            "Reason: <one sentence>"
        ),
        abstract="Is there an anomaly in this video? Answer with exactly one word: Normal or Abnormal.",
        yes_no="{question} Answer with exactly one word: Yes or No.",
        groups=("Violence/Harm to People", "Crimes Against Property", "Public Safety Incidents"),
    )


def format_questions(questions: list[str]) -> str:
    """Q* as a numbered list, one question a line: ``1. Do you see ...?``."""
    return "\n".join(f"{i}. {q.strip()}" for i, q in enumerate(questions, 1))


def format_groups(groups: tuple[str, ...] | list[str]) -> str:
    """The groups joined for the stage-2 prompt: ``A, B, or C``."""
    groups = list(groups)
    if len(groups) <= 2:
        return " or ".join(groups)
    return ", ".join(groups[:-1]) + ", or " + groups[-1]


def _fill(t: Templates, text: str, **values: str) -> str:
    return text.format(normal=t.normal_word, abnormal=t.abnormal_word, **values)


def stage1_prompt(t: Templates, questions: list[str]) -> str:
    """The stage-1 user text with Q* filled in."""
    return _fill(t, t.stage1, questions=format_questions(questions))


def stage2_prompt(t: Templates) -> str:
    """The stage-2 user text with the groups filled in."""
    return _fill(t, t.stage2, groups=format_groups(t.groups))


def stage1_messages(t: Templates, questions: list[str]) -> list[Message]:
    """System + stage-1 user prompt; the answer is one word, Normal or Abnormal."""
    return [Message("system", t.system), Message("user", stage1_prompt(t, questions))]


def stage2_messages(t: Templates, questions: list[str], stage1_answer: str) -> list[Message]:
    """The stage-1 turns, the assistant's stage-1 answer, then the stage-2 group question."""
    return [
        *stage1_messages(t, questions),
        Message("assistant", stage1_answer.strip()),
        Message("user", stage2_prompt(t)),
    ]


def abstract_messages(t: Templates) -> list[Message]:
    """The paper's abstract baseline: "Is there an anomaly in this video? ..." without hints."""
    return [Message("system", t.system), Message("user", _fill(t, t.abstract))]


def yes_no_messages(t: Templates, question: str) -> list[Message]:
    """One guiding question on its own, answered Yes or No."""
    return [Message("system", t.system), Message("user", _fill(t, t.yes_no, question=question.strip()))]
