"""The inter-process lock: a waiter gives up after its timeout naming the holder, and otherwise waits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from askhint_assets.file_lock import LockTimeoutError, exclusive

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from askhint_assets.file_lock import exclusive
    lock, go = Path(sys.argv[1]), Path(sys.argv[2])
    with exclusive(lock):
        print("held", flush=True)
        while not go.exists():  # hold until the test says so
            time.sleep(0.01)
        (lock.parent / "released").write_text("1")
""")


def _holder(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    lock, go = tmp_path / "x.lock", tmp_path / "go"
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), str(go)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child, lock, go


def test_a_waiter_times_out_naming_the_lock_and_the_holders_pid(tmp_path):
    child, lock, go = _holder(tmp_path)
    try:
        with pytest.raises(LockTimeoutError) as e, exclusive(lock, timeout_s=0.3):
            pass
        assert str(lock) in str(e.value) and f"pid {child.pid} on " in str(e.value)
        assert "ASKHINT_LOCK_TIMEOUT_S" in str(e.value)
    finally:
        go.write_text("1")
        child.wait(timeout=30)


def test_a_waiter_gets_the_lock_only_after_the_holder_released_it(tmp_path):
    child, lock, go = _holder(tmp_path)
    go.write_text("1")  # the holder writes "released" before it lets go
    with exclusive(lock, timeout_s=30):
        assert (tmp_path / "released").exists()
    child.wait(timeout=30)
    with exclusive(lock, timeout_s=0.3), pytest.raises(LockTimeoutError), exclusive(lock, timeout_s=0.3):
        pass  # two holders in one process exclude each other too


def test_a_bad_timeout_setting_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("ASKHINT_LOCK_TIMEOUT_S", "soon")
    with pytest.raises(Exception, match="ASKHINT_LOCK_TIMEOUT_S='soon'"), exclusive(tmp_path / "y.lock"):
        pass
