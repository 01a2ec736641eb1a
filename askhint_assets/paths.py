"""ASKHINT_HOME and the paths under it; nothing else global."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The prompt sets shipped with the project (the smoke model trains on a frozen copy: demo/smoke_corpus/).
PROMPTS_STORE = PROJECT_ROOT / "prompts_store"


def prompts_store() -> Path:
    """The prompt store folder (``$ASKHINT_PROMPTS_STORE``, default ``prompts_store/`` of the project)."""
    return Path(os.environ.get("ASKHINT_PROMPTS_STORE", PROJECT_ROOT / "prompts_store"))


def home() -> Path:
    """The folder holding all askhint state (``$ASKHINT_HOME``, default ``./.askhint``)."""
    return Path(os.environ.get("ASKHINT_HOME", ".askhint")).resolve()


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
