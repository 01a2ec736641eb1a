"""Small helpers for what assets return: inline PNG images, versioned outputs."""

from __future__ import annotations

import base64
import warnings
from typing import Any

import dagster as dg


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
