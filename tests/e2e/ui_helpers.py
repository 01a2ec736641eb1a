"""The UI test's own steps: a home seeded with the cached demo videos, materialized with the fake VLM
(the rest of driving the UI is :mod:`support.dagster_ui`, shared with ``bench/screenshot_ui.py``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from support.dagster_ui import ROOT, home_env

# Materialize everything with the deterministic fake VLM (no model build): ~40 s on 2 cores.
# The fake is injected through the resources: the graph and its code versions are the demo's, as the UI shows them.
_MATERIALIZE = """
from dagster import DagsterInstance
from askhint_assets.definitions import build_defs
from askhint_assets.orchestration.resources import VLMResource
from askhint_assets.orchestration.update import update
from tests.fakes import FakeBackend, registered_backend
with registered_backend("ui_fake", FakeBackend(threshold=100)) as name:
    update(build_defs(resources={"vlm": VLMResource(backend=name)}), DagsterInstance.get())
"""


def prepare_home(home: Path) -> dict[str, str]:
    """Create ``home`` with the project's dagster.yaml and the cached demo videos; returns its environment."""
    from support.demo_data import seed_demo_data

    (home / "dagster").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    seed_demo_data(home)
    env = home_env(home)
    # create the instance's storage once, before `dagster dev` (webserver, daemon, code server) and the
    # materializing process open it at the same time: on a fresh SQLite storage their concurrent schema
    # set-up can leave alembic with two heads ("Version table 'alembic_version' has more than one head")
    subprocess.run([sys.executable, "-c", "from dagster import DagsterInstance; DagsterInstance.get().dispose()"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    return env


def materialize_demo(env: dict[str, str], timeout_s: float = 300) -> None:
    """Materialize every asset into the prepared home of ``env`` with the fake VLM."""
    proc = subprocess.run(
        [sys.executable, "-c", _MATERIALIZE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
    )
    if proc.returncode != 0:
        raise RuntimeError(f"materialization failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")


