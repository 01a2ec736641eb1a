"""Tokenisation and template facts on the released Qwen2.5 vocabulary (:mod:`support.real_vocab`).

Asserted, not printed: the choices' first tokens, which tokens the scores are read at, when teacher
forcing is used, and that every template the pipeline sends renders through the checkpoint's own
``apply_chat_template`` exactly as the backends send it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from askhint_assets.prompts.templates import (
    STAGE1_CHOICES,
    YES_NO_CHOICES,
    abstract_messages,
    default_templates,
    stage1_messages,
    stage2_messages,
    yes_no_messages,
)
from askhint_assets.questions.compress import summary_requests
from askhint_assets.vlm import families
from askhint_assets.vlm.backends.openai_backend import OpenAIBackend
from askhint_assets.vlm.backends.transformers_backend import TransformersBackend
from askhint_assets.vlm.backends.vllm_backend import VLLMBackend
from askhint_assets.vlm.types import Message, VLMRequest
from support.real_vocab import SPECIAL_IDS
from tests import vllm_fake
from tests.contract.conftest import REAL_VOCAB_ID
from tests.contract.test_backend_contract import BRIGHT, DARK, QUESTIONS_A, clip

T = default_templates()


@pytest.fixture(scope="module")
def tok(real_vocab_model_dir: Path):
    return AutoTokenizer.from_pretrained(real_vocab_model_dir)


def pipeline_requests(frames: np.ndarray) -> dict[str, VLMRequest]:
    """Every template as the pipeline builds its request (inference.py, questions/compress.py)."""
    video = {"frames": frames, "frames_fps": 2.0, "frames_key": "k"}
    summary = next(iter(summary_requests({0: QUESTIONS_A}, 2).values()))
    return {
        "stage1": VLMRequest(stage1_messages(T, QUESTIONS_A), choices=STAGE1_CHOICES, max_new_tokens=4, **video),
        "stage2": VLMRequest(stage2_messages(T, QUESTIONS_A, T.abnormal_word), max_new_tokens=64, **video),
        "abstract": VLMRequest(abstract_messages(T), choices=STAGE1_CHOICES, max_new_tokens=4, **video),
        "per_question": VLMRequest(yes_no_messages(T, QUESTIONS_A[0]), choices=YES_NO_CHOICES, max_new_tokens=4,
                                   **video),
        "text_only": summary,
    }


def chat(messages: list[Message], media: list[dict]) -> list[dict]:
    """The messages in the chat-template format, ``media`` parts opening the first user message."""
    out = []
    for m in messages:
        if media and m.role == "user":
            out.append({"role": m.role, "content": [*media, {"type": "text", "text": m.text}]})
            media = []
        else:
            out.append({"role": m.role, "content": m.text})
    return out


def test_first_tokens_of_the_choices(tok) -> None:
    pieces = {w: tok.convert_ids_to_tokens(tok.encode(w, add_special_tokens=False))
              for w in ("Normal", "Abnormal", " Normal", " Abnormal", "Yes", "No")}
    assert pieces == {"Normal": ["Normal"], "Abnormal": ["Ab", "normal"], " Normal": ["ĠNormal"],
                      " Abnormal": ["ĠAb", "normal"], "Yes": ["Yes"], "No": ["No"]}
    assert {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_IDS} == SPECIAL_IDS
    assert len(tok) == 151_657  # 151,643 ranks + 14 specials; the embedding has 152,064 rows


@pytest.mark.parametrize("name", ["stage1", "stage2", "abstract", "per_question", "text_only"])
def test_templates_render_through_the_checkpoint(name: str, tok, loaded_transformers: TransformersBackend,
                                                 offline_hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    req = pipeline_requests(clip(4, 56, 80, DARK))[name]
    has_video = req.frames is not None
    official = tok.apply_chat_template(chat(req.messages, [{"type": "video"}] if has_video else []),
                                       tokenize=False, add_generation_prompt=True)
    ours = families.render_prompt("qwen2_5_vl", req.messages,
                                  families.video_placeholder("qwen2_5_vl") if has_video else None)
    assert ours == official
    # transformers: the token ids it feeds are the official prompt with the video pad expanded
    prep = loaded_transformers._prepare(req)
    n_video = prep["video"]["num_video_tokens"] if has_video else 0
    assert prep["ids"] == tok.encode(families.expand_video_pads(official, n_video) if has_video else official,
                                     add_special_tokens=False)
    assert prep["ids"].count(SPECIAL_IDS["<|video_pad|>"]) == n_video
    # vllm: the prompt it hands the engine is the official one (the engine expands the pad itself)
    vllm_fake.install(monkeypatch)
    vb = VLLMBackend(REAL_VOCAB_ID, max_new_tokens=2)
    assert vb.generate([req])[0].ok
    assert vb._llm.calls[0].prompts[0]["prompt"] == official
    assert vb._llm.prompt_token_ids[0] == tok.encode(official, add_special_tokens=False)
    # openai: the server applies the checkpoint's template to the messages sent; vLLM turns a video_url
    # part into {"type": "video"} and an image_url part into {"type": "image"} first
    for mode in ("video", "images"):
        body = OpenAIBackend("m", ["http://127.0.0.1:1/v1"], video_mode=mode).build_body(req)
        as_template = [{"role": m["role"], "content": m["content"] if isinstance(m["content"], str) else
                        [{"type": p["type"].removesuffix("_url")} if p["type"] != "text" else p
                         for p in m["content"]]} for m in body["messages"]]
        rendered = tok.apply_chat_template(as_template, tokenize=False, add_generation_prompt=True)
        if mode == "video" or not has_video:
            assert rendered == official
        else:  # one image placeholder per frame instead of the video's
            assert rendered == official.replace(families.video_placeholder("qwen2_5_vl"),
                                                "<|vision_start|><|image_pad|><|vision_end|>" * 4)


def _first_position_logprobs(b: TransformersBackend, req: VLMRequest) -> torch.Tensor:
    """Log-softmax over the vocabulary after the prompt, from a plain forward pass."""
    prep = b._prepare(req)
    with torch.no_grad():
        logits = b._model(**b._batch_inputs([prep]), use_cache=False).logits
    return torch.log_softmax(logits[0, -1].float(), dim=-1)


@pytest.mark.parametrize("name", ["stage1", "per_question"])
def test_transformers_scores_read_at_the_choice_first_tokens(name: str, tok, loaded_transformers: TransformersBackend,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    b = loaded_transformers
    forced = []
    monkeypatch.setattr(b, "_teacher_forced", lambda *a: forced.append(a) or pytest.fail("teacher forcing"))
    for level in (DARK, BRIGHT):
        req = pipeline_requests(clip(2, 64, 64, level))[name]
        (r,) = b.generate([req])
        lp = _first_position_logprobs(b, req)
        first_ids = {c: tok.encode(c, add_special_tokens=False)[0] for c in req.choices}
        assert set(r.choice_logprobs) == set(req.choices)
        for c, i in first_ids.items():
            assert r.choice_logprobs[c] == pytest.approx(float(lp[i]), abs=1e-4)
    assert tok.convert_ids_to_tokens(tok.encode("Abnormal", add_special_tokens=False))[0] == "Ab"
    assert forced == []  # Normal/Ab and Yes/No differ in their first token


def test_teacher_forcing_only_where_choices_share_a_first_token(tok, loaded_transformers: TransformersBackend) -> None:
    b = loaded_transformers
    choices = ("Abnormal", "Abuse")  # both open with "Ab"
    ids = [tok.encode(c, add_special_tokens=False) for c in choices]
    assert ids[0][0] == ids[1][0] and ids[0] != ids[1]
    req = VLMRequest(stage1_messages(T, QUESTIONS_A), clip(2, 64, 64, DARK), frames_fps=2.0, choices=choices,
                     max_new_tokens=2)
    (r,) = b.generate([req])
    prep = b._prepare(req)
    for c, cids in zip(choices, ids, strict=True):
        inputs = b._batch_inputs([prep], [cids])
        with torch.no_grad():
            logits = b._model(**inputs, use_cache=False).logits[0].float()
        lp = torch.log_softmax(logits[-len(cids) - 1: -1], dim=-1)
        expected = float(sum(lp[k, t] for k, t in enumerate(cids)))
        assert r.choice_logprobs[c] == pytest.approx(expected, abs=1e-4)


def test_vllm_scores_read_at_the_choice_first_tokens(tok, offline_hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vllm_fake.install(monkeypatch)
    b = VLLMBackend(REAL_VOCAB_ID, max_new_tokens=3)
    reqs = [pipeline_requests(clip(2, 64, 64, level))[name] for level in (DARK, BRIGHT)
            for name in ("stage1", "per_question", "abstract")]
    out = b.generate(reqs)
    for r, q, lp in zip(out, reqs, b._llm.first_step_logprobs, strict=True):
        assert r.ok, r.error
        for c in q.choices:
            assert r.choice_logprobs[c] == pytest.approx(float(lp[tok.encode(c, add_special_tokens=False)[0]]))
