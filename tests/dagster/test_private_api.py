"""Dagster's private API is used in one module only (`askhint update`'s stale-status resolver), and a
Dagster upgrade that changes it fails here with a message saying what to fix."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[2]
PRIVATE = re.compile(r"^\s*(from\s+dagster\._|import\s+dagster\._)|dagster_internal_init|get_attributes_dict", re.M)
ALLOWED = {Path("askhint_assets/orchestration/update.py")}


def test_no_module_but_update_uses_private_dagster_api():
    offenders = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "askhint_assets").rglob("*.py"))
        if p.relative_to(ROOT) not in ALLOWED and PRIVATE.search(p.read_text())
    ]
    assert not offenders, f"private Dagster API outside update.py: {offenders}"


def test_the_private_api_update_relies_on_still_exists():
    try:
        from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
        from dagster._core.definitions.assets.job.asset_job import IMPLICIT_ASSET_JOB_NAME
        from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
        from dagster._core.definitions.reconstruct import ReconstructableRepository
        from dagster._time import get_current_datetime
    except ImportError as e:
        pytest.fail(f"dagster {dg.__version__} moved private API that askhint_assets/orchestration/update.py "
                    f"imports ({e}); update its imports, or pin dagster to the last version that had them")
    missing = [
        name for obj, name in (
            (CachingStaleStatusResolver, "get_status"), (CachingStaleStatusResolver, "get_stale_root_causes"),
            (StaleStatus, "STALE"), (StaleStatus, "MISSING"), (ReconstructableRepository, "for_module"),
        ) if not hasattr(obj, name)
    ]
    assert not missing, f"dagster {dg.__version__} lacks {missing}, which orchestration/update.py calls"
    assert AssetGraphView and TemporalContext and IMPLICIT_ASSET_JOB_NAME and get_current_datetime
