"""Model backends behind one interface (:class:`askhint_assets.vlm.types.VLMBackend`), named in a lazy registry.

Importing this package imports no backend module: :mod:`.registry` maps each name to ``"module:Class"``
and imports it when that backend is built.
"""

from askhint_assets.vlm.backends.registry import (
    BUILTIN_BACKENDS,
    BackendEntry,
    backend_names,
    build_backend,
    get_backend_entry,
    register_backend,
    register_model_path,
    resolve_model_path,
)

__all__ = [
    "BUILTIN_BACKENDS",
    "BackendEntry",
    "backend_names",
    "build_backend",
    "get_backend_entry",
    "register_backend",
    "register_model_path",
    "resolve_model_path",
]
