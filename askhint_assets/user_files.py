"""The one way a file the user gives is read: every failure is one :class:`InputError` line naming the file.

A settings file, a prompt YAML, an annotation or a score file can be missing, a folder, a symlink loop,
unreadable or in another encoding than UTF-8. Each becomes ``path[:line]: what is wrong`` instead of a
``UnicodeDecodeError`` / ``IsADirectoryError`` traceback; a decoding error names the line of the bad byte.
"""

from __future__ import annotations

import errno
from pathlib import Path

from askhint_assets.errors import InputError


def read_text(path: str | Path, what: str = "file", *, encoding: str = "utf-8-sig") -> str:
    """The text of ``path`` (UTF-8; a byte-order mark is dropped), or an :class:`InputError` naming it.

    ``what`` names the file's role in the message (``settings file``, ``annotation file``, ...).
    """
    p = Path(path)
    data = read_bytes(p, what)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(
            f"byte 0x{data[e.start]:02x} at offset {e.start} is not {e.encoding.upper().replace('-SIG', '')}: "
            f"save the {what} as UTF-8", path=p, line=line,
        ) from None


def read_bytes(path: str | Path, what: str = "file") -> bytes:
    """The bytes of ``path``, or an :class:`InputError` naming it (missing, a folder, a loop, unreadable)."""
    p = Path(path)
    try:
        return p.read_bytes()
    except OSError as e:
        raise InputError(_os_reason(p, e, what), path=p) from None


def _os_reason(p: Path, e: OSError, what: str) -> str:
    """What went wrong opening ``p``, in words (the errno names are not for users)."""
    if isinstance(e, IsADirectoryError) or p.is_dir():
        return f"{what} is a folder, not a file"
    if e.errno == errno.ELOOP:
        return f"{what} is a symlink loop"
    if isinstance(e, FileNotFoundError):
        if p.is_symlink():
            return f"{what} is a symlink to a missing file ({p.readlink()})"
        return f"{what} not found"
    if isinstance(e, PermissionError):
        return f"{what} is not readable (permission denied)"
    return f"cannot read {what}: {e.strerror or e}"
