"""The demo's one hook into the production code: ``model.path: smoke`` resolves to the smoke-test model.

The backend registry (``askhint_assets.vlm.backends.registry``) knows nothing of the demo; the composition
root (the Dagster resources, which the CLI uses too) calls :func:`register` so that a backend loading
``smoke`` gets the folder of the tiny Qwen2.5-VL built (and trained, once) under ``$ASKHINT_HOME``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from askhint_assets import paths
from askhint_assets.settings import SMOKE_MODEL
from askhint_assets.vlm.backends.registry import register_model_path


def smoke_model_path(settings: Mapping[str, Any]) -> str:
    """The smoke-test model's folder, built on first use (torch is imported only now)."""
    from askhint_assets.demo.smoke_model import ensure_smoke_model

    return str(ensure_smoke_model(paths.smoke_model_dir(), train_seconds=settings.get("smoke_train_seconds", 240)))


def register() -> None:
    """Register the ``smoke`` model-path hook (idempotent)."""
    register_model_path(SMOKE_MODEL, smoke_model_path)
