"""The executor of ``execution.executor``, and the Celery worker that runs the ``celery`` executor's steps.

``celery``: Dagster's ``dagster-celery`` integration sends each step (a prediction shard, a report) as a
task through the broker; ``askhint worker`` processes on any host take them, one step at a time each (the
solo pool: the step runs in the worker's own process, which may start the frame-decoding processes). Tasks
are acknowledged when they end (``task_acks_late``), so a task whose worker dies (its host or its process)
goes back to the queue after the visibility timeout and another worker runs it again. A step run again
sends no request that was answered and stored before: answers are stored as they come and requests are
locked and cached per request (:mod:`askhint_assets.pipeline.runner`), and prediction rows are upserted by key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dagster as dg

from askhint_assets.errors import InputError
from askhint_assets.settings import CelerySettings, PipelineSettings

if TYPE_CHECKING:
    from celery import Celery

QUEUE = "dagster"  # the queue dagster-celery's app consumes and its executor sends steps to


def executor_for(s: PipelineSettings) -> dg.ExecutorDefinition:
    """``execution.executor``: one process (the default: the model is loaded once), a process per step so
    that independent steps (shards, data sets) run in parallel, or a Celery task per step on the workers of
    any host. ``dagster asset materialize``, ``askhint update``, the UI and the daemon use it;
    ``execute_in_process`` (the tests) does not."""
    if s.execution.executor == "in_process":
        return dg.in_process_executor
    if s.execution.executor == "celery":
        _quiet_step_task_registration()
        return _celery().executor.celery_executor.configured(celery_executor_config(s.execution.celery),
                                                             name="askhint_celery")
    if not s.execution.max_concurrent:
        return dg.multiprocess_executor
    return dg.multiprocess_executor.configured({"max_concurrent": s.execution.max_concurrent},
                                               name="askhint_multiprocess")


def celery_executor_config(c: CelerySettings) -> dict[str, Any]:
    """The ``celery_executor`` config of the settings; the workers' app is built from the same dict."""
    from dagster_celery.defaults import broker_transport_options

    return {
        "broker": c.broker,
        "backend": c.backend or c.broker,
        "config_source": {
            # acknowledged when the task ends: a task whose worker dies is delivered again ...
            "task_acks_late": True,
            # ... also when only the pool process running it dies (a prefork pool; `askhint worker` runs solo)
            "task_reject_on_worker_lost": True,
            # a worker holds no task beyond those it runs: the others take the waiting shards
            "worker_prefetch_multiplier": 1,
            "broker_connection_retry_on_startup": True,
            "broker_transport_options": {
                **broker_transport_options,
                # Redis: an unacknowledged task goes back to the queue after this long; the workers sweep
                # for such tasks every few seconds (kombu's default is every 100 s)
                "visibility_timeout": c.visibility_timeout_s,
                "unacked_restore_interval": max(1, min(10, c.visibility_timeout_s // 5)),
                "unacked_restore_throttle": 1,
            },
        },
    }


def worker_app(s: PipelineSettings) -> Celery:
    """The Celery app an ``askhint worker`` runs: dagster-celery's app and step task, configured exactly
    as the settings' executor sends (same broker, backend and delivery rules)."""
    dc = _celery()
    config = celery_executor_config(s.execution.celery)
    app = dc.make_app.make_app(dc.executor.CeleryExecutor.for_cli(**config).app_args())
    dc.tasks.create_task(app)
    return app


def check_broker(s: PipelineSettings) -> Celery:
    """The settings' worker app, once its broker has answered; else an error naming the broker."""
    app = worker_app(s)
    broker = s.execution.celery.broker
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=2, interval_start=0.5)
    except Exception as e:  # kombu raises the transport's own errors
        raise InputError(f"{broker}: cannot reach the broker ({e})", path=None if s.source == "defaults" else s.source,
                         field="execution.celery.broker") from e
    return app


def listening_workers(app: Celery, timeout_s: float = 2.0) -> list[str]:
    """The names of the workers that answer a ping on the app's broker within ``timeout_s``."""
    return sorted(name for reply in app.control.ping(timeout=timeout_s) or [] for name in reply)


def _quiet_step_task_registration() -> None:
    """dagster-celery registers its step task on the run's app again for every step it submits, a new
    closure over the same code each time; Celery (5.7+) warns once per run that the name is taken. The
    task already registered is the same code, so that warning is noise here: only it is silenced."""
    import warnings

    try:
        from celery.exceptions import DuplicateTaskNameWarning
    except ImportError:  # older Celery: no such warning
        return
    warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered",
                            category=DuplicateTaskNameWarning)


def _celery() -> Any:
    """The ``dagster_celery`` package, or an error saying how to install it."""
    try:
        import dagster_celery.executor
        import dagster_celery.make_app
        import dagster_celery.tasks
    except ImportError as e:
        raise InputError(
            f"celery needs the celery extra (pip install 'askhint[celery]'): {e}",
            field="execution.executor",
        ) from e
    return dagster_celery
