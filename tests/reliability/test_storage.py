"""Row 7: a read-only ASKHINT_HOME and a full disk.

What is simulated (the tests run as root, whom ``chmod -w`` does not stop, and cannot mount):
* a home that cannot be created: ``ASKHINT_HOME`` names a path under a regular file;
* a read-only file system under an existing home: every DuckDB open for writing raises the
  ``IOException`` DuckDB raises there ("Read-only file system"); read-only opens work;
* a full disk: ``FrameCache.save`` / ``Store.upsert`` raise ``OSError(ENOSPC)``.
Each must give a clear error, send no needless model request, and leave the database readable with
every row it had.
"""

from __future__ import annotations

import errno
import os
import subprocess

import duckdb
import pytest

from askhint_assets.store import Store
from askhint_assets.video.frame_cache import FrameCache
from support import fault_harness as harness

pytestmark = pytest.mark.slow

TABLES = ("videos", "scoring_units", "prompt_versions", "question_sets", "responses", "predictions")


def _counts(home) -> dict[str, int]:
    return {t: home.scalar(f"SELECT count(*) FROM {t}") for t in TABLES}


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture(scope="module")
def full_home(prepared, tmp_path_factory):
    return harness.clone(prepared, tmp_path_factory.mktemp("disk_full") / "home")


def test_home_under_a_file_is_a_clear_cli_error(tmp_path, standin):
    (tmp_path / "file").write_text("not a folder")
    home = harness.make_home(tmp_path / "home", standin.base_url)
    env = {**os.environ, **home.env, "ASKHINT_HOME": str(tmp_path / "file" / "x")}
    env.pop("DAGSTER_HOME")  # default: under ASKHINT_HOME, as `make` sets it
    proc = subprocess.run(harness.cli(), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"error: {tmp_path}/file/x/dagster: not writable (Not a directory; ASKHINT_HOME is " in proc.stderr
    assert "Traceback" not in proc.stderr
    assert standin.request_count == 0


def test_home_under_a_file_fails_before_any_model_request(tmp_path, standin):
    (tmp_path / "file").write_text("not a folder")
    home = harness.make_home(tmp_path / "home", standin.base_url)
    home.env["ASKHINT_HOME"] = str(tmp_path / "file" / "x")  # Dagster's own home stays writable
    out = harness.materialize(home)
    assert not out.ok
    assert f"{tmp_path}/file/x: cannot create the folder (Not a directory)" in out.message, out.message
    assert standin.request_count == 0


def test_read_only_file_system_keeps_the_database_readable(prepared, tmp_path, standin, monkeypatch):
    home = harness.clone(prepared, tmp_path / "home")
    before = _counts(home)
    connect = duckdb.connect

    def read_only_fs(path=":memory:", read_only=False, **kw):
        if not read_only and str(path).startswith(str(home.root)):
            raise duckdb.IOException(f'IO Error: Cannot open file "{path}": Read-only file system')
        return connect(path, read_only=read_only, **kw)

    monkeypatch.setattr(duckdb, "connect", read_only_fs)
    out = harness.materialize(home)
    assert not out.ok
    assert f"{home.db}: cannot open the database" in out.message and "Read-only file system" in out.message
    assert standin.request_count == 0
    assert _counts(home) == before


def test_disk_full_while_caching_frames_fails_the_run_not_the_videos(full_home, standin, monkeypatch):
    before = _counts(full_home)
    full_home.update_settings("sampling", max_frames=8)  # new frames to decode and cache
    monkeypatch.setattr(FrameCache, "save", _enospc)
    out = harness.materialize(full_home)
    assert not out.ok
    assert "cache/frames: cannot write decoded frames (No space left on device)" in out.message, out.message
    assert full_home.scalar("SELECT count(*) FROM videos WHERE status <> 'ok'") == 0
    assert _counts(full_home) == before
    assert standin.request_count == 0


def test_disk_full_while_storing_predictions_loses_no_answer(full_home, standin, monkeypatch):
    real = Store.upsert

    def upsert(self, table, rows):
        return _enospc() if table == "predictions" else real(self, table, rows)

    monkeypatch.setattr(Store, "upsert", upsert)
    out = harness.materialize(full_home)
    assert not out.ok
    assert "No space left on device" in out.message, out.message
    sent = standin.request_count
    assert sent > 0 and full_home.scalar("SELECT count(*) FROM responses") == sent
    assert full_home.scalar("SELECT count(*) FROM predictions") == 0

    monkeypatch.undo()  # space is back: the answers come from the database, none is asked again
    standin.reset()
    out = harness.materialize(full_home)
    assert out.ok, out.message
    assert standin.request_count == 0
    assert harness.lost(full_home) == 0 and harness.duplicates(full_home) == 0
