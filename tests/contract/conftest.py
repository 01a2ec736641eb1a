"""The backends under contract: each real backend class wired to its local stand-in.

* ``transformers``: ``TransformersBackend`` on the tiny random Qwen2.5-VL with the released Qwen2.5
  vocabulary (session fixture ``real_vocab_model_dir``, :mod:`support.real_vocab`), loaded once per session.
* ``openai``: ``OpenAIBackend`` against the stand-in vLLM-format server (one per session, reset per test),
  extended to answer the per-question prompts with ``Yes``/``No`` tokens.
* ``vllm``: ``VLLMBackend`` on the fake ``vllm`` package of :mod:`tests.vllm_fake`, given the same
  real-vocabulary checkpoint as a Hub id (``REAL_VOCAB_ID``) in an offline HF cache laid out like
  huggingface_hub's; the fake engine tokenizes and answers on that vocabulary.

Each case also knows how to make its model side fail for one marked request, and how to build an
unavailable instance of the same backend.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from askhint_assets.vlm.backends.openai_backend import OpenAIBackend
from askhint_assets.vlm.backends.transformers_backend import TransformersBackend
from askhint_assets.vlm.backends.vllm_backend import VLLMBackend
from askhint_assets.vlm.types import VLMBackend
from support.local_net import free_port
from support.standin_server import StandinServer
from tests import vllm_fake
from tests.hf_cache import add_snapshot

BACKENDS = ("transformers", "openai", "vllm")
OPENAI_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
REAL_VOCAB_ID = "askhint-test/tiny-qwen2_5_vl-real-vocab"
REAL_VOCAB_COMMIT = "0123456789abcdef0123456789abcdef01234567"
YES_NO_CUE = "Yes or No"  # in the per-question template's user text


@dataclass
class BackendCase:
    """One backend under test, with its failure hooks.

    ``fail_marked(marker)``: from now on (this test), the model side fails on requests whose prompt
    contains ``marker``. ``unavailable()``: the same backend with its model missing (no model folder,
    server down, vLLM not installed); ``unavailable_raises``: whether its ``generate`` then raises an
    ``AskHintError`` on purpose (local backends) rather than failing each request.
    """

    name: str
    backend: VLMBackend
    fail_marked: Callable[[str], None]
    unavailable: Callable[[], VLMBackend]
    unavailable_raises: bool


class YesNoStandinServer(StandinServer):
    """The stand-in server, answering per-question (``... Yes or No.``) prompts with ``Yes``/``No``.

    The base server only speaks Normal/Abnormal (plus ``Yes`` as a filler token); here those two answer
    tokens become ``Yes``/``No`` (same probabilities) and the filler ``Yes`` is dropped.
    """

    _YES_NO: ClassVar[dict[str, str]] = {"Abnormal": "Yes", "Normal": "No"}

    def completion(self, body: dict) -> dict:
        out = super().completion(body)
        texts = [p.get("text", "") if isinstance(p, dict) else "" for m in body["messages"] for p in _parts(m)]
        if not any(YES_NO_CUE in t for t in texts):
            return out
        choice = out["choices"][0]
        choice["message"]["content"] = self._YES_NO.get(choice["message"]["content"], choice["message"]["content"])
        for entry in (choice.get("logprobs") or {}).get("content") or []:
            entry.update(self._rename(entry))
            top = [self._rename(t) for t in entry.get("top_logprobs") or [] if t["token"] not in ("Yes", "No")]
            entry["top_logprobs"] = top
        return out

    def _rename(self, entry: dict[str, Any]) -> dict[str, Any]:
        token = self._YES_NO.get(entry["token"], entry["token"])
        return {**entry, "token": token, "bytes": list(token.encode())}


def _parts(message: dict) -> list[Any]:
    content = message.get("content")
    return [{"text": content}] if isinstance(content, str) else list(content or [])


@pytest.fixture(scope="session")
def contract_server() -> Iterator[YesNoStandinServer]:
    """One stand-in server for the suite (reset before each test by the case fixture)."""
    with YesNoStandinServer(model=OPENAI_MODEL) as s:
        yield s


@pytest.fixture(scope="session")
def real_vocab_hf_home(real_vocab_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An HF_HOME whose hub cache holds the real-vocabulary checkpoint as ``REAL_VOCAB_ID``."""
    home = tmp_path_factory.mktemp("hf-home")
    add_snapshot(home / "hub", REAL_VOCAB_ID, real_vocab_model_dir, REAL_VOCAB_COMMIT)
    return home


@pytest.fixture
def offline_hub(real_vocab_hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test reads models from ``real_vocab_hf_home``, offline."""
    monkeypatch.setenv("HF_HOME", str(real_vocab_hf_home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return real_vocab_hf_home


@pytest.fixture(scope="session")
def loaded_transformers(real_vocab_model_dir: Path) -> TransformersBackend:
    """The real-vocabulary model behind ``TransformersBackend``, loaded once (no test may keep changes to it)."""
    b = TransformersBackend(str(real_vocab_model_dir), max_new_tokens=16)
    b._load()  # load the weights once, outside any test's timing
    return b


def _transformers_case(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> BackendCase:
    b: TransformersBackend = request.getfixturevalue("loaded_transformers")

    def fail_marked(marker: str) -> None:
        real = b._model.generate

        def generate(*args: Any, **kw: Any) -> Any:
            rows = [b._tok.decode(row.tolist()) for row in kw["input_ids"]]
            if any(marker in r for r in rows):
                raise RuntimeError("injected model failure (as an out-of-memory error would)")
            return real(*args, **kw)

        monkeypatch.setattr(b._model, "generate", generate)  # undone after the test

    def unavailable() -> VLMBackend:
        return TransformersBackend(str(tmp_path / "no-such-model"))

    return BackendCase("transformers", b, fail_marked, unavailable, unavailable_raises=True)


def _openai_case(request: pytest.FixtureRequest) -> BackendCase:
    server: YesNoStandinServer = request.getfixturevalue("contract_server")
    server.reset()
    request.addfinalizer(server.reset)
    kw: dict[str, Any] = {"max_retries": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.02, "timeout_s": 10.0,
                          "api_key_env": "ASKHINT_CONTRACT_NO_KEY"}  # never set: the stand-in needs no key
    b = OpenAIBackend(OPENAI_MODEL, [server.base_url], **kw)

    def fail_marked(marker: str) -> None:
        server.fault_rule = lambda body: "500" if marker in str(body["messages"]) else None

    def unavailable() -> VLMBackend:
        return OpenAIBackend(OPENAI_MODEL, [f"http://127.0.0.1:{free_port()}/v1"], **kw)

    return BackendCase("openai", b, fail_marked, unavailable, unavailable_raises=False)


def _vllm_case(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> BackendCase:
    request.getfixturevalue("offline_hub")
    fake = vllm_fake.install(monkeypatch)
    b = VLLMBackend(REAL_VOCAB_ID, family="qwen2_5_vl", max_new_tokens=16)

    def engine() -> vllm_fake.FakeLLM:
        llm = b._engine()  # created on first use through `vllm.LLM(**engine_kwargs)`, like the real one
        assert fake.engines == [llm] and llm.model == b.model_path
        return llm

    def fail_marked(marker: str) -> None:
        engine().fail_marker = marker

    def unavailable() -> VLMBackend:
        monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
        return VLLMBackend(REAL_VOCAB_ID)

    return BackendCase("vllm", b, fail_marked, unavailable, unavailable_raises=True)


@pytest.fixture(params=BACKENDS)
def case(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> BackendCase:
    """Each backend in turn (ids ``transformers``, ``openai``, ``vllm``)."""
    if request.param == "transformers":
        return _transformers_case(request, monkeypatch, tmp_path)
    if request.param == "openai":
        return _openai_case(request)
    return _vllm_case(request, monkeypatch)
