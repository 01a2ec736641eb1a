"""ASKHINT_HOME and the paths under it; nothing else global."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from askhint_assets.errors import InputError, NotWritableError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The prompt sets shipped with the project (the smoke model trains on a frozen copy: demo/smoke_corpus/).
PROMPTS_STORE = PROJECT_ROOT / "prompts_store"


def prompts_store() -> Path:
    """The prompt store folder (``$ASKHINT_PROMPTS_STORE``, default ``prompts_store/`` of the project)."""
    return Path(os.environ.get("ASKHINT_PROMPTS_STORE", PROJECT_ROOT / "prompts_store"))


def home() -> Path:
    """The folder holding all askhint state (``$ASKHINT_HOME``, default ``./.askhint``)."""
    return Path(os.environ.get("ASKHINT_HOME", ".askhint")).resolve()


# A name that becomes a path (data set, report, prompt set) or an asset-key prefix: ASCII letters, digits and _,
# starting with a letter. ``\Z``, not ``$``: ``$`` also matches before a final newline.
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
# A generated name (cache key: a content hash, maybe with a prefix): also '.' and '-', never '..'.
KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,200}\Z")


def check_name(name: object, what: str = "name") -> str:
    """``name`` if it is a plain name (:data:`NAME`), else an :class:`InputError` saying why: no ``..``, no
    separator, no absolute path, no space or other character outside ASCII letters, digits and ``_``."""
    if not isinstance(name, str) or not NAME.match(name):
        raise InputError(f"{name!r}: a {what} must be letters, digits and _ (ASCII), starting with a letter; "
                         "it names files and asset keys, so no '..', '/', spaces or other characters")
    return name


def under(base: Path, name: str, suffix: str = "", *, what: str = "name", pattern: re.Pattern = NAME) -> Path:
    """``base / (name + suffix)``, checked: ``name`` matches ``pattern`` and the result stays inside
    ``base`` (resolved, so a symlinked folder cannot lead out either). The one place where a name a user
    or a run chose becomes a path under ``ASKHINT_HOME``."""
    if pattern is NAME:
        check_name(name, what)
    elif not isinstance(name, str) or not pattern.match(name) or ".." in name:
        raise InputError(f"{name!r}: a {what} must be letters, digits, '_', '.' or '-' (no '..')")
    path = base / f"{name}{suffix}"
    root = base.resolve()
    if not path.resolve().is_relative_to(root):
        raise InputError(f"{name!r}: the {what} leads outside {root}")
    return path


def writable_dir(path: Path) -> Path:
    """``path``, created if missing and checked by writing (and removing) a temporary file there; else a
    :class:`NotWritableError` naming the folder (a read-only ``ASKHINT_HOME`` says so instead of a traceback)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise NotWritableError(path, f"{e.strerror or e}; ASKHINT_HOME is {home()}") from None
    return path


def report_path(dataset: str) -> Path:
    """The markdown report of a data set: ``reports/<dataset>.md`` under the home."""
    return under(home() / "reports", dataset, ".md", what="data set name")


def db_path() -> Path:
    return home() / "askhint.duckdb"


def dagster_home() -> Path:
    return home() / "dagster"


def cache_dir() -> Path:
    return home() / "cache"


def frames_cache_dir() -> Path:
    return cache_dir() / "frames"


def model_cache_dir() -> Path:
    """The one cache of built models (the smoke-test model of a recipe not committed as a fixture), shared
    by the demo, the tests and the benchmarks of every clone: ``$ASKHINT_MODEL_CACHE``, else
    ``$XDG_CACHE_HOME/askhint/models`` (``~/.cache/askhint/models``). Entries are named by recipe hash."""
    if os.environ.get("ASKHINT_MODEL_CACHE"):
        return Path(os.environ["ASKHINT_MODEL_CACHE"]).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser().resolve() / "askhint" / "models"


def data_dir() -> Path:
    return home() / "data"


def demo_dataset_dir(kind: str = "ucf_crime") -> Path:
    """The generated demo data set of a layout (``ucf_crime`` → ``demo_ucf``, ``xd_violence`` → ``demo_xd``)."""
    return data_dir() / {"ucf_crime": "demo_ucf", "xd_violence": "demo_xd"}.get(kind, f"demo_{kind}")
