"""Scale-out on one machine: prediction shards as separate assets, run by the multiprocess executor
through ``dagster asset materialize`` (the path the UI, schedules and a deployment use), each shard
pinned to one of two stand-in servers; a dead server stops only its shards, which resume alone.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable

import dagster as dg
import pytest
from dagster import DagsterEventType

from askhint_assets.sharding import shard_of, urls_for_shard
from support import fault_harness as harness

pytestmark = pytest.mark.slow  # a multi-process Dagster run
SHARD_STEPS = ("askhint_predictions_shard_0", "askhint_predictions_shard_1")
PREDICTION_ASSETS = (
    *SHARD_STEPS, "abstract_predictions_shard_0", "abstract_predictions_shard_1", "askhint_predictions",
    "abstract_predictions", "evaluation_report",
)
BARRIER_S = 120.0  # how long a server's first request waits for the other server's
CLIENT_TIMEOUT_S = 3 * BARRIER_S  # the backend's request timeout in this test: above the barrier's


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
    yield a, b
    a.stop()
    b.stop()


def _meeting(replies: dict[str, str | None]) -> tuple[dict[str, bool], dict[str, Callable[[dict], str | None]]]:
    """Fault rules that hold each server's first request at a two-party barrier (an event, no timing).

    ``met[name]`` becomes True when that server's first request met the other server's first request, i.e.
    both were in flight at once (the shard steps ran at the same time), False when the barrier timed out
    (the steps ran one after the other). The barrier's timeout (:data:`BARRIER_S`) is below the client's
    request timeout (:data:`CLIENT_TIMEOUT_S`): a held request is never given up and retried, so a step
    cannot finish, and let the next one start, while its first request waits. Run one after the other, the
    first step's request waits out the barrier; the timeouts only bound how long a broken run takes to fail.
    """
    barrier, lock, met = threading.Barrier(2, timeout=BARRIER_S), threading.Lock(), {}

    def rule_for(name: str) -> Callable[[dict], str | None]:
        def rule(body: dict) -> str | None:
            with lock:
                first = name not in met
                met.setdefault(name, False)
            if first:
                try:
                    barrier.wait()
                    met[name] = True
                except threading.BrokenBarrierError:
                    pass
            return replies[name]
        return rule

    return met, {name: rule_for(name) for name in replies}


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
    model = {"base_urls": [a.base_url, b.base_url], "timeout_s": CLIENT_TIMEOUT_S}
    home = harness.make_home(tmp_path / "home", a.base_url, model=model)
    # as configs/two_datasets_vllm_servers.yaml: frames decoded in the shard steps, each step process starting
    # its own decoding process
    execution = {"executor": "multiprocess", "shards": 2, "max_concurrent": 4, "decode": "overlapped",
                 "decode_workers": 1}
    home.write_settings({**home.settings(), "execution": execution})
    harness.prepare(home)  # prompt chain, index and frame plan in this process; the CLI run below decodes and asks
    per_shard = [sum(shard_of(v, 2) == k for v in harness.SUBSET) for k in range(2)]
    assert min(per_shard) > 0, per_shard  # the subset puts videos in both shards

    # 1. server b answers 500 to everything: the shards pinned to it fail, the others finish, in parallel
    met, rules = _meeting({"a": None, "b": "500"})
    a.fault_rule, b.fault_rule = rules["a"], rules["b"]
    first = _materialize(home, PREDICTION_ASSETS)
    assert first.returncode != 0
    steps = _steps(home)
    assert steps["askhint_predictions_shard_0"]["ok"] and steps["abstract_predictions_shard_0"]["ok"]
    assert not steps["askhint_predictions_shard_1"]["ok"] and not steps["abstract_predictions_shard_1"]["ok"]
    assert not steps.get("evaluation_report", {}).get("ok")  # its inputs failed: skipped
    s0, s1 = (steps[k] for k in SHARD_STEPS)
    assert s0["pid"] != s1["pid"]  # two processes ...
    assert met == {"a": True, "b": True}, met  # ... with requests in flight to both servers at once
    assert a.request_count > 0 and b.request_count > 0
    assert home.scalar("SELECT count(DISTINCT video_id) FROM predictions WHERE template = 'askhint'") == per_shard[0]

    # 2. b is back: `askhint update` (stale or missing only, with the settings' multiprocess executor) reruns
    #    shard 1 of both templates, in parallel processes, and what follows; not shard 0
    a.fault_rule = b.fault_rule = None
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
