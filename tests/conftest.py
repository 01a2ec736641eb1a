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


@pytest.fixture(scope="session")
def real_vocab_model_dir() -> Path:
    """A tiny random Qwen2.5-VL on the released Qwen2.5 vocabulary (:mod:`support.real_vocab`), built once into
    the shared model cache (keyed by the recipe's source hash, under a lock: parallel workers wait, then reuse)."""
    import hashlib
    import shutil
    import tempfile

    from askhint_assets import paths
    from askhint_assets.file_lock import exclusive
    from support import real_vocab

    recipe = hashlib.sha256(Path(real_vocab.__file__).read_bytes()).hexdigest()[:12]
    root = paths.model_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    out = root / f"real-vocab-qwen2_5_vl-{recipe}"
    with exclusive(root / f".{out.name}.lock"):
        if not (out / "model.safetensors").is_file():
            tmp = Path(tempfile.mkdtemp(dir=root)) / out.name
            real_vocab.write_checkpoint(tmp)
            shutil.move(str(tmp), str(out))
            shutil.rmtree(tmp.parent, ignore_errors=True)
    return out


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files holding ``slow`` tests first, each file's own order kept. ``make test`` hands whole files to two
    xdist workers in this order (``--dist loadfile --no-loadscope-reorder``), so the long files start at
    once and the many short ones fill in beside them; xdist's own reorder (most tests first) started the
    one-test files that take a minute last, which left one worker running alone at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
