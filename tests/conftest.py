"""Shared fixtures: the smoke-test model, built and trained once and reused across runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_model_dir() -> Path:
    """The trained smoke-test Qwen2.5-VL (rebuilt only when its recipe changes; a few CPU minutes)."""
    from askhint_assets.demo.smoke_model import ensure_smoke_model

    cache = Path(os.environ.get("ASKHINT_TEST_CACHE", ROOT / ".askhint" / "test-cache"))
    return Path(ensure_smoke_model(cache / "smoke-qwen2_5_vl"))
