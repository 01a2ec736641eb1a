"""An exclusive inter-process file lock (``flock``): released when the holder closes it or dies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing), waiting while another process holds it.

    ``flock`` locks belong to the open file, so two holders in one process exclude each other too, and a
    killed process leaves no lock behind. Where ``fcntl`` does not exist (not POSIX) nothing is locked.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield  # closing the file releases the lock
