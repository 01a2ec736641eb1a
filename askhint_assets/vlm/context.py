"""Does a prompt fit the model? Measured before any request, with the model's own tokenizer and context.

The context is the model's ``max_position_embeddings`` (``config.json``, in ``text_config`` for Qwen2.5-VL);
the text is counted by the model folder's tokenizer on the prompt as the family renders it; the video tokens
are the plan's arithmetic (:func:`askhint_assets.vlm.preprocess.video_tokens`) for the largest unit. A prompt
that cannot fit is one :class:`InputError` naming the prompt file, the template, the longest item and both
token counts, instead of a model that silently runs past its positions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from askhint_assets.errors import InputError
from askhint_assets.vlm.families import render_prompt
from askhint_assets.vlm.types import Message


@dataclass(frozen=True)
class ContextBudget:
    """The positions a model has and how it counts the tokens of a text."""

    positions: int
    count: Callable[[str], int]
    family: str
    source: str  # where ``positions`` came from (shown in the error)


@dataclass(frozen=True)
class Prompt:
    """One prompt to check: the template's name, its messages, the file it comes from and its longest item."""

    name: str
    messages: list[Message]
    path: Path
    longest: str


def context_positions(folder: str | Path) -> int | None:
    """``max_position_embeddings`` of a model folder's ``config.json`` (its text model's for a VLM), or None."""
    cfg_path = Path(folder) / "config.json"
    if not cfg_path.is_file():
        return None
    cfg = json.loads(cfg_path.read_text())
    n = (cfg.get("text_config") or {}).get("max_position_embeddings") or cfg.get("max_position_embeddings")
    return int(n) if n else None


def tokenizer_of(folder: str | Path):
    """The tokenizer of a model folder, or None where the folder has none."""
    folder = Path(folder)
    if not (folder / "tokenizer_config.json").is_file():
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def budget_of(folder: str | Path, family: str) -> ContextBudget | None:
    """The budget of a local model folder (context and tokenizer both on disk), else None."""
    positions = context_positions(folder)
    tok = tokenizer_of(folder) if positions else None
    if tok is None:
        return None
    return ContextBudget(positions, lambda text: len(tok.encode(text, add_special_tokens=False)), family,
                         f"max_position_embeddings in {Path(folder) / 'config.json'}")


def check_fits(budget: ContextBudget, prompts: list[Prompt], video_tokens: int, max_new_tokens: int) -> dict[str, int]:
    """Tokens each prompt needs (text + ``video_tokens`` + the answer's ``max_new_tokens``); an
    :class:`InputError` naming the file, the template, the longest item and both counts for the first
    that does not fit in ``budget.positions``."""
    out = {}
    for p in prompts:
        text = budget.count(render_prompt(budget.family, p.messages, None))
        need = text + video_tokens + max_new_tokens
        if need > budget.positions:
            raise InputError(
                f"the {p.name} prompt needs {need:,} tokens ({text:,} text + {video_tokens:,} video + "
                f"{max_new_tokens} answer) but the model has {budget.positions:,} positions ({budget.source}); "
                f"its longest item ({budget.count(p.longest):,} tokens): {_short(p.longest)!r}",
                path=p.path)
        out[p.name] = need
    return out


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
