"""Scale-out on one machine: prediction shards as separate assets, run by the multiprocess executor
through ``dagster asset materialize`` (the path the UI, schedules and a deployment use), each shard
pinned to one of two stand-in servers; a dead server stops only its shards, which resume alone.
"""

from __future__ import annotations

import os
import subprocess

import dagster as dg
import pytest
from dagster import DagsterEventType

from askhint_assets.sharding import shard_of, urls_for_shard
from tests.reliability import harness

SHARD_STEPS = ("askhint_predictions_shard_0", "askhint_predictions_shard_1")
PREDICTION_ASSETS = (
    *SHARD_STEPS, "abstract_predictions_shard_0", "abstract_predictions_shard_1", "askhint_predictions",
    "abstract_predictions", "evaluation_report",
)


def _materialize(home: harness.Home, assets: tuple[str, ...]) -> subprocess.CompletedProcess:
    """``dagster asset materialize`` of ``assets`` in a subprocess (the executor of the settings)."""
    cmd = [str(harness.BIN / "dagster"), "asset", "materialize", "-m", "askhint_assets.definitions",
           "--select", ",".join(assets)]
    return subprocess.run(cmd, cwd=harness.ROOT, env={**os.environ, **home.env}, capture_output=True, text=True,
                          timeout=600)


def _steps(home: harness.Home) -> dict[str, dict]:
    """Per step of the latest run: pid, start and end timestamps, success."""
    with dg.DagsterInstance.from_config(home.env["DAGSTER_HOME"]) as instance:
        run = instance.get_runs(limit=1)[0]
        out: dict[str, dict] = {}
        for entry in instance.all_logs(run.run_id):
            ev = entry.dagster_event
            if ev is None or ev.step_key is None:
                continue
            step = out.setdefault(ev.step_key, {})
            if ev.event_type == DagsterEventType.STEP_START:
                step.update(pid=ev.pid, start=entry.timestamp)
            elif ev.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                step.update(end=entry.timestamp, ok=ev.event_type == DagsterEventType.STEP_SUCCESS)
        return out


@pytest.fixture
def servers():
    a, b = harness.start_server(api_key=harness.API_KEY), harness.start_server(api_key=harness.API_KEY)
    a.delay_s = b.delay_s = 0.3  # every shard takes a few seconds, so parallel shards overlap
    yield a, b
    a.stop()
    b.stop()


def test_pure_shard_assignment_is_stable_and_covers_every_server():
    ids = [f"video_{i}" for i in range(200)]
    assert [shard_of(v, 3) for v in ids] == [shard_of(v, 3) for v in ids]
    assert {shard_of(v, 3) for v in ids} == {0, 1, 2}
    urls = ["u0", "u1", "u2", "u3"]
    assert [urls_for_shard(urls, k, 2) for k in range(2)] == [["u0", "u2"], ["u1", "u3"]]
    assert [urls_for_shard(urls[:2], k, 3) for k in range(3)] == [["u0"], ["u1"], ["u0"]]
    with pytest.raises(ValueError):
        shard_of("x", 0)


def test_shards_run_in_parallel_processes_and_resume_alone(tmp_path, servers):
    a, b = servers
    home = harness.make_home(tmp_path / "home", a.base_url, model={"base_urls": [a.base_url, b.base_url]})
    execution = {"executor": "multiprocess", "shards": 2, "max_concurrent": 4}
    home.write_settings({**home.settings(), "execution": execution})
    harness.prepare(home)  # prompt chain, index and frames in this process; the CLI run below is the model part
    per_shard = [sum(shard_of(v, 2) == k for v in harness.SUBSET) for k in range(2)]
    assert min(per_shard) > 0, per_shard  # the subset puts videos in both shards

    # 1. server b answers 500 to everything: the shards pinned to it fail, the others finish, in parallel
    b.fault_rule = lambda body: "500"
    first = _materialize(home, PREDICTION_ASSETS)
    assert first.returncode != 0
    steps = _steps(home)
    assert steps["askhint_predictions_shard_0"]["ok"] and steps["abstract_predictions_shard_0"]["ok"]
    assert not steps["askhint_predictions_shard_1"]["ok"] and not steps["abstract_predictions_shard_1"]["ok"]
    assert not steps.get("evaluation_report", {}).get("ok")  # its inputs failed: skipped
    s0, s1 = (steps[k] for k in SHARD_STEPS)
    assert s0["pid"] != s1["pid"]  # two processes ...
    assert s0["start"] < s1["end"] and s1["start"] < s0["end"]  # ... at the same time
    assert a.request_count > 0 and b.request_count > 0
    assert home.scalar("SELECT count(DISTINCT video_id) FROM predictions WHERE template = 'askhint'") == per_shard[0]

    # 2. b is back: `askhint update` (stale or missing only, with the settings' multiprocess executor) reruns
    #    shard 1 of both templates, in parallel processes, and what follows; not shard 0
    b.fault_rule = None
    sent_to_a, sent_to_b = a.request_count, b.request_count
    with dg.DagsterInstance.from_config(home.env["DAGSTER_HOME"]) as instance:
        run_0 = instance.get_latest_materialization_event(dg.AssetKey("askhint_predictions_shard_0")).run_id
    update = subprocess.run(harness.cli("update"), cwd=harness.ROOT, env={**os.environ, **home.env},
                            capture_output=True, text=True, timeout=600)
    assert update.returncode == 0, update.stdout[-2000:] + update.stderr[-3000:]
    assert "askhint_predictions_shard_0" not in update.stdout  # not stale: not materialized again
    steps = _steps(home)
    r0, r1 = steps["askhint_predictions_shard_1"], steps["abstract_predictions_shard_1"]
    assert r0["ok"] and r1["ok"] and r0["pid"] != r1["pid"] and "askhint_predictions_shard_0" not in steps
    assert a.request_count == sent_to_a and b.request_count > sent_to_b
    with dg.DagsterInstance.from_config(home.env["DAGSTER_HOME"]) as instance:
        assert instance.get_latest_materialization_event(dg.AssetKey("askhint_predictions_shard_0")).run_id == run_0
        assert instance.get_latest_materialization_event(dg.AssetKey("evaluation_report")) is not None
    assert harness.duplicates(home) == 0
    n = len(harness.SUBSET)
    assert home.scalar("SELECT count(DISTINCT video_id) FROM predictions WHERE template = 'askhint'") == n
    assert home.query("SELECT DISTINCT granularity FROM eval_reports WHERE source = 'pipeline'") == [("video",)]
