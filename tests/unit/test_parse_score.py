"""Lenient answer parsing and log-probability scores."""

from __future__ import annotations

import math

import pytest

from askhint_assets.vlm.parse import match_group, parse_stage1, parse_stage2, parse_yes_no
from askhint_assets.vlm.score import abnormal_probability, aggregate_question_scores, yes_probability

GROUPS = ("Violence/Harm to People", "Crimes Against Property", "Public Safety Incidents")


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Abnormal", "Abnormal"),
        ("normal.", "Normal"),
        ("**ABNORMAL**", "Abnormal"),
        ("Answer: Normal", "Normal"),
        ("(1) Abnormal - a man is hit", "Abnormal"),
        ("Normal or Abnormal: Abnormal", "Abnormal"),
        ("Normal. Nothing abnormal happens.", "Normal"),
        ('{"stage1": "abnormal"}', "Abnormal"),
        ("paranormal activity", None),
        ("I cannot tell", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_stage1(text, want):
    assert parse_stage1(text) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Yes.", True),
        ("no", False),
        ("YES, someone is punching", True),
        ("Not sure", None),
        ("Nobody", None),
        (None, None),
    ],
)
def test_parse_yes_no(text, want):
    assert parse_yes_no(text) is want


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"group": "crimes against property", "reason": "He breaks a window."}\n```',
        'Abnormal {"Group": "Crimes Against Property", "rationale": "He breaks a window."}',
    ],
)
def test_stage2_json_fenced_and_bare(text):
    r = parse_stage2(text, GROUPS)
    assert (r.group, r.rationale, r.ok, r.error) == ("Crimes Against Property", "He breaks a window.", True, None)


def test_stage2_fields_and_fuzzy():
    r = parse_stage2("Abnormal\n**Group:** Violence / harm to people\nReason: two men fight", GROUPS)
    assert (r.group, r.rationale, r.ok, r.error) == ("Violence/Harm to People", "two men fight", True, None)
    assert parse_stage2("Group: Public Safety Incident\nReason: fire", GROUPS).group == "Public Safety Incidents"
    assert parse_stage2("Category: property crime\nReason: theft", GROUPS).group == "Crimes Against Property"


def test_stage2_anywhere_and_failures():
    r = parse_stage2("This shows a public safety incident: a car crash.", GROUPS)
    assert r.ok and r.group == "Public Safety Incidents" and "car crash" in r.rationale
    bad = parse_stage2("Group: None\nReason: nothing happens", GROUPS)
    assert not bad.ok and bad.group is None and "matches none" in bad.error and bad.rationale == "nothing happens"
    assert parse_stage2("", GROUPS).error == "empty answer"
    assert not parse_stage2("Just some words here", GROUPS).ok
    assert not parse_stage2("{not json", GROUPS).ok
    assert not parse_stage2(12345, GROUPS).ok  # type: ignore[arg-type]  # never raises


def test_match_group():
    assert match_group("violence", GROUPS) == "Violence/Harm to People"
    assert match_group("VIOLENCE/HARM TO PEOPLE", GROUPS) == "Violence/Harm to People"
    assert match_group("", GROUPS) is None


def test_abnormal_probability_softmax_and_stability():
    r = abnormal_probability({"Abnormal": math.log(0.3), "Normal": math.log(0.1)}, "Normal")
    assert r.source == "logprobs" and r.score == pytest.approx(0.75)
    assert abnormal_probability({"Abnormal": -1000.0, "Normal": -1001.0}, None).score == pytest.approx(
        1 / (1 + math.exp(-1))
    )
    assert abnormal_probability({"Abnormal": -1e6, "Normal": 0.0}, None).score == 0.0
    assert abnormal_probability({" abnormal": -math.inf, "Normal": -2.0}, None).score == 0.0
    # no usable log-probability: the parsed answer decides
    both_inf = abnormal_probability({"Abnormal": -math.inf, "Normal": -math.inf}, "Abnormal")
    assert (both_inf.score, both_inf.source) == (1.0, "answer")
    both_inf = abnormal_probability({"Abnormal": -math.inf, "Normal": -math.inf}, "Normal")
    assert (both_inf.score, both_inf.source) == (0.0, "answer")


def test_abnormal_probability_one_choice_and_fallbacks():
    assert abnormal_probability({"Abnormal": math.log(0.8)}, None).score == pytest.approx(0.8)
    assert abnormal_probability({"Normal": math.log(0.8)}, None).score == pytest.approx(0.2)
    assert abnormal_probability({"Maybe": -0.1}, "Abnormal").source == "answer"
    assert abnormal_probability(None, "Abnormal").score == 1.0
    assert abnormal_probability({}, "Normal").score == 0.0
    none = abnormal_probability(None, None)
    assert (none.score, none.source) == (0.5, "none")
    assert abnormal_probability({"Abnormal": float("nan")}, None).source == "none"


def test_yes_probability_and_aggregate():
    assert yes_probability({"Yes": math.log(0.2), "No": math.log(0.6)}, True).score == pytest.approx(0.25)
    assert yes_probability(None, True).score == 1.0
    assert yes_probability(None, False).score == 0.0
    assert yes_probability(None, "yes").score == 1.0
    assert aggregate_question_scores([0.1, 0.7, 0.4]) == 0.7
    assert aggregate_question_scores([0.1, 0.7, 0.4], how="mean") == pytest.approx(0.4)
    with pytest.raises(ValueError):
        aggregate_question_scores([])
    with pytest.raises(ValueError):
        aggregate_question_scores([0.1], how="median")
