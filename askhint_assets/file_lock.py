"""An exclusive inter-process file lock with a timeout, naming its holder when it times out.

Built on the ``filelock`` package (``flock`` on POSIX: released when the holder closes it or dies, and
two holders in one process exclude each other too). The holder writes its pid, host and start time to
``<lock>.holder`` once it has the lock, so a waiter that gives up can say who holds it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from askhint_assets.errors import AskHintError

DEFAULT_TIMEOUT_S = 1800.0
"""How long a waiter waits by default (``$ASKHINT_LOCK_TIMEOUT_S``): long enough for a smoke-model build or a
slow model batch under a request lock, short enough that a hung holder is reported rather than waited on
for ever."""


class LockTimeoutError(AskHintError):
    """A lock was not acquired in time; the message names the lock file and its holder."""


def _timeout(timeout_s: float | None) -> float:
    if timeout_s is not None:
        return timeout_s
    raw = os.environ.get("ASKHINT_LOCK_TIMEOUT_S")
    try:
        return float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise AskHintError(f"ASKHINT_LOCK_TIMEOUT_S={raw!r}: must be a number of seconds") from None


def _holder_file(path: Path) -> Path:
    return path.with_name(path.name + ".holder")


def holder(path: str | Path) -> str:
    """Who last took the lock at ``path`` (``pid 123 on host since ...``), or ``unknown``."""
    try:
        return _holder_file(Path(path)).read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def exclusive(path: str | Path, timeout_s: float | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing), waiting at most ``timeout_s`` seconds
    (default ``$ASKHINT_LOCK_TIMEOUT_S`` or 30 minutes) while another holder has it."""
    path = Path(path)
    wait = _timeout(timeout_s)
    lock = filelock.FileLock(str(path), timeout=wait)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LockTimeoutError(
            f"{path}: lock not acquired in {wait:g} s; held by {holder(path)}. If that process hangs, stop it; "
            "to wait longer set ASKHINT_LOCK_TIMEOUT_S"
        ) from None
    try:
        with contextlib.suppress(OSError):  # the lock itself is what matters; the holder note is best effort
            _holder_file(path).write_text(
                f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
            )
        yield
    finally:
        lock.release()
