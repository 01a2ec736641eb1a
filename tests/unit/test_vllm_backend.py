"""VLLMBackend without vLLM: request building, logprob reading, the missing-extra error, batching."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest

from askhint_assets.errors import AskHintError, BackendError
from askhint_assets.vlm.backends.vllm_backend import (
    VLLMBackend,
    build_sampling_kwargs,
    build_vllm_inputs,
    choice_logprobs_from_vllm,
)
from askhint_assets.vlm.types import Message, VLMBackend, VLMRequest
from tests.vllm_fake import Logprob as FakeLogprob  # the shape of vllm.sequence.Logprob

CHOICES = ("Normal", "Abnormal")


def req(frames: int | None = 6, fps: float = 2.0, choices=CHOICES, text="Normal or Abnormal?") -> VLMRequest:
    arr = None if frames is None else np.zeros((frames, 28, 28, 3), np.uint8)
    return VLMRequest([Message("user", text)], arr, frames_fps=fps, choices=choices, max_new_tokens=8)


def test_inputs_qwen():
    r = req()
    inp = build_vllm_inputs(r, "qwen2_5_vl")
    frames, meta = inp["multi_modal_data"]["video"]  # vLLM 0.32 needs a Qwen2.5-VL video with its metadata
    assert frames is r.frames and "mm_processor_kwargs" not in inp
    # what vLLM's VideoMediaIO builds for 6 JPEG frames sent with media_io_kwargs.video.fps = 2 (the server path);
    # the real-engine tier checks that the in-process engine and the server then give the same answers
    assert meta == {"total_num_frames": 6, "fps": 2.0, "duration": 3.0, "video_backend": "jpeg_sequence",
                    "frames_indices": [0, 1, 2, 3, 4, 5], "do_sample_frames": False}
    p = inp["prompt"]
    assert p.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    assert "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Normal or Abnormal?<|im_end|>\n" in p
    assert p.endswith("<|im_start|>assistant\n")


def test_inputs_internvl():
    inp = build_vllm_inputs(req(), "internvl2_5")
    assert "<|im_start|>user\n<video>\nNormal or Abnormal?<|im_end|>" in inp["prompt"]
    assert inp["prompt"].endswith("<|im_start|>assistant\n")
    assert inp["multi_modal_data"]["video"].shape == (6, 28, 28, 3)
    assert "mm_processor_kwargs" not in inp


@pytest.mark.parametrize("family", ["qwen2_5_vl", "internvl2_5"])
def test_inputs_text_only(family):
    inp = build_vllm_inputs(req(frames=None, choices=None, text="Group these."), family)
    assert set(inp) == {"prompt"}
    assert "<video>" not in inp["prompt"] and "<|video_pad|>" not in inp["prompt"]
    assert "Group these." in inp["prompt"]


def test_inputs_reject_bad_frames():
    r = req()
    r.frames = np.zeros((0, 4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="T > 0"):
        build_vllm_inputs(r, "qwen2_5_vl")


def test_sampling_kwargs():
    assert build_sampling_kwargs(req(), top_logprobs=5) == {"temperature": 0.0, "max_tokens": 8, "logprobs": 5}
    assert build_sampling_kwargs(req(choices=None)) == {"temperature": 0.0, "max_tokens": 8}


def test_choice_logprobs_from_fake_logprobs():
    first = {
        11: FakeLogprob(-0.2, 1, "Normal"),
        12: FakeLogprob(-1.9, 2, None),  # decoded via the tokenizer
        13: FakeLogprob(-4.0, 3, "The"),
    }
    decode = {12: "Abnormal"}.__getitem__
    got = choice_logprobs_from_vllm([first, {99: FakeLogprob(-0.1, 1, "!")}], lambda ids: decode(ids[0]), CHOICES)
    assert got == {"Normal": -0.2, "Abnormal": -1.9}
    assert choice_logprobs_from_vllm([], None, CHOICES) == {}
    assert choice_logprobs_from_vllm(None, None, CHOICES) == {}
    split = {1: FakeLogprob(-0.3, 1, "Ab"), 2: FakeLogprob(-1.5, 2, "Normal")}
    assert choice_logprobs_from_vllm([split], None, CHOICES) == {"Abnormal": -0.3, "Normal": -1.5}


def test_missing_vllm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    b = VLLMBackend("/models/qwen")
    assert isinstance(b, VLMBackend)
    with pytest.raises(BackendError, match=r"askhint\[vllm\]"):
        b.generate([req()])


def test_fingerprint_and_family_check():
    b = VLLMBackend("/models/internvl", family="internvl2_5", top_logprobs=10)
    from importlib.metadata import version

    assert b.fingerprint() == {
        "backend": "vllm", "model": "/models/internvl", "family": "internvl2_5",
        "top_logprobs": 10, "max_new_tokens": 64, "temperature": 0,
        "transformers_version": version("transformers"),  # no vLLM here: only the transformers release
    }  # fmt: skip
    assert b.engine_kwargs()["limit_mm_per_prompt"] == {"video": 1}
    with pytest.raises(AskHintError):
        VLLMBackend("/m", family="llava")


def test_generate_batches_with_fake_engine(monkeypatch):
    fake_vllm = types.ModuleType("vllm")
    fake_vllm.SamplingParams = lambda **kw: kw
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm)
    calls = []

    class FakeLLM:
        def generate(self, inputs, params, use_tqdm=True):
            calls.append((inputs, params))
            outs = []
            for inp in inputs:
                video = (inp.get("multi_modal_data") or {}).get("video")
                bright = video is not None and video[0].mean() > 128  # (frames, metadata)
                word = "Abnormal" if bright else "Normal"
                lp = {1: FakeLogprob(math.log(0.8), 1, word), 2: FakeLogprob(math.log(0.2), 2, "Normal")}
                comp = types.SimpleNamespace(text=word, logprobs=[lp], finish_reason="stop", token_ids=[1])
                outs.append(types.SimpleNamespace(outputs=[comp]))
            return outs

        def get_tokenizer(self):
            return types.SimpleNamespace(decode=lambda ids: "?")

    b = VLLMBackend("/models/qwen")
    b._llm = FakeLLM()
    bright = req()
    bright.frames[:] = 255
    bad = req()
    bad.frames = np.zeros((3, 4, 3), np.uint8)
    out = b.generate([req(), bad, bright, req(frames=None, choices=None)])
    assert len(calls) == 1 and len(calls[0][0]) == 3
    assert calls[0][1][0] == {"temperature": 0.0, "max_tokens": 8, "logprobs": 20}
    assert [r.ok for r in out] == [True, False, True, True]
    assert out[0].text == "Normal" and out[2].text == "Abnormal"
    assert out[2].choice_logprobs["Abnormal"] == pytest.approx(math.log(0.8))
    assert out[3].choice_logprobs is None
    assert "bad request" in out[1].error


def test_max_model_len_comes_from_the_model(tmp_path):
    (tmp_path / "config.json").write_text('{"text_config": {"max_position_embeddings": 4096}}')
    assert VLLMBackend(str(tmp_path)).engine_kwargs()["max_model_len"] == 4096  # not a fixed 32768
    assert VLLMBackend(str(tmp_path), max_model_len=1024).engine_kwargs()["max_model_len"] == 1024
    with pytest.raises(BackendError, match=r"max_model_len: 8192 is more than .* 4096"):
        VLLMBackend(str(tmp_path), max_model_len=8192)


def test_close_shuts_the_engine_down(monkeypatch):
    from tests.vllm_fake import FakeLLM

    b = VLLMBackend("/models/qwen")
    b._llm = engine = FakeLLM("/models/qwen")
    b.close()
    assert engine.llm_engine.engine_core.shutdowns == 1 and b._llm is None
    b.close()  # twice is harmless
    assert engine.llm_engine.engine_core.shutdowns == 1
