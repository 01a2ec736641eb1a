"""askhint: ASK-Hint video anomaly detection as versioned Dagster assets in DuckDB."""

from askhint_assets.definitions import defs

__all__ = ["defs"]
