"""The project's dagster.yaml routes the ``askhint_assets`` loggers into Dagster's run log."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[2]


def test_askhint_loggers_reach_the_run_log(tmp_path):
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")

    @dg.asset
    def retries() -> int:
        logging.getLogger("askhint_assets.vlm.backends.openai_backend").warning("server 0 answered 503; retry 1")
        return 1

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        result = dg.materialize([retries], instance=instance)
        messages = [r.user_message for r in instance.all_logs(result.run_id)]
    assert any("server 0 answered 503; retry 1" in m for m in messages)
