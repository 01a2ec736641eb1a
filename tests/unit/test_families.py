"""Prompt formats per model family."""

from __future__ import annotations

import jinja2
import pytest

from askhint_assets.errors import InputError
from askhint_assets.prompts.templates import default_templates, stage1_messages, stage2_messages
from askhint_assets.vlm import families as fam
from askhint_assets.vlm.types import Message
from tests.released_template import released_template

VIDEO = "<|vision_start|><|video_pad|><|vision_end|>"


def test_qwen_prompt_exact() -> None:
    msgs = [Message("system", "SYS"), Message("user", "Is it odd?")]
    got = fam.render_prompt("qwen2_5_vl", msgs, fam.video_placeholder("qwen2_5_vl", 16))
    assert got == (
        "<|im_start|>system\nSYS<|im_end|>\n"
        f"<|im_start|>user\n{VIDEO}Is it odd?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_qwen_default_system_and_no_generation_prompt() -> None:
    got = fam.render_prompt("qwen2_5_vl", [Message("user", "hi")], None, add_generation_prompt=False)
    assert got == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"


def _official(messages: list[dict], add_generation_prompt: bool = True) -> str:
    env = jinja2.Environment()
    return env.from_string(released_template()).render(
        messages=messages, add_generation_prompt=add_generation_prompt
    )


@pytest.mark.parametrize("with_system", [True, False])
def test_qwen_matches_official_chat_template(with_system: bool) -> None:
    t = default_templates()
    msgs = stage2_messages(t, ["Do you see a fight?", "Is there fire?"], "Abnormal")
    if not with_system:
        msgs = msgs[1:]
    official = []
    first_user = True
    for m in msgs:
        if m.role == "user" and first_user:
            official.append({"role": "user", "content": [{"type": "video"}, {"type": "text", "text": m.text}]})
            first_user = False
        else:
            official.append({"role": m.role, "content": m.text})
    assert fam.render_prompt("qwen2_5_vl", msgs, VIDEO) == _official(official)


def test_the_smoke_tokenizers_template_is_the_released_one() -> None:
    """The smoke model and the real-vocabulary tokenizer carry ``QWEN_CHAT_TEMPLATE``: it must be the released text."""
    assert released_template() == fam.QWEN_CHAT_TEMPLATE


def test_video_only_in_first_user_message() -> None:
    msgs = stage2_messages(default_templates(), ["Q1?"], "Abnormal")
    got = fam.render_prompt("qwen2_5_vl", msgs, VIDEO)
    assert got.count(VIDEO) == 1
    assert got.index(VIDEO) < got.index("Q1?") < got.index("Abnormal<|im_end|>")


def test_text_only_has_no_vision_tokens() -> None:
    got = fam.render_prompt("qwen2_5_vl", stage1_messages(default_templates(), ["Q?"]), None)
    assert "<|vision_start|>" not in got and "<|video_pad|>" not in got


def test_internvl_formats() -> None:
    assert fam.video_placeholder("internvl2_5", 3) == "<video>\n"
    assert fam.video_placeholder("internvl2_5", 2, style="frames") == "Frame1: <image>\nFrame2: <image>\n"
    got = fam.render_prompt("internvl2_5", [Message("user", "What?")], "<video>\n")
    assert got == (
        f"<|im_start|>system\n{fam.INTERNVL_DEFAULT_SYSTEM}<|im_end|>\n"
        "<|im_start|>user\n<video>\nWhat?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_expand_video_pads() -> None:
    p = fam.render_prompt("qwen2_5_vl", [Message("user", "x")], VIDEO)
    e = fam.expand_video_pads(p, 5)
    assert e.count("<|video_pad|>") == 5 and e.count("<|vision_start|>") == 1
    with pytest.raises(InputError):
        fam.expand_video_pads("no pad here", 3)


def test_errors() -> None:
    with pytest.raises(InputError, match="family"):
        fam.render_prompt("llava", [Message("user", "x")], None)
    with pytest.raises(InputError, match="role"):
        fam.render_prompt("qwen2_5_vl", [Message("robot", "x")], None)
    with pytest.raises(InputError, match="user message"):
        fam.render_prompt("qwen2_5_vl", [Message("system", "x")], VIDEO)
    with pytest.raises(InputError, match="style"):
        fam.video_placeholder("internvl2_5", 2, style="nope")
