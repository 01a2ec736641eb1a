"""The real-engine tier: a real vLLM (and Hugging Face's ``transformers serve``) against the committed smoke
model, as it is. Runs in the side environment ``make engine-env`` builds (``make test-engine``); elsewhere the
whole folder is skipped (``make test`` does not collect it).

Session fixtures run the demo once per backend (``engine.demo``: the user's commands in a fresh home) and
start each server once; the tests then read what those runs left.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="the real-engine tier runs in the side environment (make test-engine)")

from askhint_assets.demo.smoke_model import fixture_dir
from engine.demo import DemoHome, make_home
from engine.server import RunningServer, vllm_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def smoke_dir() -> Path:
    """The committed smoke model, exactly as committed (no copy, no added file)."""
    return fixture_dir()


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("engine-cache")


@pytest.fixture(scope="session")
def logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def vllm(smoke_dir: Path, logs: Path) -> Iterator[RunningServer]:
    """``vllm serve`` with the README's recipe (engine.server.VLLM_SERVE_FLAGS) on the committed smoke model."""
    with vllm_server(smoke_dir, logs / "vllm.log") as s:
        yield s


@pytest.fixture(scope="session")
def transformers_home(tmp_path_factory, cache: Path) -> DemoHome:
    """The demo through the in-process transformers backend: the reference the engines are compared with."""
    home = make_home(tmp_path_factory.mktemp("home-transformers"), {"backend": "transformers", "path": "smoke"},
                     cache)
    home.materialize()
    return home


@pytest.fixture(scope="session")
def openai_home(tmp_path_factory, cache: Path, vllm: RunningServer, smoke_dir: Path) -> DemoHome:
    """The demo through the openai backend against the real vLLM server."""
    model = {"backend": "openai", "path": str(smoke_dir), "base_urls": [vllm.base_url], "api_key_env": "ASKHINT_NO_KEY"}
    home = make_home(tmp_path_factory.mktemp("home-openai"), model, cache)
    home.materialize()
    return home
