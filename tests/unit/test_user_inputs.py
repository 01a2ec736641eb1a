"""Names that become paths never leave ASKHINT_HOME; every file the user gives fails as one named line (issue #22)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from askhint_assets import paths
from askhint_assets.datasets import folder
from askhint_assets.errors import InputError, NotWritableError
from askhint_assets.prompts.loader import load_prompt_set
from askhint_assets.settings_file import load_settings
from askhint_assets.user_files import read_text

BAD_NAMES = ["..", "../../escaped", "/tmp/escaped", "a/b", "a\\b", "../x", "x/..", "name\n", " lead", "",
             "é", "ｅｓｃａｐｅｄ", "a\u2215b", "a\x00b", "a.b", "1abc", ".hidden"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_that_is_not_plain_is_refused(name):
    with pytest.raises(InputError, match="letters, digits and _"):
        paths.check_name(name, "data set name")
    with pytest.raises(InputError):
        paths.under(Path("/base"), name, ".md")


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_report_name_never_leaves_the_home(name, tmp_path, monkeypatch):
    monkeypatch.setenv("ASKHINT_HOME", str(tmp_path / "home"))
    with pytest.raises(InputError):
        paths.report_path(name)
    assert paths.report_path("demo_2") == tmp_path / "home" / "reports" / "demo_2.md"


def test_a_symlinked_entry_that_leads_out_is_refused(tmp_path):
    base = tmp_path / "reports"
    base.mkdir()
    (base / "demo.md").symlink_to(tmp_path / "elsewhere.md")
    with pytest.raises(InputError, match="leads outside"):
        paths.under(base, "demo", ".md")


@pytest.mark.parametrize("key", ["../x", "a/b", "/abs", "a..b", "x" * 300])
def test_cache_keys_are_checked_by_the_same_function(key):
    with pytest.raises(InputError):
        paths.under(Path("/cache"), key, ".npz", pattern=paths.KEY)


@pytest.mark.parametrize("form", ["single", "listed"])
@pytest.mark.parametrize("name", ["../../escaped", "/tmp/escaped", "a/b", "é", "name\\n"])
def test_settings_refuse_a_data_set_name_that_is_not_plain_in_both_forms(tmp_path, form, name):
    cfg = tmp_path / "askhint.yaml"
    entry = f'{{name: "{name}", kind: folder, root: {tmp_path}}}'
    cfg.write_text(f"dataset: {entry}\n" if form == "single" else f"datasets:\n  - {entry}\n")
    with pytest.raises(InputError) as e:
        load_settings(cfg)
    field = "dataset.name" if form == "single" else "datasets[0].name"
    assert str(e.value).startswith(f"{cfg}:{1 if form == 'single' else 2}: {field}: "), str(e.value)
    assert "letters, digits and _" in str(e.value)


def test_latin1_byte_names_file_and_line(tmp_path):
    p = tmp_path / "annotations.csv"
    p.write_bytes(b"video,class,intervals\nclip,Normal,\ncaf\xe9,Normal,\n")
    with pytest.raises(InputError) as e:
        read_text(p, "annotation file")
    assert str(e.value) == f"{p}:3: byte 0xe9 at offset 38 is not UTF-8: save the annotation file as UTF-8"


@pytest.mark.parametrize("case", ["folder", "loop", "dangling", "missing"])
def test_wrong_kinds_of_file_name_the_file(tmp_path, case):
    p = tmp_path / "settings.yaml"
    if case == "folder":
        p.mkdir()
    elif case == "loop":
        p.symlink_to(p)
    elif case == "dangling":
        p.symlink_to(tmp_path / "gone.yaml")
    reason = {"folder": "is a folder, not a file", "loop": "is a symlink loop",
              "dangling": f"is a symlink to a missing file ({tmp_path / 'gone.yaml'})", "missing": "not found"}[case]
    with pytest.raises(InputError) as e:
        load_settings(p)
    assert str(e.value) == f"{p}: settings file {reason}"


def test_settings_file_in_latin1_names_its_line(tmp_path):
    p = tmp_path / "askhint.yaml"
    p.write_bytes(b"sampling: {max_frames: 16}\n# r\xe9sum\xe9\n")
    with pytest.raises(InputError, match=rf"^{p}:2: byte 0xe9 .* save the settings file as UTF-8"):
        load_settings(p)


def test_prompt_yaml_in_latin1_names_its_line(tmp_path):
    from askhint_assets import paths as p_

    store = tmp_path / "ucf_crime"
    import shutil

    shutil.copytree(p_.PROMPTS_STORE / "ucf_crime", store)
    q = store / "class_questions.yaml"
    lines = q.read_bytes().split(b"\n")
    lines[3] += b" # caf\xe9"
    q.write_bytes(b"\n".join(lines))
    with pytest.raises(InputError, match=rf"^{q}:4: byte 0xe9 .* save the file as UTF-8"):
        load_prompt_set(store)


def test_annotation_folder_and_latin1_through_the_folder_loader(tmp_path):
    (tmp_path / "annotations.csv").mkdir()
    with pytest.raises(InputError, match=r"annotations\.csv: annotation file is a folder, not a file$"):
        folder.load(tmp_path)
    os.rmdir(tmp_path / "annotations.csv")
    (tmp_path / "annotations.csv").write_bytes(b"video,class,intervals\n\xff,Normal,\n")
    with pytest.raises(InputError, match=r"annotations\.csv:2: byte 0xff"):
        folder.load(tmp_path)


def test_a_folder_that_cannot_be_written_is_named(tmp_path, monkeypatch):
    def denied(*_a, **_k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setenv("ASKHINT_HOME", str(tmp_path))
    monkeypatch.setattr(paths.tempfile, "TemporaryFile", denied)
    with pytest.raises(NotWritableError) as e:
        paths.writable_dir(tmp_path / "dagster")
    assert str(e.value) == f"{tmp_path / 'dagster'}: not writable (Permission denied; ASKHINT_HOME is {tmp_path})"
