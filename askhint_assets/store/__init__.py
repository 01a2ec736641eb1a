"""DuckDB, the system of record: the connection and schema (:mod:`.db`) and, one module per table group,
the queries each stage needs (:mod:`.prompts`, :mod:`.videos`, :mod:`.predictions`). SQL lives here only."""

from askhint_assets.store.db import SCHEMA, SCHEMA_VERSION, Store, StoreError, now

__all__ = ["SCHEMA", "SCHEMA_VERSION", "Store", "StoreError", "now"]
