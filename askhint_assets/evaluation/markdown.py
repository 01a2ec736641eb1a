"""Markdown tables of plain rows (asset metadata, reports)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


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
