"""The demo's one hook into the production code: ``model.path: smoke`` resolves to the smoke-test model.

The backend registry (``askhint_assets.vlm.backends.registry``) knows nothing of the demo; the composition
root (the Dagster resources, which the CLI uses too) calls :func:`register` so that a backend loading
``smoke`` gets the folder of the tiny Qwen2.5-VL: the committed fixture of its recipe, or the one built
from the recipe into the shared model cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from askhint_assets.settings import SMOKE_MODEL
from askhint_assets.vlm.backends.registry import register_model_path


def smoke_model_path(settings: Mapping[str, Any]) -> str:
    """The smoke-test model's folder (built into the model cache only if the fixture does not match its
    recipe; torch is imported only now)."""
    from askhint_assets.demo.smoke_model import ensure_smoke_model

    return str(ensure_smoke_model())


def register() -> None:
    """Register the ``smoke`` model-path hook (idempotent)."""
    register_model_path(SMOKE_MODEL, smoke_model_path)
