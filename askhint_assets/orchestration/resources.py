"""Dagster resources: the DuckDB store, the text embedder and the VLM backend (through the backend registry)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from askhint_assets import paths
from askhint_assets.settings import SMOKE_MODEL, ModelSettings, PipelineSettings
from askhint_assets.store import Store
from askhint_assets.vlm.backends import registry
from askhint_assets.vlm.types import VLMBackend


class StoreResource(dg.ConfigurableResource):
    """The DuckDB system of record (default ``$ASKHINT_HOME/askhint.duckdb``)."""

    db_path: str = ""
    lock_timeout_s: float = 120.0

    def store(self) -> Store:
        return Store(self.db_path or paths.db_path(), lock_timeout_s=self.lock_timeout_s)


class EmbedderResource(dg.ConfigurableResource):
    """A sentence-transformers model from a local path (default: the bundled all-MiniLM-L6-v2)."""

    model_path: str = ""
    device: str = "cpu"

    _embedder: Any = PrivateAttr(default=None)

    def embedder(self):
        """The embedder, built once (the model itself loads on the first ``embed``)."""
        if self._embedder is None:
            from askhint_assets.questions.embed import Embedder

            self._embedder = Embedder(self.model_path or None, device=self.device)
        return self._embedder


class VLMResource(dg.ConfigurableResource):
    """The video VLM behind one interface, built by the backend registry
    (:mod:`askhint_assets.vlm.backends.registry`): ``transformers`` (local folder), ``openai`` (any
    OpenAI-compatible server), ``vllm`` (offline engine, optional extra), or any name registered there
    (a test registers its fake backend under a name of its own and sets ``backend`` to it).
    ``model_path="smoke"`` resolves through the demo plug-in's hook: the tiny smoke-test model (the committed
    fixture, or the shared model cache)."""

    backend: str = "transformers"
    model_path: str = SMOKE_MODEL
    revision: str | None = None  # a Hub id's revision (branch, tag or commit)
    video_input: str = "auto"  # openai backend: frames as one video part (auto: video for qwen2_5_vl) or images
    family: str = "qwen2_5_vl"
    device: str = "cpu"
    dtype: str = "float32"
    batch_size: int = 4
    max_new_tokens: int = 64
    base_urls: list[str] = Field(default_factory=list)
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 4
    video_timing: str = "per_request"
    max_model_len: int | None = None

    _backends: dict = PrivateAttr(default_factory=dict)

    @classmethod
    def from_settings(cls, m: ModelSettings) -> VLMResource:
        values = asdict(m)
        return cls(model_path=values.pop("path"), **{**values, "base_urls": list(m.base_urls)})

    def settings(self) -> ModelSettings:
        """The resource's fields as the (validated) model settings; the core builds backends from these."""
        return ModelSettings(path=self.model_path, **self.model_dump(exclude={"model_path"}))

    @property
    def is_smoke(self) -> bool:
        return self.model_path == SMOKE_MODEL

    def resolved_model_path(self) -> str:
        """The folder a local backend loads (``smoke`` resolved through its hook), or the served name."""
        return registry.model_folder(self.settings())

    def get_backend(self, shard: tuple[int, int] | None = None) -> VLMBackend:
        """The backend (:func:`askhint_assets.vlm.backends.registry.backend_for`), built once per run and set of
        servers (the model is loaded lazily on the first request)."""
        m = self.settings()
        key = tuple(registry.servers_for(m, shard))
        if key not in self._backends:
            self._backends[key] = registry.backend_for(m, shard)
        return self._backends[key]

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Close the backends that hold an engine (the in-process vLLM's engine-core process), so a step
        that failed still lets its process exit."""
        for backend in self._backends.values():
            close = getattr(backend, "close", None)
            if callable(close):
                close()
        self._backends.clear()


def resources_for(s: PipelineSettings) -> dict[str, dg.ConfigurableResource]:
    return {
        "store": StoreResource(),
        "embedder": EmbedderResource(model_path=s.questions.embedder or ""),
        "vlm": VLMResource.from_settings(s.model),
    }


def model_label(r: VLMResource) -> str:
    """How a model is named in tables: the folder/served name, marked when it is the smoke model."""
    return "smoke-qwen2_5_vl (smoke test)" if r.is_smoke else Path(r.model_path).name or r.model_path
