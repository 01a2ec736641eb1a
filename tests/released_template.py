"""Qwen2.5-VL-Instruct's released chat template: the oracle for our own copy (``families.QWEN_CHAT_TEMPLATE``,
which the smoke model and the real-vocabulary tokenizer carry) and for the prompts we render."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RELEASED = FIXTURES / "qwen2_5_vl_instruct_chat_template.jinja"  # where it came from: the .source.json beside it


def released_template() -> str:
    """The template's text, checked against the sha256 its source file records."""
    source = json.loads((FIXTURES / "qwen2_5_vl_instruct_chat_template.source.json").read_text())
    text = RELEASED.read_bytes()
    assert hashlib.sha256(text).hexdigest() == source["sha256"], f"{RELEASED} differs from the released template"
    return text.decode()
