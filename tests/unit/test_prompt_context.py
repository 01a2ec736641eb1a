"""Issue #22 case 3: a prompt is measured against the model's context before any request."""

from __future__ import annotations

import random
import string
from dataclasses import replace

import pytest

from askhint_assets import paths
from askhint_assets.demo.smoke_model import ensure_smoke_model
from askhint_assets.errors import InputError
from askhint_assets.inference import prompts_to_check
from askhint_assets.pipeline.prompt_length import check_prompt_length
from askhint_assets.prompts.loader import load_prompt_set
from askhint_assets.settings import PipelineSettings
from askhint_assets.vlm.context import budget_of, check_fits, context_positions

PROMPTS = paths.PROMPTS_STORE / "ucf_crime"


@pytest.fixture(scope="module")
def budget():
    folder = ensure_smoke_model(log=None)
    assert context_positions(folder) == 4096  # the smoke model's text_config.max_position_embeddings
    b = budget_of(folder, "qwen2_5_vl")
    assert b is not None
    return b


@pytest.fixture(scope="module")
def templates():
    return load_prompt_set(PROMPTS).templates


def test_the_shipped_prompts_fit(budget, templates):
    qs = ["Do you see punching, kicking, or wrestling?"] * 6
    for template in ("askhint", "abstract", "per_question"):
        need = check_fits(budget, prompts_to_check(template, templates, qs, PROMPTS, budget.count), 98, 64)
        assert all(0 < n < budget.positions for n in need.values()), need


def test_a_question_too_long_names_the_question_file_the_item_and_both_counts(budget, templates):
    r = random.Random(0)  # ~10,000 characters of varied words (a repeated phrase compresses into few tokens)
    long_q = "Do you see " + " ".join("".join(r.choices(string.ascii_lowercase, k=r.randint(3, 9)))
                                      for _ in range(1400)) + "?"
    assert 9000 < len(long_q) < 11000
    qs = ["Do you see fire?", long_q] + ["Do you see a fight?"] * 4
    prompts = prompts_to_check("askhint", templates, qs, PROMPTS, budget.count)
    with pytest.raises(InputError) as e:
        check_fits(budget, prompts, 98, 64)
    msg = str(e.value)
    assert msg.startswith(f"{PROMPTS / 'class_questions.yaml'}: the askhint stage 1 prompt needs "), msg
    text = budget.count(long_q)
    assert text > 4096 and f"({text:,} tokens): {long_q[:80] + '...'!r}" in msg, msg
    assert "text + 98 video + 64 answer) but the model has 4,096 positions (max_position_embeddings in " in msg


def test_a_template_too_long_names_the_template_file(budget, templates):
    t = replace(templates, abstract=templates.abstract + " Look carefully." * 2000)
    with pytest.raises(InputError, match=rf"^{PROMPTS / 'templates.yaml'}: the abstract prompt needs [\d,]+ tokens"):
        check_fits(budget, prompts_to_check("abstract", t, [], PROMPTS, budget.count), 98, 64)


def test_video_tokens_count_against_the_context(budget, templates):
    prompts = prompts_to_check("abstract", templates, [], PROMPTS, budget.count)
    with pytest.raises(InputError, match=r"\+ 4,090 video \+ 64 answer\) but the model has 4,096 positions"):
        check_fits(budget, prompts, 4090, 64)


def test_the_pipeline_check_measures_a_local_model_and_skips_a_served_one(templates):
    s = PipelineSettings()
    folder = str(ensure_smoke_model(log=None))
    qs = ["Do you see punching, kicking, or wrestling?"] * 6
    got = check_prompt_length(s, "askhint", templates, qs, "transformers", "smoke", lambda: folder)
    assert got.startswith("prompt tokens at most askhint stage 1 ") and got.endswith(" of 4,096 positions"), got
    served = check_prompt_length(s, "askhint", templates, qs, "openai", "served-name",
                                 lambda: pytest.fail("a served model is not resolved"))
    assert served == "prompt length not checked: the context of the served model served-name is not known here"
    with pytest.raises(InputError, match=r"class_questions\.yaml"):
        check_prompt_length(s, "per_question", templates, ["Is it " + "very " * 5000 + "odd?"], "transformers",
                            "smoke", lambda: folder)
