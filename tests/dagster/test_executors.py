"""The executor of each ``execution.executor`` choice, and the Celery worker's app: the worker must consume
with exactly the delivery rules the executor sends with (late acknowledgement, redelivery after the
visibility timeout), and ``askhint worker`` refuses settings it cannot serve, saying why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from askhint_assets.orchestration.executors import QUEUE, celery_executor_config, executor_for, worker_app
from askhint_assets.settings import CelerySettings, ExecutionSettings, PipelineSettings
from support.local_net import free_port

ROOT = Path(__file__).resolve().parents[2]


def _settings(**execution) -> PipelineSettings:
    return PipelineSettings(execution=ExecutionSettings(**execution))


def test_each_choice_names_its_executor():
    assert executor_for(_settings()) is dg.in_process_executor
    assert executor_for(_settings(executor="multiprocess")) is dg.multiprocess_executor
    assert executor_for(_settings(executor="multiprocess", max_concurrent=3)).name == "askhint_multiprocess"
    celery = executor_for(_settings(executor="celery"))
    assert celery.name == "askhint_celery"


def test_the_worker_consumes_with_the_executors_delivery_rules():
    c = CelerySettings(broker="redis://127.0.0.1:6399/2", visibility_timeout_s=40)
    config = celery_executor_config(c)
    assert config["backend"] == c.broker  # default: results through the broker's Redis
    app = worker_app(PipelineSettings(execution=ExecutionSettings(executor="celery", celery=c)))
    conf = app.conf
    assert conf.broker_url == c.broker and conf.result_backend == c.broker
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    options = conf.broker_transport_options
    assert options["visibility_timeout"] == 40 and options["unacked_restore_interval"] == 8
    assert [q.name for q in conf.task_queues] == [QUEUE]
    assert "execute_plan" in app.tasks  # dagster-celery's step task, registered on this app
    for key, value in config["config_source"].items():
        assert conf[key] == value, key


def _askhint(tmp_path: Path, settings: str, command: str = "worker") -> subprocess.CompletedProcess:
    cfg = tmp_path / "askhint.yaml"
    cfg.write_text(settings)
    env = {**os.environ, "ASKHINT_CONFIG": str(cfg), "ASKHINT_HOME": str(tmp_path / "home"),
           "DAGSTER_HOME": str(tmp_path / "home" / "dagster")}
    return subprocess.run([str(Path(sys.executable).parent / "askhint"), command], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_worker_refuses_settings_without_the_celery_executor(tmp_path):
    out = _askhint(tmp_path, "execution: {executor: multiprocess}\n")
    assert out.returncode == 2, out.stderr
    assert "execution.executor is 'multiprocess'" in out.stderr and str(tmp_path / "askhint.yaml") in out.stderr


@pytest.mark.slow  # two connection attempts
@pytest.mark.parametrize("command", ["worker", "update"])
def test_worker_and_update_name_a_broker_they_cannot_reach(tmp_path, command):
    broker = f"redis://127.0.0.1:{free_port()}/0"
    out = _askhint(tmp_path, f"execution:\n  executor: celery\n  celery: {{broker: '{broker}'}}\n", command)
    assert out.returncode == 2, out.stderr
    where = f"{tmp_path / 'askhint.yaml'}: execution.celery.broker: {broker}: cannot reach the broker"
    assert where in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
