"""Plug-ins: packages that add data sets and models through the registries, loaded once per process.

The one place that names a plug-in. Each entry is a module with a ``register()`` that calls the registries'
``register_*`` functions (``askhint_assets.demo.hooks``: the ``smoke`` model path and the generated demo data
sets). The registries call :func:`load_plugins` when a name is not registered, so no module imports a
plug-in, and importing the core loads none.
"""

from __future__ import annotations

import importlib
import threading

PLUGINS: tuple[str, ...] = ("askhint_assets.demo.hooks",)

_lock = threading.Lock()
_loaded = False


def load_plugins() -> None:
    """Import every plug-in in :data:`PLUGINS` and call its ``register()`` (the first call only)."""
    global _loaded
    with _lock:
        if _loaded:
            return
        for name in PLUGINS:
            importlib.import_module(name).register()
        _loaded = True
