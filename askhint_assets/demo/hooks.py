"""The demo as a plug-in: ``model.path: smoke`` resolves to the smoke-test model, and a UCF-Crime or
XD-Violence data set without ``root`` is the generated demo.

The registries know nothing of the demo; the plug-in loader (:mod:`askhint_assets.plugins`) calls
:func:`register` the first time a registry misses a name, so that a backend loading ``smoke`` gets the
folder of the tiny Qwen2.5-VL (the committed fixture of its recipe, or the one built from the recipe into
the shared model cache) and a data set without ``root`` gets the synthetic clips in its kind's layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from askhint_assets.datasets.registry import register_demo
from askhint_assets.settings import SMOKE_MODEL
from askhint_assets.vlm.backends.registry import register_model_path


def smoke_model_path(settings: Mapping[str, Any]) -> str:
    """The smoke-test model's folder (built into the model cache only if the fixture does not match its
    recipe; torch is imported only now)."""
    from askhint_assets.demo.smoke_model import ensure_smoke_model

    return str(ensure_smoke_model())


def write_demo(kind: str, root: Path) -> None:
    """The generated demo of ``kind`` in ``root`` (the clips are rendered only now)."""
    from askhint_assets.demo.datasets import DEMO_GENERATORS

    DEMO_GENERATORS[kind](root)


def _ucf_crime(root: Path) -> None:
    write_demo("ucf_crime", root)


def _xd_violence(root: Path) -> None:
    write_demo("xd_violence", root)


def register() -> None:
    """Register the ``smoke`` model-path hook and the demo data sets' generators (idempotent)."""
    register_model_path(SMOKE_MODEL, smoke_model_path)
    register_demo("ucf_crime", _ucf_crime)
    register_demo("xd_violence", _xd_violence)
