"""Chat/prompt formats of the supported model families, in one place.

``qwen2_5_vl`` follows Qwen2.5-VL-Instruct's chat template (a default system turn when none is given,
the video at the start of the first user turn). ``internvl2_5`` follows InternVL2.5's template
(InternLM2.5 ``<|im_start|>`` turns, its default system message) with the video marker vLLM expects:
``<video>`` (vLLM expands it into ``Frame{i}: <img>...</img>`` lines) or the ``Frame{i}: <image>``
lines of InternVL's own ``chat()``.
"""

from __future__ import annotations

from askhint_assets.errors import InputError
from askhint_assets.vlm.types import Message

FAMILIES: tuple[str, ...] = ("qwen2_5_vl", "internvl2_5")

# Qwen2.5-VL special tokens (ids as in the released tokenizer).
QWEN_ENDOFTEXT = "<|endoftext|>"
QWEN_IM_START = "<|im_start|>"
QWEN_IM_END = "<|im_end|>"
QWEN_VISION_START = "<|vision_start|>"
QWEN_VISION_END = "<|vision_end|>"
QWEN_IMAGE_PAD = "<|image_pad|>"
QWEN_VIDEO_PAD = "<|video_pad|>"
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    QWEN_ENDOFTEXT,
    QWEN_IM_START,
    QWEN_IM_END,
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    QWEN_VISION_START,
    QWEN_VISION_END,
    "<|vision_pad|>",
    QWEN_IMAGE_PAD,
    QWEN_VIDEO_PAD,
)
QWEN_DEFAULT_SYSTEM = "You are a helpful assistant."

INTERNVL_DEFAULT_SYSTEM = (
    "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。"
)

# Qwen2.5-VL-Instruct's chat template as released, used by the smoke tokenizer; tests/released_template.py checks
# it against the released text (tests/fixtures/qwen2_5_vl_instruct_chat_template.jinja, source and sha256 beside it).
QWEN_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_ROLES = ("system", "user", "assistant")


def check_family(family: str) -> str:
    """Return ``family`` if supported, else raise ``InputError``."""
    if family not in FAMILIES:
        raise InputError(f"unknown model family {family!r}; expected one of {', '.join(FAMILIES)}",
                         field="family")
    return family


def video_placeholder(family: str, num_frames: int = 0, *, style: str = "vllm") -> str:
    """The text standing for the video in a prompt.

    Qwen: ``<|vision_start|><|video_pad|><|vision_end|>`` (one pad; the transformers backend repeats
    it to the video's token count, vLLM does that itself). InternVL2.5: ``<video>\\n`` for vLLM
    (``style="vllm"``) or ``Frame1: <image>\\n...`` per frame (``style="frames"``, InternVL ``chat()``).
    """
    check_family(family)
    if family == "qwen2_5_vl":
        return QWEN_VISION_START + QWEN_VIDEO_PAD + QWEN_VISION_END
    if style == "frames":
        return "".join(f"Frame{i}: <image>\n" for i in range(1, num_frames + 1))
    if style != "vllm":
        raise InputError(f"unknown placeholder style {style!r}; expected 'vllm' or 'frames'", field="style")
    return "<video>\n"


def render_prompt(
    family: str,
    messages: list[Message],
    video_placeholder: str | None,
    add_generation_prompt: bool = True,
) -> str:
    """The full prompt text of ``messages``; the placeholder opens the first user message."""
    check_family(family)
    for m in messages:
        if m.role not in _ROLES:
            raise InputError(f"unknown message role {m.role!r}", field="role")
    default_system = QWEN_DEFAULT_SYSTEM if family == "qwen2_5_vl" else INTERNVL_DEFAULT_SYSTEM
    parts: list[str] = []
    if not messages or messages[0].role != "system":
        parts.append(f"<|im_start|>system\n{default_system}<|im_end|>\n")
    placed = video_placeholder is None
    for m in messages:
        text = m.text
        if not placed and m.role == "user":
            text, placed = video_placeholder + text, True
        parts.append(f"<|im_start|>{m.role}\n{text}<|im_end|>\n")
    if not placed:
        raise InputError("a video needs a user message to attach to", field="messages")
    if add_generation_prompt:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def expand_video_pads(prompt: str, num_tokens: int) -> str:
    """Repeat Qwen's single ``<|video_pad|>`` to the video's token count (``gt*gh*gw/merge**2``)."""
    if prompt.count(QWEN_VIDEO_PAD) != 1:
        raise InputError(f"expected one {QWEN_VIDEO_PAD} in the prompt, found {prompt.count(QWEN_VIDEO_PAD)}",
                         field="prompt")
    return prompt.replace(QWEN_VIDEO_PAD, QWEN_VIDEO_PAD * num_tokens)
