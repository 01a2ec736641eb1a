"""Past one host: prediction shards as Celery tasks (``execution.executor: celery``) through a Redis broker
(Debian's ``redis-server``, started here on 127.0.0.1) and two ``askhint worker`` processes. The worker
running a shard is killed (SIGKILL to its whole process group) while that shard's second batch of requests
is held at the stand-in server; the broker delivers the task again to the other worker, which finishes it
without sending any request that was answered before, and the run succeeds with no duplicate row. Then
``askhint update`` runs what is left through the remaining worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster import DagsterEventType

from askhint_assets.sharding import shard_of
from askhint_assets.store import Store
from support import fault_harness as harness
from support.local_net import free_port

pytestmark = pytest.mark.slow  # a broker, two workers and a multi-step Dagster run
BATCH = 4  # the model's batch_size in the harness settings
SELECT = ("askhint_predictions_shard_0", "askhint_predictions_shard_1", "askhint_predictions")
VISIBILITY_S = 12  # a dead worker's task is delivered again after this long; every step here takes a few seconds


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private ``redis-server`` on a free port of 127.0.0.1 (no persistence), stopped after the test."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server not found: `make install` installs Debian's redis-server (apt-get)")
    port = free_port()
    log = tmp_path / "redis.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                 "--dir", str(tmp_path)], stdout=out, stderr=subprocess.STDOUT)
    import redis

    def up() -> bool:
        with contextlib.suppress(redis.exceptions.ConnectionError):
            return bool(redis.Redis(port=port, socket_timeout=1).ping())
        return False

    try:
        harness.wait_for("redis-server to answer PING", up, 30, (log,))
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class HoldAfterFirstBatch:
    """A fault rule: answers the first ``BATCH`` scoring requests, then holds every later one until
    :meth:`release` (they are then dropped, never answered), and afterwards answers all. Records the key
    of every request it lets through to be answered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen = 0
        self.holding = True
        self.held = threading.Event()  # a request is being held
        self.released = threading.Event()
        self.answered: list[str] = []

    def __call__(self, body: dict) -> str | None:
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self.lock:
            self.seen += 1
            hold = self.holding and self.seen > BATCH
            if not hold:
                self.answered.append(key)
        if not hold:
            return None
        self.held.set()
        self.released.wait(timeout=300)
        return "close"

    def release(self) -> None:
        with self.lock:
            self.holding = False
        self.released.set()


def _step_starts(home: harness.Home, step: str) -> list[int]:
    """The pids that started ``step`` in the latest run, in order."""
    with dg.DagsterInstance.from_config(home.env["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs(limit=1)
        if not runs:
            return []
        return [e.dagster_event.pid for e in instance.all_logs(runs[0].run_id, of_type=DagsterEventType.STEP_START)
                if e.dagster_event.step_key == step]


def _pong(app, names: set[str]) -> bool:
    replies = app.control.ping(timeout=1.0) or []
    return names <= {name.split("@")[0] for reply in replies for name in reply}


def test_a_killed_worker_loses_nothing(tmp_path: Path, redis_url: str) -> None:
    a, b = harness.start_server(api_key=harness.API_KEY), harness.start_server(api_key=harness.API_KEY)
    workers: dict[str, subprocess.Popen] = {}
    run, rule = None, HoldAfterFirstBatch()
    try:
        home = harness.make_home(tmp_path / "home", a.base_url, model={"base_urls": [a.base_url, b.base_url]})
        celery = {"broker": redis_url, "visibility_timeout_s": VISIBILITY_S}
        # frames decoded in the shard steps, by a decoding process each step starts on its worker
        execution = {"executor": "celery", "shards": 2, "celery": celery, "decode": "overlapped", "decode_workers": 1}
        home.write_settings({**home.settings(), "execution": execution})
        harness.prepare(home)  # everything before the model (frames: only planned), in this process
        per_shard = [sum(shard_of(v, 2) == k for v in harness.SUBSET) for k in range(2)]
        victim = max(range(2), key=per_shard.__getitem__)  # the shard with more videos: more than one batch
        assert per_shard[victim] > BATCH, per_shard
        server = (a, b)[victim]  # with two shards and two servers, shard k sends to server k only
        server.fault_rule = rule

        logs = {n: tmp_path / f"worker_{n}.log" for n in ("w1", "w2")}
        for n, log in logs.items():
            workers[n] = harness.spawn(home, log, "worker", "--name", n)
        from askhint_assets.orchestration.executors import worker_app
        from askhint_assets.settings_file import load_settings

        app = worker_app(load_settings(home.config))
        harness.wait_for("both workers to answer a ping", lambda: _pong(app, set(workers)), 120, tuple(logs.values()))

        run_log = tmp_path / "materialize.log"
        cmd = [str(harness.BIN / "dagster"), "asset", "materialize", "-m", "askhint_assets.definitions",
               "--select", ",".join(SELECT)]
        with open(run_log, "wb") as out:
            run = subprocess.Popen(cmd, cwd=harness.ROOT, env={**os.environ, **home.env}, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        step = SELECT[victim]
        harness.wait_for(f"{step}'s second batch to reach the server", rule.held.is_set, 180, (run_log, *logs.values()))
        answered_before = list(rule.answered)
        assert len(answered_before) == BATCH
        # the first batch's answers are stored (read between the other shard's writes: the store's retries)
        assert Store(home.db).scalar("SELECT count(DISTINCT request_hash) FROM model_calls WHERE ok") >= BATCH

        # the worker running the shard (in its own process: the solo pool), and its decoding process: the
        # worker's process group (each worker starts its own)
        (pid,) = _step_starts(home, step)
        (victim_name,) = [n for n, w in workers.items() if os.getpgid(pid) == w.pid]
        harness.kill(workers[victim_name])
        rule.release()
        assert run.wait(timeout=240) == 0, run_log.read_text()[-5000:]
        assert "must have a unique name" not in run_log.read_text()  # dagster-celery's re-registration: quiet

        starts = _step_starts(home, step)
        assert len(starts) == 2 and starts[0] == pid, starts  # delivered again ...
        (survivor,) = [w for n, w in workers.items() if n != victim_name]
        assert os.getpgid(starts[1]) == survivor.pid  # ... to the other worker
        # no request answered before the kill was sent again, and none was answered twice
        assert len(rule.answered) == len(set(rule.answered)), "a request was answered twice"
        assert not set(answered_before) & set(rule.answered[BATCH:])
        assert harness.duplicates(home) == 0
        n = len(harness.SUBSET)
        assert home.scalar("SELECT count(DISTINCT video_id) FROM predictions WHERE template = 'askhint'") == n
        assert home.scalar("SELECT count(*) FROM predictions WHERE template = 'askhint'") == n

        # `askhint update` runs what is still missing (the abstract prompt's shards, the report) on the workers
        update = subprocess.run(harness.cli("update"), cwd=harness.ROOT, env={**os.environ, **home.env},
                                capture_output=True, text=True, timeout=300)
        assert update.returncode == 0, update.stdout[-3000:] + update.stderr[-3000:]
        survivor_name = next(n for n in workers if n != victim_name)
        assert f"Celery workers listening on {redis_url}: {survivor_name}@" in update.stdout, update.stdout
        assert "materialize askhint_predictions" not in update.stdout  # not stale: not run again
        assert "materialize evaluation_report" in update.stdout
        assert len(rule.answered) == len(set(rule.answered)) and harness.duplicates(home) == 0
        assert home.query("SELECT DISTINCT granularity FROM eval_reports WHERE source = 'pipeline'") == [("video",)]
    finally:
        rule.release()
        if run is not None and run.poll() is None:
            harness.kill(run)
        for w in workers.values():
            harness.kill(w)
        a.stop()
        b.stop()
