"""LLM generation of class questions (stage 1): parsing, validation, rendering and `askhint generate-questions`."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from askhint_assets import paths
from askhint_assets.cli import main
from askhint_assets.prompts.loader import load_prompt_set
from askhint_assets.questions import generate
from askhint_assets.questions.compress import parse_questions
from askhint_assets.store import Store
from askhint_assets.vlm.types import VLMRequest, VLMResponse
from tests.fakes import registered_backend

STORE = Path(__file__).resolve().parents[2] / "prompts_store"


class TextBackend:
    """Answers text-only requests from a class → answer table (junk for classes not in it)."""

    backend_name = "fake"
    model_name = "fake-llm"

    def __init__(self, answers: dict[str, str] | None = None, junk: str = "Sure. I like videos.") -> None:
        self.answers = answers or {}
        self.junk = junk
        self.sent: list[VLMRequest] = []

    def fingerprint(self) -> dict:
        return {"backend": "fake", "model": self.model_name}

    def generate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
        self.sent += requests
        out = []
        for r in requests:
            m = re.search(r"Anomaly class: (.+)", r.messages[-1].text)
            out.append(VLMResponse(self.answers.get(m.group(1) if m else "", self.junk)))
        return out


def _answer(cls: str, n: int = 4) -> str:
    return "\n".join(f"{i}. Is someone doing {cls.lower()} step {i} in view?" for i in range(1, n + 1))


# ---- pure functions ----------------------------------------------------------------------------


def test_parse_accepts_json_lists_numbered_and_bulleted_lines():
    assert parse_questions('```json\n["Is a car burning?", "Is a car burning?", "no", " Is smoke  rising? "]\n```') == [
        "Is a car burning?",
        "Is smoke rising?",
    ]
    text = 'Questions:\n1. Is a door forced?\n2) "Is a lock broken?"\n- Is glass shattered?\n* is GLASS shattered?'
    assert parse_questions(text) == ["Is a door forced?", "Is a lock broken?", "Is glass shattered?"]
    assert parse_questions("[not, json]\nIs it late?") == ["Is it late?"]


def test_requests_are_text_only_with_name_and_description_in_taxonomy_order():
    ps = load_prompt_set(STORE / "ucf_crime")
    reqs = generate.class_requests(ps, ["Arson", "Abuse"])
    assert list(reqs) == ["Abuse", "Arson"]
    r = reqs["Arson"]
    assert r.frames is None and [m.role for m in r.messages] == ["system", "user"]
    assert "Anomaly class: Arson" in r.messages[1].text and ps.classes["Arson"].description in r.messages[1].text
    assert "3 to 5 yes/no questions" in r.messages[1].text
    assert list(generate.class_requests(ps)) == list(ps.classes)


def test_validate_counts_cuts_and_drops_repeats_across_classes():
    answers = {
        "A": VLMResponse(_answer("a", 7)),
        "B": VLMResponse("Is someone doing a step 1 in view?\n" + _answer("b", 2)),  # 1 repeat of A → 2 left
        "C": VLMResponse("", ok=False, error="timeout"),
        "D": VLMResponse(_answer("d", 3) + "\nIs it curated?"),
    }
    res = generate.validate_answers(answers, taken=["is it CURATED?"])
    assert res["A"].ok and len(res["A"].questions) == 5 and "kept the first 5 of 7" in res["A"].problems[0]
    assert not res["B"].ok and len(res["B"].questions) == 2
    assert any("repeat another class" in p for p in res["B"].problems) and "only 2 valid" in res["B"].problems[-1]
    assert not res["C"].ok and res["C"].problems == ("request failed: timeout",)
    assert res["D"].ok and len(res["D"].questions) == 3


def test_rendered_file_loads_with_the_real_loader(tmp_path):
    ps = load_prompt_set(STORE / "ucf_crime")
    questions = {c: [f'Is "{c}": #{i} happening, yes?' for i in range(3)] for c in ps.classes}
    header = {"model": "m (fake)", "backend_fingerprint": {"a": 1}, "settings": {"x": [1, 2]}, "date": "2026-01-01"}
    text = generate.render_class_questions(questions, header)
    assert text.startswith("# Class questions written by a model") and '# backend_fingerprint: {"a": 1}' in text
    shutil.copytree(STORE / "ucf_crime", tmp_path / "set")
    (tmp_path / "set" / "class_questions.yaml").write_text(text)
    loaded = load_prompt_set(tmp_path / "set")
    assert {c: list(qs) for c, qs in loaded.class_questions.items()} == questions


# ---- the CLI -----------------------------------------------------------------------------------


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    """A temporary ASKHINT_HOME with a private copy of the prompt store; default settings."""
    monkeypatch.setenv("ASKHINT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASKHINT_PROMPTS_STORE", str(tmp_path / "prompts_store"))
    monkeypatch.delenv("ASKHINT_CONFIG", raising=False)
    shutil.copytree(STORE, tmp_path / "prompts_store")
    return tmp_path


@pytest.fixture()
def text_backend(home, monkeypatch):
    """Settings (``$ASKHINT_CONFIG``) whose model is the registered ``text_fake``; call with a TextBackend."""
    with contextlib.ExitStack() as stack:

        def use(backend: TextBackend) -> TextBackend:
            stack.enter_context(registered_backend("text_fake", backend))
            return backend

        (home / "askhint.yaml").write_text("model: {backend: text_fake}\n")
        monkeypatch.setenv("ASKHINT_CONFIG", str(home / "askhint.yaml"))
        yield use


def _cli(*args: str):
    return CliRunner().invoke(main, ["generate-questions", *args], catch_exceptions=False)


def _store_listing(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "prompts_store").iterdir())


def test_cli_writes_a_new_reviewable_prompt_set_and_a_rerun_sends_nothing(home, text_backend):
    curated = load_prompt_set(home / "prompts_store" / "xd_violence")
    backend = text_backend(TextBackend({c: _answer(c) for c in curated.classes}))
    res = _cli("--prompt-set", "xd_violence")
    assert res.exit_code == 0, res.output
    (name,) = set(_store_listing(home)) - {"ucf_crime", "xd_violence"}
    assert name.startswith("xd_violence_generated_") and f"prompt_set: {name}" in res.output
    assert f"{len(curated.classes)} sent, 0 from the cache" in res.output
    new = load_prompt_set(home / "prompts_store" / name)
    assert new.class_questions == {c: tuple(parse_questions(_answer(c))) for c in curated.classes}
    assert new.templates == curated.templates and new.settings == curated.settings
    text = (home / "prompts_store" / name / "class_questions.yaml").read_text()
    assert "# model: fake-llm (fake)" in text and '"model": "fake-llm"' in text and "# date: " in text
    row = Store(paths.db_path()).query("SELECT * FROM prompt_versions").to_dicts()
    assert len(row) == 1 and row[0]["produced_by"].startswith("model fake-llm (fake), settings {")
    first = next(iter(new.classes))
    assert json.loads(row[0]["content"])["questions"][0]["question"] == new.class_questions[first][0]
    assert (home / "prompts_store" / "xd_violence" / "class_questions.yaml").read_text() == (
        STORE / "xd_violence" / "class_questions.yaml"
    ).read_text()

    sent = len(backend.sent)
    again = _cli("--prompt-set", "xd_violence")  # same answers from the cache → same folder: refused
    assert again.exit_code == 2 and "already exists" in again.output and name in again.output
    assert len(backend.sent) == sent and "0 sent" in again.output
    other = _cli("--prompt-set", "xd_violence", "--out", "xd_review")
    assert other.exit_code == 0 and len(backend.sent) == sent
    assert load_prompt_set(home / "prompts_store" / "xd_review").class_questions == new.class_questions


def test_cli_refuses_to_overwrite_before_sending_anything(home, text_backend):
    backend = text_backend(TextBackend())
    for out in ("ucf_crime", "xd_violence"):
        res = _cli("--prompt-set", "ucf_crime", "--out", out)
        assert res.exit_code == 2 and f"{home / 'prompts_store' / out} already exists" in res.output
    assert _cli("--prompt-set", "ucf_crime", "--out", "../x").exit_code == 2
    assert _cli("--prompt-set", "ucf_crime", "--out", "with-dash").exit_code == 2
    assert _cli("--prompt-set", "ucf_crime", "--classes", "Nope").exit_code == 2
    assert _cli("--prompt-set", "no_such_set").exit_code == 2
    assert backend.sent == []


def test_cli_classes_subset_keeps_the_other_classes_curated(home, text_backend):
    text_backend(TextBackend({"Arson": _answer("Arson", 5)}))
    res = _cli("--prompt-set", "ucf_crime", "--classes", "Arson", "--out", "ucf_arson")
    assert res.exit_code == 0, res.output
    new, old = load_prompt_set(home / "prompts_store" / "ucf_arson"), load_prompt_set(STORE / "ucf_crime")
    assert new.class_questions["Arson"] == tuple(parse_questions(_answer("Arson", 5)))
    assert {c: q for c, q in new.class_questions.items() if c != "Arson"} == {
        c: q for c, q in old.class_questions.items() if c != "Arson"
    }


def test_cli_fails_listing_the_classes_with_junk_answers_and_writes_nothing(home, text_backend):
    ps = load_prompt_set(STORE / "ucf_crime")
    good = {c: _answer(c) for c in list(ps.classes)[2:]}
    good[list(ps.classes)[1]] = _answer("x", 2)  # too few
    backend = text_backend(TextBackend(good))
    before = _store_listing(home)
    res = _cli("--prompt-set", "ucf_crime")
    first, second = list(ps.classes)[:2]
    assert res.exit_code == 1
    assert f"fewer than 3 valid questions for {first}, {second}; nothing was written" in res.output
    assert f"FAIL {first}" in res.output and "only 0 valid" in res.output
    assert _store_listing(home) == before
    assert Store(paths.db_path()).scalar("SELECT count(*) FROM prompt_versions") == 0
    sent = len(backend.sent)
    assert _cli("--prompt-set", "ucf_crime").exit_code == 1 and len(backend.sent) == sent  # cached


def test_cli_with_the_smoke_models_junk_fails_and_writes_nothing(home, smoke_model_dir, monkeypatch):
    (home / "askhint.yaml").write_text(f"model: {{path: {smoke_model_dir}, max_new_tokens: 24}}\n")
    monkeypatch.setenv("ASKHINT_CONFIG", str(home / "askhint.yaml"))
    before = _store_listing(home)
    res = _cli("--prompt-set", "ucf_crime", "--classes", "Abuse,Arson")
    assert res.exit_code == 1, res.output
    assert re.search(r"valid questions for .*Abuse.*; nothing was written", res.output)
    assert _store_listing(home) == before
    rerun = _cli("--prompt-set", "ucf_crime", "--classes", "Abuse,Arson")
    assert rerun.exit_code == 1 and "0 sent, 2 from the cache" in rerun.output
