"""Hub ids resolve offline from a cache laid out like huggingface_hub's; a missing one fails clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from askhint_assets.vlm.backends.transformers_backend import TransformersBackend
from askhint_assets.vlm.backends.vllm_backend import VLLMBackend
from askhint_assets.vlm.model_source import ModelNotFoundError, is_hub_id, resolve_model
from askhint_assets.vlm.types import Message, VLMRequest
from tests.hf_cache import add_snapshot

REPO = "askhint-test/smoke-qwen2_5_vl"
C1, C2 = "1" * 40, "2" * 40


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smoke_model_dir: Path) -> Path:
    """An offline HF_HOME holding the smoke model as snapshot C1 (refs/main -> C1)."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = tmp_path / "hf" / "hub"
    add_snapshot(hub, REPO, smoke_model_dir, C1)
    return hub


def test_hub_id_or_folder(tmp_path: Path) -> None:
    assert is_hub_id("Qwen/Qwen2.5-VL-7B-Instruct")
    assert not is_hub_id("/models/qwen") and not is_hub_id("./a/b") and not is_hub_id("smoke")
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert not is_hub_id(str(tmp_path / "org" / "name"))


def test_resolves_offline_from_the_cache(hub: Path) -> None:
    src = resolve_model(REPO)
    assert src.commit == C1 and src.path == hub / "models--askhint-test--smoke-qwen2_5_vl" / "snapshots" / C1
    assert (src.path / "config.json").is_file()
    assert resolve_model(REPO, C1).commit == C1  # a commit as the revision
    assert src.identity() == {"hub_id": REPO, "revision": "main", "commit": C1}


def test_missing_model_is_one_clear_error(hub: Path) -> None:
    with pytest.raises(ModelNotFoundError) as e:
        TransformersBackend("Qwen/Qwen2.5-VL-7B-Instruct")
    msg = str(e.value)
    assert "'Qwen/Qwen2.5-VL-7B-Instruct'" in msg and str(hub) in msg
    assert "hf download Qwen/Qwen2.5-VL-7B-Instruct" in msg and "HF_HUB_OFFLINE" in msg
    with pytest.raises(ModelNotFoundError, match="--revision v9"):
        resolve_model(REPO, "v9")  # a revision the cache does not hold
    with pytest.raises(ModelNotFoundError, match="is a folder"):
        resolve_model(str(hub), "main")


def test_fingerprint_follows_the_snapshot_commit(hub: Path, smoke_model_dir: Path) -> None:
    first = TransformersBackend(REPO).fingerprint()
    assert first["model"] == REPO and first["commit"] == C1
    add_snapshot(hub, REPO, smoke_model_dir, C2)  # the same files under a new commit, refs/main moved
    second = TransformersBackend(REPO).fingerprint()
    assert second["commit"] == C2 and second != first
    assert TransformersBackend(REPO, revision=C1).fingerprint()["commit"] == C1
    vllm = VLLMBackend(REPO)
    assert vllm.engine_kwargs()["model"] == str(hub / "models--askhint-test--smoke-qwen2_5_vl" / "snapshots" / C2)
    assert vllm.fingerprint()["commit"] == C2 and vllm.fingerprint()["model"] == REPO


def test_hub_model_answers(hub: Path) -> None:
    b = TransformersBackend(REPO, max_new_tokens=4)
    (r,) = b.generate([VLMRequest([Message("user", "Hello")], None, max_new_tokens=4)])
    assert r.ok, r.error
    assert b.model_path.parent.name == "snapshots"
