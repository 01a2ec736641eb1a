"""Anomaly scores in [0, 1] from answer log-probabilities, falling back to the parsed answer; and the choices'
log-probabilities read from a first generated token's top-k (:func:`match_choice_logprobs`, for the backends
that see only that top-k)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreResult:
    """``score`` in [0, 1]; ``source`` says where it came from: "logprobs", "answer" or "none"."""

    score: float
    source: str


def _sigmoid(d: float) -> float:
    if d >= 0:
        return 1.0 / (1.0 + math.exp(-d))
    e = math.exp(d)
    return e / (1.0 + e)


def _logsumexp(values: list[float]) -> float:
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))


def match_choice_logprobs(top: Iterable[tuple[str, float]], choices: Iterable[str]) -> dict[str, float]:
    """Map each choice to the log-probability of the first answer token being that choice.

    ``top`` is the first generated token's top-k ``(token_text, logprob)``. Token texts are stripped;
    a choice matches tokens equal to it case-sensitively, else case-insensitively, else (for tokenisers
    that split the word, e.g. ``"Ab"+"normal"``) tokens of 2+ characters that are a prefix of this
    choice and of no other. Distinct matching tokens (``"Normal"``, ``" Normal"``) are combined by
    log-sum-exp. A choice with no matching token in the top-k gets no entry.
    """
    unique: dict[str, float] = {}  # raw token -> logprob (the sampled token may repeat in its top-k)
    for t, lp in top:
        if t is not None and lp is not None and math.isfinite(float(lp)):
            unique[str(t)] = max(float(lp), unique.get(str(t), -math.inf))
    pairs = [(t.strip(), lp) for t, lp in unique.items() if t.strip()]
    choices = list(choices)
    lowered = [c.lower() for c in choices]
    out: dict[str, float] = {}
    for choice in choices:
        low = choice.lower()
        hits = [lp for t, lp in pairs if t == choice]
        if not hits:
            hits = [lp for t, lp in pairs if t.lower() == low]
        if not hits:
            hits = [
                lp
                for t, lp in pairs
                if len(t) >= 2
                and low.startswith(t.lower())
                and not any(o != low and o.startswith(t.lower()) for o in lowered)
            ]
        if hits:
            out[choice] = _logsumexp(hits)
    return out


def _lookup(logprobs: Mapping[str, float], choice: str) -> float | None:
    """The log-probability of ``choice`` (keys compared stripped and case-insensitively)."""
    want = choice.strip().lower()
    for k, v in logprobs.items():
        if str(k).strip().lower() == want and v is not None and not math.isnan(float(v)):
            return float(v)
    return None


def choice_probability(
    choice_logprobs: Mapping[str, float] | None,
    parsed_answer: str | bool | None,
    positive: str,
    negative: str,
) -> ScoreResult:
    """P(positive) from the two choices' log-probabilities.

    Both present: two-way softmax ``sigmoid(lp_pos - lp_neg)`` (stable for any magnitude). Only one
    present: its own probability, ``exp(lp_pos)`` or ``1 - exp(lp_neg)``. Otherwise the parsed answer
    gives 1.0 / 0.0 (source "answer"), else 0.5 (source "none"). A bool answer means positive/negative.
    """
    if choice_logprobs:
        lp_pos, lp_neg = _lookup(choice_logprobs, positive), _lookup(choice_logprobs, negative)
        if lp_pos is not None and lp_neg is not None and not (lp_pos == lp_neg == -math.inf):
            return ScoreResult(_sigmoid(lp_pos - lp_neg), "logprobs")
        if lp_pos is not None and lp_neg is None:
            return ScoreResult(min(1.0, max(0.0, math.exp(min(lp_pos, 0.0)))), "logprobs")
        if lp_neg is not None and lp_pos is None:
            return ScoreResult(min(1.0, max(0.0, 1.0 - math.exp(min(lp_neg, 0.0)))), "logprobs")
    if isinstance(parsed_answer, bool):
        return ScoreResult(1.0 if parsed_answer else 0.0, "answer")
    if parsed_answer is not None:
        a = parsed_answer.strip().lower()
        if a == positive.strip().lower():
            return ScoreResult(1.0, "answer")
        if a == negative.strip().lower():
            return ScoreResult(0.0, "answer")
    return ScoreResult(0.5, "none")


def abnormal_probability(
    choice_logprobs: Mapping[str, float] | None,
    parsed_answer: str | None,
    positive: str = "Abnormal",
    negative: str = "Normal",
) -> ScoreResult:
    """P("Abnormal") for a stage-1 answer; see :func:`choice_probability`."""
    return choice_probability(choice_logprobs, parsed_answer, positive, negative)


def yes_probability(
    choice_logprobs: Mapping[str, float] | None,
    parsed_answer: bool | str | None,
    positive: str = "Yes",
    negative: str = "No",
) -> ScoreResult:
    """P("Yes") for a yes/no guiding question; ``parsed_answer`` as from ``parse_yes_no``."""
    return choice_probability(choice_logprobs, parsed_answer, positive, negative)


def aggregate_question_scores(scores: Sequence[float], how: str = "max") -> float:
    """Combine per-question scores of one video/window: ``"max"`` (any cue fires) or ``"mean"``."""
    vals = [float(s) for s in scores]
    if not vals:
        raise ValueError("no question scores to aggregate")
    if how == "max":
        return max(vals)
    if how == "mean":
        return sum(vals) / len(vals)
    raise ValueError(f"unknown aggregation {how!r}; use 'max' or 'mean'")
