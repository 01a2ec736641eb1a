"""Row 6: a malformed prompt file, an unknown class, an empty question list, a broken annotation line.

Each is a clear error naming file, line and field, and it stops the run before any model request.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from support import fault_harness as harness

pytestmark = pytest.mark.slow

QUESTIONS = "class_questions.yaml"


@pytest.fixture(scope="module")
def input_home(tmp_path_factory, server):
    home = harness.make_home(tmp_path_factory.mktemp("bad_inputs") / "home", server.base_url)
    shutil.copytree(home.root / "prompts_store", home.root / "prompts_store.orig")
    shutil.copy(home.data / harness.ANNOTATION, home.root / "annotation.orig")
    return home


@pytest.fixture
def home(input_home, standin):
    """The module's home; prompt files, annotation and settings restored after each test."""
    settings = input_home.config.read_text()
    yield input_home
    shutil.rmtree(input_home.root / "prompts_store")
    shutil.copytree(input_home.root / "prompts_store.orig", input_home.root / "prompts_store")
    shutil.copy(input_home.root / "annotation.orig", input_home.data / harness.ANNOTATION)
    input_home.config.write_text(settings)


def _questions(home):
    return home.root / "prompts_store" / "ucf_crime" / QUESTIONS


def _no_model_request(home, standin) -> None:
    assert standin.request_count == 0
    assert not home.db.exists() or home.scalar("SELECT count(*) FROM model_calls") == 0
    assert not home.db.exists() or home.scalar("SELECT count(*) FROM predictions") == 0


def _line_of(path, prefix: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(prefix))


@pytest.mark.parametrize("case", ["malformed_yaml", "unknown_class", "empty_question_list"])
def test_bad_prompt_file_is_named_with_line_and_field_before_any_request(home, standin, case):
    path = _questions(home)
    text = path.read_text()
    line = _line_of(path, "Arrest:")
    if case == "malformed_yaml":
        path.write_text(text.replace("Arrest:\n", "Arrest: [unclosed\n", 1))
        expected = rf"{QUESTIONS}:{line + 1}: malformed YAML"  # the parser notices on the next line
    elif case == "unknown_class":
        path.write_text(text + "Teleportation:\n  - Is someone teleporting?\n")
        expected = rf"{QUESTIONS}:{len(text.splitlines()) + 1}: Teleportation: unknown class"
    else:
        head, _, rest = text.partition("Arrest:\n")
        path.write_text(head + "Arrest: []\n" + rest[rest.index("Arson:"):])
        expected = rf"{QUESTIONS}:{line}: Arrest: needs 1-8 questions, got 0"
    out = harness.materialize(home)
    assert not out.ok
    assert re.search(re.escape(str(path.parent)) + "/" + expected, out.message), out.message
    _no_model_request(home, standin)


def _break_annotation(home) -> tuple[str, int]:
    path = home.data / harness.ANNOTATION
    lines = path.read_text().splitlines()
    fields = lines[1].split()
    fields[3] = "oops"  # e1 of the second line
    lines[1] = "  ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    return str(path), 2


@pytest.fixture
def fresh(tmp_path, standin):
    """A home of its own: with the data assets materialized from a good annotation, the model would be
    asked about those units (they do not depend on ``dataset_index``) while the index fails."""
    return harness.make_home(tmp_path / "home", standin.base_url)


def test_broken_annotation_line_fails_the_run_when_raising(fresh, standin):
    home = fresh
    home.update_settings("dataset", on_error="raise")
    path, line = _break_annotation(home)
    out = harness.materialize(home)
    assert not out.ok
    assert f"{path}:{line}: e1: 'oops' is not an integer frame number" in out.message, out.message
    _no_model_request(home, standin)


def test_broken_annotation_line_is_recorded_when_skipping(fresh, standin):
    """Through the prediction assets: the bad line is recorded and never reaches the model; every other
    video is scored, and every request the server saw is a recorded call about one of those."""
    home = fresh
    path, line = _break_annotation(home)
    skipped = Path(path).read_text().splitlines()[line - 1].split()[0].removesuffix(".mp4")
    out = harness.materialize(home, (*harness.UPSTREAM, "askhint_predictions", "abstract_predictions"))
    assert out.ok, out.message
    # a line is not a video: no `videos` row named after it; the asset's metadata lists it with its reason
    assert home.query("SELECT video_id FROM videos WHERE status = 'skipped'") == []
    meta = harness.latest_metadata(home, "dataset_index")
    assert (meta["skipped"], meta["skipped_annotation_lines"]) == (0, 1)
    assert f"{path}:{line}: e1: 'oops' is not an integer frame number" in meta["skipped_table"]
    scored = {v for (v,) in home.query("SELECT DISTINCT video_id FROM predictions WHERE score_source <> 'failed'")}
    assert scored == set(harness.SUBSET) - {skipped}, scored
    assert standin.request_count == home.scalar("SELECT count(*) FROM model_calls") > 0
