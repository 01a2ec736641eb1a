"""Issue #22, replayed as a careless or hostile user would: a data set name that leads out of the home, files
in Latin-1 or folders where files should be, a read-only home, a bad prompt file. Each ends in one line naming
the file (and line), no traceback, nothing written outside ``ASKHINT_HOME``, no model request."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from support import fault_harness as harness

pytestmark = pytest.mark.slow


def _run_cli(home, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **home.env}
    return subprocess.run(harness.cli(*args), cwd=harness.ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The one ``error: ...`` line (``Error: ...`` from `askhint plan`, a click command) of a failed command."""
    assert proc.returncode in (1, 2), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.lower().startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-3000:]
    return "error: " + errors[0][len("error: "):]


@pytest.mark.parametrize("name", ["../../escaped", "ABSOLUTE"])
def test_a_data_set_name_cannot_write_outside_the_home(tmp_path, standin, name):
    root = tmp_path / "a" / "b"
    home = harness.make_home(root / "home", standin.base_url)
    name = str(tmp_path / "abs_escaped") if name == "ABSOLUTE" else name
    home.update_settings("dataset", name=name)
    before = {p for p in tmp_path.rglob("*") if not p.is_relative_to(home.root)}
    error = _one_line_error(_run_cli(home, "update"))
    assert error.startswith(f"error: {home.config}:2: dataset.name: {name!r}: names and prompt sets must be"), error
    assert {p for p in tmp_path.rglob("*") if not p.is_relative_to(home.root)} == before
    assert not list(tmp_path.rglob("*escaped*"))
    assert standin.request_count == 0


@pytest.mark.parametrize("command", ["plan", "update"])
def test_latin1_annotation_is_one_line_naming_file_and_line(tmp_path, standin, command):
    home = harness.make_home(tmp_path / "home", standin.base_url)
    ann = home.data / harness.ANNOTATION
    lines = ann.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"_x264", b"_x264\xe9", 1)
    ann.write_bytes(b"\n".join(lines))
    home.update_settings("dataset", on_error="raise")
    proc = _run_cli(home, command)
    if command == "plan":
        error = _one_line_error(proc)
    else:  # the run fails at dataset_index; `update` prints the step's own message
        assert proc.returncode != 0 and "UnicodeDecodeError" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
        error = proc.stdout + proc.stderr
    assert f"{ann}:3: byte 0xe9 at offset" in error and "save the annotation file as UTF-8" in error, error
    assert standin.request_count == 0


def test_a_folder_where_the_settings_file_should_be(tmp_path, standin):
    home = harness.make_home(tmp_path / "home", standin.base_url)
    home.config.unlink()
    home.config.mkdir()
    error = _one_line_error(_run_cli(home, "plan"))
    assert error == f"error: {home.config}: settings file is a folder, not a file"


@pytest.mark.parametrize("asset", ["class_prompts", "inference_templates"])
def test_prompt_steps_fail_with_the_files_line_and_no_stack_trace(tmp_path, standin, asset):
    import dagster as dg

    home = harness.make_home(tmp_path / "home", standin.base_url)
    q = home.root / "prompts_store" / "ucf_crime" / "templates.yaml"
    q.write_bytes(q.read_bytes() + b"# caf\xe9\n")
    n = q.read_bytes().count(b"\n")
    from askhint_assets.definitions import build_defs
    from askhint_assets.settings_file import load_settings

    with home.active(), dg.DagsterInstance.ephemeral() as instance:
        defs = build_defs(load_settings(home.config))
        run = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey(asset)], raise_on_error=False)
    failed = [e for e in run.all_events if e.is_step_failure]
    assert len(failed) == 1
    data = failed[0].event_specific_data
    assert data.user_failure_data is not None  # a dg.Failure: Dagster shows its description, no stack trace
    assert data.error.cls_name == "Failure", data.error.cls_name
    assert data.error.cause is None, data.error.cause  # nor the stack of the askhint code beneath it
    assert data.error.message.strip().endswith(f"{q}:{n}: byte 0xe9 at offset {len(q.read_bytes()) - 2} is not "
                                                "UTF-8: save the file as UTF-8"), data.error.message


def test_read_only_home_names_the_folder(tmp_path, standin):
    home = harness.make_home(tmp_path / "home", standin.base_url)
    dagster_home = home.root / "dagster"
    shutil.rmtree(dagster_home)
    dagster_home.mkdir()
    # the tests run as root, whom `chmod -w` does not stop: an immutable folder refuses even root
    if subprocess.run(["chattr", "+i", str(dagster_home)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (needed to make a folder read-only for root)")
    try:
        error = _one_line_error(_run_cli(home, "observe"))
    finally:
        subprocess.run(["chattr", "-i", str(dagster_home)], check=True)
    assert error.startswith(f"error: {dagster_home}: not writable (Operation not permitted; ASKHINT_HOME is "), error
    assert not (dagster_home / "history").exists()
