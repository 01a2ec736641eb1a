from pathlib import Path

import pytest

from askhint_assets.prompts.loader import load_prompt_set
from askhint_assets.prompts.templates import (
    PLACEHOLDERS,
    STAGE1_CHOICES,
    YES_NO_CHOICES,
    Template,
    abstract_messages,
    default_templates,
    format_groups,
    stage1_messages,
    stage2_messages,
    yes_no_messages,
)

STORE = Path(__file__).resolve().parents[2] / "prompts_store"
QS = ["Do you see punching, kicking, or wrestling?", "Is there fire or smoke?"]


@pytest.mark.parametrize("name", ["ucf_crime", "xd_violence"])
def test_default_templates_equal_the_store_files(name):
    assert load_prompt_set(STORE / name).templates == default_templates()


def test_constants():
    assert STAGE1_CHOICES == ("Normal", "Abnormal")
    assert YES_NO_CHOICES == ("Yes", "No")
    t = default_templates()
    assert (t.normal_word, t.abnormal_word) == STAGE1_CHOICES
    assert t.groups == ("Violence/Harm to People", "Crimes Against Property", "Public Safety Incidents")
    for key, placeholder in PLACEHOLDERS.items():
        assert placeholder is None or placeholder in getattr(t, key)


def test_stage1_numbers_the_questions():
    msgs = stage1_messages(default_templates(), QS)
    assert [m.role for m in msgs] == ["system", "user"]
    user = msgs[1].text
    assert "1. Do you see punching, kicking, or wrestling?\n2. Is there fire or smoke?" in user
    assert "exactly one word: Normal or Abnormal." in user
    assert "{" not in user


def test_stage2_continues_the_chat():
    t = default_templates()
    msgs = stage2_messages(t, QS, " Abnormal\n")
    assert [m.role for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[:2] == stage1_messages(t, QS)
    assert msgs[2].text == "Abnormal"
    last = msgs[3].text
    assert "Violence/Harm to People, Crimes Against Property, or Public Safety Incidents" in last
    assert "Group: <group>\nReason: <one sentence>" in last


def test_abstract_is_the_paper_baseline():
    msgs = abstract_messages(default_templates())
    assert msgs[-1].text == "Is there an anomaly in this video? Answer with exactly one word: Normal or Abnormal."
    assert [m.role for m in msgs] == ["system", "user"]
    assert "1." not in msgs[-1].text


def test_yes_no_asks_one_question():
    msgs = yes_no_messages(default_templates(), "  Is there fire or smoke? ")
    assert msgs[-1].text == "Is there fire or smoke? Answer with exactly one word: Yes or No."


def test_optional_word_placeholders_and_literal_braces():
    from dataclasses import replace

    t = replace(default_templates(), abstract="{{json}} Answer {normal} or {abnormal}.", abnormal_word="Anomalous")
    assert abstract_messages(t)[-1].text == "{json} Answer Normal or Anomalous."


def test_format_groups():
    assert format_groups(("A",)) == "A"
    assert format_groups(("A", "B")) == "A or B"
    assert format_groups(("A", "B", "C")) == "A, B, or C"


def test_template_names_are_the_stored_plain_strings():
    """Stored in predictions and eval_reports and sent into Dagster metadata: plain str, these spellings."""
    assert Template.ALL == ("askhint", "abstract", "per_question")
    assert all(type(t) is str for t in Template.ALL)
