"""Small helpers for what assets return: markdown tables, inline PNG images, versioned outputs."""

from __future__ import annotations

import base64
import warnings
from collections.abc import Sequence
from typing import Any

import dagster as dg


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def md_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, limit: int = 200) -> str:
    """A markdown table of ``rows`` (the first ``limit``), columns in first-seen order."""
    if not rows:
        return "_(no rows)_"
    cols = list(columns or dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"\n_{len(rows) - limit} more rows in DuckDB_")
    return "\n".join(lines)


def image_md(png: bytes, alt: str) -> str:
    """A PNG inlined as a markdown image (the Dagster UI renders data URIs)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def versioned_output(value: Any, *, data_version: dg.DataVersion, metadata: dict | None = None) -> dg.Output:
    """An asset's output with its content-hash data version. Dagster marks ``Output(data_version=...)`` beta
    and warns on every call; that warning is expected here and silenced here only, so the CLI's output
    says what was materialized instead of repeating it per asset."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning, message=r".*`data_version`")
        return dg.Output(value, data_version=data_version, metadata=metadata)
