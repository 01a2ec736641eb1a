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


@pytest.fixture(scope="session")
def real_vocab_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2.5-VL on the released Qwen2.5 vocabulary (:mod:`tests.real_vocab`), built once.

    Kept under ``$ASKHINT_TEST_CACHE`` (keyed by the recipe's source hash) when that is set, else per session.
    """
    import hashlib
    import shutil

    from tests import real_vocab

    recipe = hashlib.sha256(Path(real_vocab.__file__).read_bytes()).hexdigest()[:12]
    root = Path(os.environ["ASKHINT_TEST_CACHE"]) if os.environ.get("ASKHINT_TEST_CACHE") else \
        tmp_path_factory.mktemp("real-vocab")
    out = root / f"real-vocab-qwen2_5_vl-{recipe}"
    if not (out / "model.safetensors").is_file():
        tmp = tmp_path_factory.mktemp("real-vocab-build") / out.name
        real_vocab.write_checkpoint(tmp)
        shutil.move(str(tmp), str(out)) if not out.exists() else None
    return out
