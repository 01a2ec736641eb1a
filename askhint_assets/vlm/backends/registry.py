"""The backend registry: backend name -> lazily imported class, and hooks that resolve a model path.

In the manner of lmms-eval's lazy model registry: an entry names its class as ``"module:Class"`` and the
module is imported only when that backend is built, so listing or validating names never loads torch,
vLLM or an HTTP client. Settings validation, the CLI and the Dagster resource read the names from here.

Other backends (a plug-in, a test's fake) are added with :func:`register_backend`; a name registered at
run time exists only in the process that registered it.

A *model-path hook* turns a symbolic ``model.path`` into a local folder for backends that load weights
themselves; the demo plug-in registers the ``smoke`` hook (build + train the smoke-test model) when
:mod:`askhint_assets.plugins` loads it, which happens on the first path with no hook, so this package never
imports ``askhint_assets.demo``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from askhint_assets.errors import InputError
from askhint_assets.plugins import load_plugins

if TYPE_CHECKING:
    from askhint_assets.settings import ModelSettings
    from askhint_assets.vlm.types import VLMBackend

BackendFactory = Callable[..., "VLMBackend"]
"""Called as ``factory(model, **options)``: ``model`` is the folder or served name, ``options`` the entry's."""

PathHook = Callable[[Mapping[str, Any]], str]
"""Called with the model settings (a mapping); returns the local folder that stands for the symbolic path."""


@dataclass(frozen=True)
class BackendEntry:
    """How to build one backend from the model settings.

    ``target``: ``"module:Class"`` (imported on first use) or a factory. ``options``: the model settings
    passed on as keyword arguments. ``local_model``: ``model.path`` is a folder the backend loads (so
    model-path hooks apply). ``needs_base_urls``: it talks to servers (``model.base_urls`` required; one
    client per shard may be pinned to a subset of them). ``families``: the model families it runs
    (``None``: every family in :data:`askhint_assets.vlm.families.FAMILIES`).
    """

    name: str
    target: str | BackendFactory
    options: tuple[str, ...] = ()
    local_model: bool = True
    needs_base_urls: bool = False
    families: tuple[str, ...] | None = None

    def factory(self) -> BackendFactory:
        """The class or factory, importing its module now if the target is a ``"module:Class"`` path."""
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


_BACKENDS: dict[str, BackendEntry] = {}
_PATH_HOOKS: dict[str, PathHook] = {}


def register_backend(
    name: str,
    target: str | BackendFactory,
    *,
    options: tuple[str, ...] = (),
    local_model: bool = True,
    needs_base_urls: bool = False,
    families: tuple[str, ...] | None = None,
    replace: bool = False,
) -> BackendEntry:
    """Add a backend under ``name`` (``replace=True`` to redefine one); returns its entry."""
    if name in _BACKENDS and not replace:
        raise ValueError(f"backend {name!r} is already registered ({_BACKENDS[name].target!r})")
    entry = BackendEntry(name, target, tuple(options), local_model, needs_base_urls, families)
    _BACKENDS[name] = entry
    return entry


def backend_names() -> tuple[str, ...]:
    """Every backend name this process knows, built-in ones first."""
    return tuple(_BACKENDS)


def get_backend_entry(name: str) -> BackendEntry:
    """The entry of ``name``; an :class:`InputError` on ``model.backend`` listing the known names if none."""
    try:
        return _BACKENDS[name]
    except KeyError:
        raise InputError(f"unknown backend {name!r}; registered: {', '.join(_BACKENDS)}",
                         field="model.backend") from None


def register_model_path(name: str, hook: PathHook, *, replace: bool = False) -> None:
    """Make ``model.path: <name>`` resolve through ``hook`` for backends that load a local model."""
    if name in _PATH_HOOKS and not replace and _PATH_HOOKS[name] is not hook:
        raise ValueError(f"model path {name!r} already has a hook")
    _PATH_HOOKS[name] = hook


def resolve_model_path(path: str, settings: Mapping[str, Any] | None = None) -> str:
    """``path`` itself, or the folder its hook returns (the hook may build the model first). A path with no
    hook loads the plug-ins first, which may register one."""
    if path not in _PATH_HOOKS:
        load_plugins()
    hook = _PATH_HOOKS.get(path)
    return path if hook is None else str(hook(settings or {}))


def build_backend(name: str, model: str, **settings: Any) -> VLMBackend:
    """Build backend ``name`` for ``model`` (folder, symbolic path or served name). ``settings`` are the
    model settings; each entry takes only its ``options``. Heavy imports happen here, for this one."""
    entry = get_backend_entry(name)
    if entry.local_model:
        model = resolve_model_path(model, settings)
    return entry.factory()(model, **{k: settings[k] for k in entry.options if k in settings})


def _options(m: ModelSettings) -> dict[str, Any]:
    """The model settings as backends take them (everything but ``backend`` and ``path``)."""
    from dataclasses import asdict

    return {k: v for k, v in asdict(m).items() if k not in ("backend", "path")}


def model_folder(m: ModelSettings) -> str:
    """The folder a local backend of ``m`` loads (a symbolic path resolved through its hook), or the served name."""
    if not get_backend_entry(m.backend).local_model:
        return m.path
    return resolve_model_path(m.path, _options(m))


def backend_for(m: ModelSettings, shard: tuple[int, int] | None = None) -> VLMBackend:
    """The backend of the model settings ``m``: the one place a backend is built from settings (the Dagster
    resource, the CLI and the benchmarks all come here). For a shard ``(index, count)`` of a server backend
    with several servers, a client pinned to the shard's servers
    (:func:`askhint_assets.sharding.urls_for_shard`); the cache key does not depend on it."""
    return build_backend(m.backend, m.path, **{**_options(m), "base_urls": servers_for(m, shard)})


def servers_for(m: ModelSettings, shard: tuple[int, int] | None = None) -> list[str]:
    """The servers a backend of ``m`` talks to: all of ``model.base_urls``, or a shard's share of them."""
    from askhint_assets.sharding import urls_for_shard

    urls = list(m.base_urls)
    if shard is not None and get_backend_entry(m.backend).needs_base_urls and len(urls) > 1:
        return urls_for_shard(urls, *shard)
    return urls


_PKG = "askhint_assets.vlm.backends"
register_backend(
    "transformers", f"{_PKG}.transformers_backend:TransformersBackend",
    options=("family", "device", "dtype", "batch_size", "max_new_tokens", "revision"), families=("qwen2_5_vl",),
)
register_backend(
    "openai", f"{_PKG}.openai_backend:OpenAIBackend",
    options=("base_urls", "api_key_env", "family", "max_concurrency", "timeout_s", "max_retries", "max_new_tokens",
             "video_input", "video_timing"),
    local_model=False, needs_base_urls=True,
)
register_backend("vllm", f"{_PKG}.vllm_backend:VLLMBackend",
                 options=("family", "max_new_tokens", "revision", "max_model_len"))
BUILTIN_BACKENDS: tuple[str, ...] = backend_names()
"""The backends shipped with askhint: ``transformers`` (local folder), ``openai`` (OpenAI-compatible
servers) and ``vllm`` (offline engine, optional extra)."""
