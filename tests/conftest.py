"""Shared fixtures: the smoke-test model (the committed fixture; no test trains it)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_model_dir() -> Path:
    """The smoke-test Qwen2.5-VL of the current recipe: the committed fixture, or the shared model cache
    (``paths.model_cache_dir()``, built there once under a lock) when the recipe has no fixture."""
    from askhint_assets.demo.smoke_model import ensure_smoke_model

    return Path(ensure_smoke_model())
