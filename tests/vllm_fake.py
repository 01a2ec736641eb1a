"""A stand-in for the ``vllm`` package, so the real ``VLLMBackend`` code runs without vLLM.

Not a test file. :func:`install` puts a fresh fake ``vllm`` module into ``sys.modules`` (through pytest's
``monkeypatch``). Its ``LLM.generate`` checks its inputs the way vLLM does (one video placeholder per
video, a ``(T, H, W, 3)`` uint8 array), records what it was sent, and answers greedily from a tiny
vocabulary with pseudo-random logits seeded by the prompt and the pixels: deterministic, different for
different inputs. Outputs have vLLM's shapes: ``RequestOutput.outputs[0]`` is a ``CompletionOutput``
whose ``logprobs`` holds, per generated token, ``dict[token_id -> Logprob(logprob, rank, decoded_token)]``.

When the engine's model folder holds a tokenizer (e.g. the real-vocabulary checkpoint of
:mod:`support.real_vocab`), the fake works on that vocabulary instead, as vLLM does: it tokenizes the prompt
with the checkpoint's tokenizer (a video needs exactly one ``<|video_pad|>`` token), draws logits over the
whole embedding (152,064 rows), lifts the first tokens of the answer words (``ANSWER_WORDS``) above the
rest at the first step (as an instructed model would), and decodes with that tokenizer.
"""

from __future__ import annotations

import hashlib
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

EOS_ID = 0
VOCAB: tuple[str, ...] = (
    "<|im_end|>", "Normal", "Abnormal", "Yes", "No", "Group", ":", " G1", "\n", "Reason",
    " a", " person", " runs", ".", "The", " video",
)  # fmt: skip
VIDEO_PLACEHOLDERS = ("<|video_pad|>", "<video>")  # Qwen2.5-VL, InternVL2.5
ANSWER_WORDS = ("Normal", "Abnormal", "Yes", "No", "Group")  # their first tokens lead at step 0 (real vocab)
ANSWER_LIFT = 25.0


@dataclass
class Logprob:
    """``vllm.sequence.Logprob``."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    """``vllm.outputs.CompletionOutput``."""

    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    """``vllm.outputs.RequestOutput`` (the fields the backend can see)."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int] | None
    prompt_logprobs: None
    outputs: list[CompletionOutput]
    finished: bool = True


@dataclass
class SamplingParams:
    """``vllm.SamplingParams`` (the fields the backend sets; unknown keywords are a TypeError, as in vLLM)."""

    temperature: float = 1.0
    max_tokens: int | None = 16
    logprobs: int | None = None


class FakeTokenizer:
    """``llm.get_tokenizer()``: decodes ids of :data:`VOCAB`."""

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return "".join(VOCAB[int(i)] for i in ids)


@dataclass
class EngineCall:
    """One ``LLM.generate`` call as the fake engine received it."""

    prompts: list[dict[str, Any]]
    params: list[SamplingParams]


QWEN_VIDEO = "<|vision_start|><|video_pad|><|vision_end|>"
METADATA_KEYS = ("fps", "total_num_frames", "frames_indices", "duration", "do_sample_frames")


def _frames_and_fps(p: dict[str, Any]) -> tuple[np.ndarray | None, float | None]:
    """The request's frames and the frame rate its metadata gives (None: no metadata)."""
    video = (p.get("multi_modal_data") or {}).get("video")
    if isinstance(video, tuple):
        return video[0], float(video[1]["fps"])
    return video, None


class _EngineCore:
    """``llm_engine.engine_core``: counts shutdowns (vLLM's stops the engine-core process)."""

    def __init__(self) -> None:
        self.shutdowns = 0

    def shutdown(self, timeout: float | None = None) -> None:
        self.shutdowns += 1


class _Engine:
    def __init__(self) -> None:
        self.engine_core = _EngineCore()


class FakeLLM:
    """``vllm.LLM``: records engine arguments and every ``generate`` call; answers deterministically.

    ``fail_marker``: a ``generate`` call whose batch has a prompt containing it raises ``RuntimeError``
    (as a crashing engine would: vLLM's offline API fails the whole call, not one request).
    """

    def __init__(self, model: str, **engine_kwargs: Any) -> None:
        self.model = model
        self.engine_kwargs = engine_kwargs
        self.llm_engine = _Engine()
        self.calls: list[EngineCall] = []
        self.fail_marker: str | None = None
        self._next_id = 0
        self.tokenizer: Any = None  # the checkpoint's tokenizer when the model folder has one
        self.first_step_logprobs: list[np.ndarray] = []  # real-vocab mode: step-0 log-softmax per answer
        self.prompt_token_ids: list[list[int]] = []
        if (Path(model) / "tokenizer.json").is_file():
            from transformers import AutoConfig, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(model)
            cfg = AutoConfig.from_pretrained(model)
            self.vocab_rows = int(cfg.text_config.vocab_size)
            self.eos_ids = {self.tokenizer.convert_tokens_to_ids("<|im_end|>"), self.tokenizer.eos_token_id}
            self.lifted = sorted({self.tokenizer.encode(w, add_special_tokens=False)[0] for w in ANSWER_WORDS})

    def get_tokenizer(self) -> Any:
        return self.tokenizer if self.tokenizer is not None else FakeTokenizer()

    def generate(
        self,
        prompts: dict[str, Any] | Sequence[dict[str, Any]],
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        use_tqdm: bool = True,
    ) -> list[RequestOutput]:
        """Answer each prompt dict with its own (or the shared) sampling params, in order."""
        batch = [prompts] if isinstance(prompts, dict) else list(prompts)
        if sampling_params is None:
            sampling_params = SamplingParams()
        params = (
            [sampling_params] * len(batch) if isinstance(sampling_params, SamplingParams) else list(sampling_params)
        )
        if len(params) != len(batch):
            raise ValueError("the lengths of prompts and sampling_params must be the same")
        self.calls.append(EngineCall(batch, params))
        for p in batch:
            self._validate(p)
        if self.fail_marker and any(self.fail_marker in p["prompt"] for p in batch):
            raise RuntimeError("fake engine crashed (CUDA error: an illegal memory access was encountered)")
        return [self._answer(p, sp) for p, sp in zip(batch, params, strict=True)]

    @staticmethod
    def _validate(p: dict[str, Any]) -> None:
        prompt = p.get("prompt")
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
        video = (p.get("multi_modal_data") or {}).get("video")
        n_placeholders = sum(prompt.count(ph) for ph in VIDEO_PLACEHOLDERS)
        if n_placeholders != (0 if video is None else 1):
            raise ValueError(f"{n_placeholders} video placeholders for {0 if video is None else 1} videos")
        if isinstance(video, tuple):  # (frames, metadata), as vLLM 0.32 takes a Qwen2.5-VL video
            video, meta = video
            missing = set(METADATA_KEYS) - set(meta or {})
            if missing:
                raise ValueError(f"video metadata lacks {sorted(missing)}")
        elif video is not None and QWEN_VIDEO in prompt:
            raise ValueError("Video metadata is required but not found in mm input. "
                             "Please check your video input in `multi_modal_data`")
        if video is not None:
            if not isinstance(video, np.ndarray) or video.ndim != 4 or video.shape[-1] != 3 or not len(video):
                raise ValueError(f"video must be a (T, H, W, 3) array, got {getattr(video, 'shape', None)}")
            if video.dtype != np.uint8:
                raise ValueError(f"video must be uint8, got {video.dtype}")

    def _answer(self, p: dict[str, Any], sp: SamplingParams) -> RequestOutput:
        if self.tokenizer is not None:
            return self._answer_real_vocab(p, sp)
        h = hashlib.sha256(p["prompt"].encode())
        video, fps = _frames_and_fps(p)
        if video is not None:
            h.update(repr(video.shape).encode() + np.ascontiguousarray(video).tobytes())
        h.update(repr(fps).encode())
        seed = int.from_bytes(h.digest()[:8], "little")
        ids: list[int] = []
        lps: list[dict[int, Logprob]] = []
        cumulative = 0.0
        finish = "length"
        for step in range(int(sp.max_tokens or 16)):
            logits = np.random.default_rng([seed, step]).normal(0.0, 3.0, len(VOCAB))
            if step == 0:
                logits[EOS_ID] = -np.inf  # answer at least one token
            logp = logits - np.logaddexp.reduce(logits)
            order = np.argsort(-logp, kind="stable")
            tok = int(order[0])
            cumulative += float(logp[tok])
            if sp.logprobs is not None:
                top = {int(t): Logprob(float(logp[t]), r + 1, VOCAB[t]) for r, t in enumerate(order[: sp.logprobs])}
                top.setdefault(tok, Logprob(float(logp[tok]), 1, VOCAB[tok]))  # vLLM always adds the sampled one
                lps.append(top)
            ids.append(tok)
            if tok == EOS_ID:
                finish = "stop"
                break
        text = FakeTokenizer().decode([t for t in ids if t != EOS_ID])
        comp = CompletionOutput(0, text, ids, cumulative, lps if sp.logprobs is not None else None, finish)
        self._next_id += 1
        return RequestOutput(str(self._next_id), p["prompt"], None, None, [comp])


    def _seed(self, p: dict[str, Any]) -> int:
        h = hashlib.sha256(p["prompt"].encode())
        video, fps = _frames_and_fps(p)
        if video is not None:
            h.update(repr(video.shape).encode() + np.ascontiguousarray(video).tobytes())
        h.update(repr(fps).encode())
        return int.from_bytes(h.digest()[:8], "little")

    def _answer_real_vocab(self, p: dict[str, Any], sp: SamplingParams) -> RequestOutput:
        """Greedy answer over the checkpoint's vocabulary (see the module doc)."""
        tok = self.tokenizer
        prompt_ids = tok.encode(p["prompt"], add_special_tokens=False)
        video = (p.get("multi_modal_data") or {}).get("video")
        pad_id = tok.convert_tokens_to_ids("<|video_pad|>")
        if prompt_ids.count(pad_id) != (0 if video is None else 1):
            raise ValueError(f"{prompt_ids.count(pad_id)} <|video_pad|> tokens for {0 if video is None else 1} videos")
        self.prompt_token_ids.append(prompt_ids)
        seed = self._seed(p)
        ids: list[int] = []
        lps: list[dict[int, Logprob]] = []
        cumulative, finish = 0.0, "length"
        for step in range(int(sp.max_tokens or 16)):
            logits = np.random.default_rng([seed, step]).normal(0.0, 3.0, self.vocab_rows)
            if step == 0:
                logits[self.lifted] += ANSWER_LIFT
                logits[list(self.eos_ids)] = -np.inf
            logp = logits - np.logaddexp.reduce(logits)
            if step == 0:
                self.first_step_logprobs.append(logp)
            order = np.argsort(-logp, kind="stable")[: max(1, sp.logprobs or 1)]
            tk = int(order[0])
            cumulative += float(logp[tk])
            if sp.logprobs is not None:
                lps.append({int(t): Logprob(float(logp[t]), r + 1, tok.decode([int(t)])) for r, t in enumerate(order)})
            ids.append(tk)
            if tk in self.eos_ids:
                finish = "stop"
                break
        text = tok.decode([t for t in ids if t not in self.eos_ids], skip_special_tokens=True)
        comp = CompletionOutput(0, text, ids, cumulative, lps if sp.logprobs is not None else None, finish)
        self._next_id += 1
        return RequestOutput(str(self._next_id), p["prompt"], prompt_ids, None, [comp])


@dataclass
class FakeVLLM:
    """The installed fake module and the engines it created."""

    module: types.ModuleType
    engines: list[FakeLLM] = field(default_factory=list)


def install(monkeypatch: pytest.MonkeyPatch) -> FakeVLLM:
    """Put a fresh fake ``vllm`` (``LLM``, ``SamplingParams``) into ``sys.modules`` for this test."""
    fake = FakeVLLM(types.ModuleType("vllm"))

    class LLM(FakeLLM):
        def __init__(self, model: str, **engine_kwargs: Any) -> None:
            super().__init__(model, **engine_kwargs)
            fake.engines.append(self)

    fake.module.LLM = LLM
    fake.module.SamplingParams = SamplingParams
    fake.module.Logprob = Logprob
    fake.module.RequestOutput = RequestOutput
    fake.module.CompletionOutput = CompletionOutput
    monkeypatch.setitem(sys.modules, "vllm", fake.module)
    return fake
