"""askhint: ASK-Hint video anomaly detection as versioned Dagster assets in DuckDB.

``defs`` (the code location's Definitions) is built on first access, so the plain-Python core can be
imported without loading Dagster.
"""

from typing import Any

__all__ = ["defs"]


def __getattr__(name: str) -> Any:
    if name == "defs":
        from askhint_assets.definitions import defs

        return defs
    raise AttributeError(f"module 'askhint_assets' has no attribute {name!r}")
