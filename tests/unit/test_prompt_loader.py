import shutil
from pathlib import Path

import pytest

from askhint_assets.errors import InputError
from askhint_assets.prompts.loader import FILES, load_prompt_set, question_table

STORE = Path(__file__).resolve().parents[2] / "prompts_store"
GROUPS = ("Violence/Harm to People", "Crimes Against Property", "Public Safety Incidents")

MINI = {
    "taxonomy.yaml": """\
name: mini
groups:
  - Violence/Harm to People
  - Public Safety Incidents
classes:
  Fighting:
    group: Violence/Harm to People
    description: People fight.
  Explosion:
    group: Public Safety Incidents
    description: A blast.
""",
    "class_questions.yaml": """\
Fighting:
  - Do you see punching or kicking?
  - Are people wrestling?
Explosion:
  - Do you see a blast?
""",
    "templates.yaml": """\
system: You are an analyst.
stage1: "Questions:\\n{questions}\\nAnswer Normal or Abnormal."
stage2: "Which group: {groups}?"
abstract: Is there an anomaly in this video?
yes_no: "{question} Answer Yes or No."
""",
    "settings.yaml": "target_size: 2\n",
}


def write_store(tmp_path: Path, **override: str) -> Path:
    d = tmp_path / "mini"
    d.mkdir(exist_ok=True)
    for name, text in MINI.items():
        (d / name).write_text(override.get(name.replace(".yaml", ""), text))
    return d


# ---- the real stores ---------------------------------------------------------------------------


def test_ucf_crime_store():
    ps = load_prompt_set(STORE / "ucf_crime")
    assert ps.name == "ucf_crime"
    assert ps.groups == GROUPS
    assert len(ps.classes) == 13
    assert ps.classes["Fighting"].group == GROUPS[0]
    assert ps.classes["Vandalism"].group == GROUPS[1]
    assert ps.classes["RoadAccidents"].group == GROUPS[2]
    assert ps.settings["target_size"] == 6
    assert all(3 <= len(qs) <= 5 for qs in ps.class_questions.values())
    assert set(ps.files) == set(FILES)


def test_xd_violence_store():
    ps = load_prompt_set(STORE / "xd_violence")
    assert list(ps.classes) == ["Fighting", "Shooting", "Riot", "Abuse", "Car accident", "Explosion"]
    assert ps.settings["target_size"] == 5
    assert all(3 <= len(qs) <= 5 for qs in ps.class_questions.values())


def test_question_table_ids():
    ps = load_prompt_set(STORE / "ucf_crime")
    rows = question_table(ps)
    assert len(rows) == sum(len(q) for q in ps.class_questions.values())
    row = next(r for r in rows if r["question_id"] == "Fighting/2")
    assert row == {
        "class": "Fighting",
        "group": GROUPS[0],
        "question_id": "Fighting/2",
        "question": ps.class_questions["Fighting"][1],
    }
    assert len({r["question_id"] for r in rows}) == len(rows)
    assert all(r["question"].endswith("?") for r in rows)


# ---- versions ----------------------------------------------------------------------------------


def test_whitespace_and_comment_edits_keep_the_version(tmp_path):
    d = tmp_path / "ucf"
    shutil.copytree(STORE / "ucf_crime", d)
    before = load_prompt_set(d)
    q = d / "class_questions.yaml"
    text = q.read_text().replace("  - Do you see ", "  -    Do  you see ")
    q.write_text("# a new comment\n\n" + text.replace("\n", "   \n") + "\n\n# trailing\n")
    t = d / "templates.yaml"
    t.write_text(t.read_text() + "\n# comment only\n")
    after = load_prompt_set(d)
    assert after.version == before.version
    assert after.files["class_questions.yaml"] != before.files["class_questions.yaml"]
    assert after.files["taxonomy.yaml"] == before.files["taxonomy.yaml"]


def test_changed_question_changes_the_version(tmp_path):
    d = tmp_path / "ucf"
    shutil.copytree(STORE / "ucf_crime", d)
    before = load_prompt_set(d)
    q = d / "class_questions.yaml"
    q.write_text(q.read_text().replace("wrestling between people?", "wrestling between two people?"))
    assert load_prompt_set(d).version != before.version


# ---- validation: every error names file, line and field ----------------------------------------

Q = MINI["class_questions.yaml"]
T = MINI["taxonomy.yaml"]
TPL = MINI["templates.yaml"]

CASES = {
    "malformed": ("class_questions", Q.replace("  - Are people wrestling?", "  - [Are people"), 4, None),
    "missing_field": ("taxonomy", T.replace("    description: A blast.\n", ""), 10, "classes.Explosion.description"),
    "wrong_type": ("settings", "target_size: six\n", 1, "target_size"),
    "wrong_type_list": ("taxonomy", T.replace("groups:\n  - Violence/Harm to People\n", "groups: 3\n"), 2, "groups"),
    "unknown_class": ("class_questions", Q + "Burglar:\n  - Is a door forced?\n", 6, "Burglar"),
    "class_without_questions": ("class_questions", Q[: Q.index("Explosion")], 1, "Explosion"),
    "empty_list": (
        "class_questions",
        Q.replace("Explosion:\n  - Do you see a blast?", "Explosion: []"),
        4,
        "Explosion",
    ),
    "too_many": (
        "class_questions",
        Q + "".join(f"  - Is there thing {i}?\n" for i in range(8)),
        5,
        "Explosion",
    ),
    "empty_question": ("class_questions", Q.replace("Are people wrestling?", '""'), 3, "Fighting/2"),
    "duplicate_question": (
        "class_questions",
        Q.replace("Do you see a blast?", "do you see punching or KICKING?"),
        5,
        "Explosion/1",
    ),
    "no_question_mark": ("class_questions", Q.replace("Are people wrestling?", "People wrestling."), 3, "Fighting/2"),
    "question_not_string": ("class_questions", Q.replace("Are people wrestling?", "{a: 1}"), 3, "Fighting/2"),
    "unknown_group": (
        "taxonomy",
        T.replace("    group: Public Safety Incidents", "    group: Traffic"),
        10,
        "classes.Explosion.group",
    ),
    "duplicate_class": ("taxonomy", T + "  Fighting:\n    group: x\n    description: y\n", 12, "classes.Fighting"),
    "unknown_field": (
        "taxonomy",
        T.replace("    description: People fight.", "    descripton: People fight."),
        8,
        "classes.Fighting.descripton",
    ),
    "missing_placeholder": ("templates", TPL.replace("{questions}", "Q*"), 2, "stage1"),
    "bad_brace": ("templates", TPL.replace("Which group", "Which {grup}"), 3, "stage2"),
    "missing_template": ("templates", TPL.replace('yes_no: "{question} Answer Yes or No."\n', ""), 1, "yes_no"),
    "groups_mismatch": ("templates", TPL + "groups:\n  - Violence/Harm to People\n", 7, "groups"),
    "bad_per_cluster": ("settings", "target_size: 2\nper_cluster: [3, 2]\n", 2, "per_cluster"),
    "bad_merge_linkage": ("settings", "target_size: 2\nmerge_linkage: single\n", 2, "merge_linkage"),
    "bad_clustering": (
        "settings",
        "target_size: 2\nclustering:\n  cluster_selection_method: tree\n",
        3,
        "clustering.cluster_selection_method",
    ),
    "empty_file": ("settings", "# nothing\n", 1, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_validation_errors_name_file_line_field(tmp_path, case):
    stem, text, line, field = CASES[case]
    d = write_store(tmp_path, **{stem: text})
    with pytest.raises(InputError) as err:
        load_prompt_set(d)
    e = err.value
    assert Path(e.path) == d / f"{stem}.yaml"
    assert e.line == line, str(e)
    assert e.field == field, str(e)
    assert str(e).startswith(f"{d / stem}.yaml:{line}: ")


def test_mini_store_loads(tmp_path):
    ps = load_prompt_set(write_store(tmp_path))
    assert ps.templates.groups == ("Violence/Harm to People", "Public Safety Incidents")
    assert ps.settings["per_cluster"] == [2, 3]
    assert ps.settings["merge_linkage"] == "ward"
    ps = load_prompt_set(write_store(tmp_path, settings="target_size: 2\nmerge_linkage: average\n"))
    assert ps.settings["merge_linkage"] == "average"
    assert [r["question_id"] for r in question_table(ps)] == ["Fighting/1", "Fighting/2", "Explosion/1"]


def test_error_line_in_the_real_store(tmp_path):
    d = tmp_path / "ucf"
    shutil.copytree(STORE / "ucf_crime", d)
    q = d / "class_questions.yaml"
    lines = q.read_text().splitlines()
    i = next(i for i, s in enumerate(lines) if "Do you see someone aiming or firing a gun?" in s)
    lines[i] = lines[i].replace("gun?", "gun.")
    q.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"class_questions.yaml:{i + 1}: Shooting/1: .*end with '\?'"):
        load_prompt_set(d)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="directory not found"):
        load_prompt_set(tmp_path / "nope")
    d = write_store(tmp_path)
    (d / "settings.yaml").unlink()
    with pytest.raises(InputError, match=r"settings\.yaml: file not found"):
        load_prompt_set(d)
