"""The ``VLMBackend`` contract, checked against every backend (see ``conftest.case``).

Per-request failures: every backend fails a malformed request alone (``ok=False`` with ``error``).
A model-side failure on one request fails that request alone: ``transformers`` and ``vllm`` retry the
batch one request at a time, ``openai`` gets an HTTP 500 after retries. A backend whose model is missing fails every
request for ``openai`` (server down) and raises an ``AskHintError`` on purpose for the local backends
(no model folder; vLLM not installed).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from askhint_assets.errors import AskHintError
from askhint_assets.prompts.templates import (
    STAGE1_CHOICES,
    YES_NO_CHOICES,
    default_templates,
    stage1_messages,
    yes_no_messages,
)
from askhint_assets.vlm.types import Message, VLMBackend, VLMRequest, VLMResponse
from tests.contract.conftest import BackendCase

T = default_templates()
QUESTIONS_A = ["Is anyone fighting or hitting another person?", "Is anything on fire?"]
QUESTIONS_B = ["Is a person breaking into a car?"]
DARK, BRIGHT = 30, 220  # the stand-in server answers Normal below 128, Abnormal above


def clip(t: int, h: int, w: int, level: int) -> np.ndarray:
    """``(t, h, w, 3)`` uint8 RGB frames around brightness ``level``, with a moving diagonal pattern."""
    i, j = np.mgrid[0:h, 0:w]
    frames = [level + ((i + j + 5 * k) % 24) - 12 for k in range(t)]
    rgb = np.stack([np.stack([f, f + 3, f - 3], axis=-1) for f in frames])
    return np.clip(rgb, 0, 255).astype(np.uint8)


def stage1(frames: np.ndarray, questions: list[str] = QUESTIONS_A) -> VLMRequest:
    """The stage-1 Normal/Abnormal request, as ``inference.predict`` builds it."""
    return VLMRequest(stage1_messages(T, questions), frames, frames_fps=2.0, frames_key=f"k{frames.shape}",
                      choices=STAGE1_CHOICES, max_new_tokens=4)


def yes_no(frames: np.ndarray, question: str = QUESTIONS_A[0]) -> VLMRequest:
    """One per-question Yes/No request, as ``inference.predict_per_question`` builds it."""
    return VLMRequest(yes_no_messages(T, question), frames, frames_fps=2.0, choices=YES_NO_CHOICES, max_new_tokens=4)


def text_only(text: str = "Group these questions into themes: fighting, fire, theft.") -> VLMRequest:
    """A request without video (as the question-clustering step sends)."""
    return VLMRequest([Message("user", text)], None, max_new_tokens=8)


def assert_choice_logprobs(r: VLMResponse, choices: tuple[str, ...]) -> None:
    """``r`` answered, with a finite log-probability <= 0 for exactly ``choices``."""
    assert r.ok, r.error
    assert isinstance(r.text, str)
    assert r.choice_logprobs is not None and set(r.choice_logprobs) == set(choices)
    values = list(r.choice_logprobs.values())
    assert all(isinstance(v, float) and math.isfinite(v) and v <= 0.0 for v in values), r.choice_logprobs
    assert sum(math.exp(v) for v in values) <= 1.0 + 1e-6  # alternatives of the same answer


def same_answer(a: VLMResponse, b: VLMResponse, rel: float = 0.0) -> None:
    """Equal text and choice log-probabilities (within ``rel``, for differently batched runs)."""
    assert (a.ok, a.text) == (b.ok, b.text)
    if a.choice_logprobs is None or b.choice_logprobs is None:
        assert a.choice_logprobs is b.choice_logprobs is None
    else:
        assert a.choice_logprobs.keys() == b.choice_logprobs.keys()
        for k, v in a.choice_logprobs.items():
            assert v == pytest.approx(b.choice_logprobs[k], rel=rel, abs=rel)


def answer_key(r: VLMResponse) -> tuple:
    """What tells two answers apart beyond ``same_answer``'s tolerance: text and rounded log-probabilities."""
    lp = None if r.choice_logprobs is None else tuple(sorted((k, round(v, 2)) for k, v in r.choice_logprobs.items()))
    return (r.text, lp)


# 1 ----------------------------------------------------------------------------------------------


def test_fingerprint_is_stable_json_naming_backend_and_model(case: BackendCase) -> None:
    b = case.backend
    assert isinstance(b, VLMBackend)
    first, second = b.fingerprint(), b.fingerprint()
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert json.loads(json.dumps(first)) == first  # plain JSON types, nothing lost
    assert first["backend"] == b.backend_name == case.name
    assert first["model"] == b.model_name and b.model_name


# 2 ----------------------------------------------------------------------------------------------


def test_one_response_per_request_in_order(case: BackendCase) -> None:
    reqs = [
        stage1(clip(2, 64, 64, DARK), QUESTIONS_A),
        yes_no(clip(4, 56, 80, BRIGHT), QUESTIONS_A[1]),
        text_only(),
        stage1(clip(2, 64, 64, BRIGHT), QUESTIONS_B),
        yes_no(clip(2, 64, 64, DARK), QUESTIONS_B[0]),
    ]
    out = case.backend.generate(reqs)
    assert len(out) == len(reqs)
    for r, q in zip(out, reqs, strict=True):
        assert r.ok, r.error
        assert (set(r.choice_logprobs) if r.choice_logprobs is not None else None) == (
            set(q.choices) if q.choices else None
        )
    # each answer is the one its request gets alone (batching may move logits by float rounding only) ...
    alone = [case.backend.generate([q])[0] for q in reqs]
    for r, a in zip(out, alone, strict=True):
        same_answer(r, a, rel=1e-3)
    # ... and the five requests get five different answers, so a swapped pair could not pass unseen
    keys = [answer_key(a) for a in alone]
    assert len(set(keys)) == len(reqs), keys


# 3, 4 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "choices"), [(stage1, STAGE1_CHOICES), (yes_no, YES_NO_CHOICES)], ids=["normal_abnormal", "yes_no"]
)
def test_choice_logprobs_cover_exactly_the_choices(case: BackendCase, make, choices: tuple[str, ...]) -> None:
    out = case.backend.generate([make(clip(2, 64, 64, DARK)), make(clip(2, 64, 64, BRIGHT))])
    for r in out:
        assert_choice_logprobs(r, choices)


# 5 ----------------------------------------------------------------------------------------------


def test_text_only_request(case: BackendCase) -> None:
    (r,) = case.backend.generate([text_only()])
    assert r.ok, r.error
    assert isinstance(r.text, str) and r.error is None
    assert r.choice_logprobs is None


# 6 ----------------------------------------------------------------------------------------------


def test_frames_of_different_lengths_and_sizes_in_one_batch(case: BackendCase) -> None:
    reqs = [stage1(clip(2, 64, 64, DARK)), stage1(clip(4, 56, 80, BRIGHT)), yes_no(clip(4, 56, 80, DARK))]
    out = case.backend.generate(reqs)
    assert len(out) == 3
    for r, q in zip(out, reqs, strict=True):
        assert_choice_logprobs(r, q.choices)


# 7 ----------------------------------------------------------------------------------------------


def test_empty_request_list(case: BackendCase) -> None:
    assert case.backend.generate([]) == []
    assert case.unavailable().generate([]) == []  # nothing is loaded or contacted for no work


# 8 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_frames",
    [np.zeros((0, 64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)],
    ids=["no_frames", "not_4d"],
)
def test_malformed_request_fails_alone(case: BackendCase, bad_frames: np.ndarray) -> None:
    bad = stage1(clip(2, 64, 64, DARK))
    bad.frames = bad_frames
    out = case.backend.generate([stage1(clip(2, 64, 64, DARK)), bad, yes_no(clip(2, 64, 64, BRIGHT))])
    assert [r.ok for r in out] == [True, False, True]
    assert isinstance(out[1].error, str) and out[1].error
    assert out[1].text == "" and out[1].choice_logprobs is None
    assert_choice_logprobs(out[0], STAGE1_CHOICES)
    assert_choice_logprobs(out[2], YES_NO_CHOICES)


def test_model_failure_on_one_request_fails_it_alone(case: BackendCase) -> None:
    marker = "FAILME"
    reqs = [stage1(clip(2, 64, 64, DARK)), stage1(clip(2, 64, 64, DARK), [f"{marker} is anyone there?"]),
            yes_no(clip(2, 64, 64, BRIGHT))]  # fmt: skip
    case.fail_marked(marker)
    out = case.backend.generate(reqs)
    assert [r.ok for r in out] == [True, False, True]
    assert isinstance(out[1].error, str) and out[1].error
    assert_choice_logprobs(out[0], STAGE1_CHOICES)
    assert_choice_logprobs(out[2], YES_NO_CHOICES)


def test_unavailable_model(case: BackendCase) -> None:
    b = case.unavailable()
    reqs = [stage1(clip(2, 64, 64, DARK)), text_only()]
    if case.unavailable_raises:  # local backends raise on purpose: nothing can be answered
        with pytest.raises(AskHintError) as e:
            b.generate(reqs)
        assert str(e.value)
    else:
        out = b.generate(reqs)
        assert [r.ok for r in out] == [False, False]
        assert all(isinstance(r.error, str) and r.error for r in out)


# 9 ----------------------------------------------------------------------------------------------


def test_greedy_answers_are_deterministic(case: BackendCase) -> None:
    reqs = [stage1(clip(2, 64, 64, BRIGHT)), yes_no(clip(4, 56, 80, DARK)), text_only()]
    first = case.backend.generate(reqs)
    second = case.backend.generate(reqs)
    for a, b in zip(first, second, strict=True):
        assert a.ok, a.error
        same_answer(a, b)
