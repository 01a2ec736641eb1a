"""Dagster resources: the DuckDB store, the text embedder and the VLM backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from askhint_assets import paths
from askhint_assets.settings import SMOKE_MODEL, ModelSettings, PipelineSettings
from askhint_assets.store import Store
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
    """The video VLM behind one interface: transformers (local folder), openai (any
    OpenAI-compatible server) or vllm (offline engine, optional extra). ``model_path="smoke"``
    uses the tiny smoke-test model (the committed fixture, or the shared model cache)."""

    backend: str = "transformers"
    model_path: str = SMOKE_MODEL
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

    _backends: dict = PrivateAttr(default_factory=dict)

    @classmethod
    def from_settings(cls, m: ModelSettings) -> VLMResource:
        return cls(
            backend=m.backend,
            model_path=m.path,
            family=m.family,
            device=m.device,
            dtype=m.dtype,
            batch_size=m.batch_size,
            max_new_tokens=m.max_new_tokens,
            base_urls=list(m.base_urls),
            api_key_env=m.api_key_env,
            max_concurrency=m.max_concurrency,
            timeout_s=m.timeout_s,
            max_retries=m.max_retries,
        )

    @property
    def is_smoke(self) -> bool:
        return self.model_path == SMOKE_MODEL

    def resolved_model_path(self) -> str:
        if not self.is_smoke:
            return self.model_path
        from askhint_assets.demo.smoke_model import ensure_smoke_model

        return str(ensure_smoke_model())

    def get_backend(self, shard: tuple[int, int] | None = None) -> VLMBackend:
        """The backend, built once per run (the model is loaded lazily on the first request). For a
        shard ``(index, count)`` of an openai backend with several servers: a client pinned to the
        shard's servers (:func:`askhint_assets.sharding.urls_for_shard`); the cache key is unchanged."""
        urls = list(self.base_urls)
        if shard is not None and self.backend == "openai" and len(urls) > 1:
            from askhint_assets.sharding import urls_for_shard

            urls = urls_for_shard(urls, *shard)
        key = tuple(urls)
        if key not in self._backends:
            self._backends[key] = build_backend(self if urls == list(self.base_urls) else
                                                self.model_copy(update={"base_urls": urls}))
        return self._backends[key]


def build_backend(r: VLMResource) -> VLMBackend:
    """Instantiate the configured backend; heavy imports happen only for the one selected."""
    if r.backend == "transformers":
        from askhint_assets.vlm.backends.transformers_backend import TransformersBackend

        return TransformersBackend(
            r.resolved_model_path(),
            family=r.family,
            device=r.device,
            dtype=r.dtype,
            batch_size=r.batch_size,
            max_new_tokens=r.max_new_tokens,
        )
    if r.backend == "openai":
        from askhint_assets.vlm.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(
            model=r.model_path,
            base_urls=list(r.base_urls),
            api_key_env=r.api_key_env,
            family=r.family,
            max_concurrency=r.max_concurrency,
            timeout_s=r.timeout_s,
            max_retries=r.max_retries,
            max_new_tokens=r.max_new_tokens,
        )
    if r.backend == "vllm":
        from askhint_assets.vlm.backends.vllm_backend import VLLMBackend

        return VLLMBackend(r.resolved_model_path(), family=r.family, max_new_tokens=r.max_new_tokens)
    raise ValueError(f"unknown backend {r.backend!r}: expected transformers, openai or vllm")


def resources_for(s: PipelineSettings) -> dict[str, dg.ConfigurableResource]:
    return {
        "store": StoreResource(),
        "embedder": EmbedderResource(model_path=s.questions.embedder or ""),
        "vlm": VLMResource.from_settings(s.model),
    }


def model_label(r: VLMResource) -> str:
    """How a model is named in tables: the folder/served name, marked when it is the smoke model."""
    return "smoke-qwen2_5_vl (smoke test)" if r.is_smoke else Path(r.model_path).name or r.model_path
