"""Operator commands: ``askhint update`` (stale-only materialization), ``askhint report`` and ``askhint worker``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from askhint_assets import paths
from askhint_assets.errors import AskHintError


def _instance():
    """The persistent Dagster instance: ``$DAGSTER_HOME``, default ``$ASKHINT_HOME/dagster``."""
    import os
    import shutil

    import dagster as dg

    home = os.environ.setdefault("DAGSTER_HOME", str(paths.dagster_home()))
    paths.writable_dir(Path(home))  # a read-only or misplaced ASKHINT_HOME: say which folder, no traceback
    cfg = paths.PROJECT_ROOT / "dagster.yaml"
    if cfg.exists() and not os.path.exists(os.path.join(home, "dagster.yaml")):
        shutil.copy(cfg, os.path.join(home, "dagster.yaml"))
    return dg.DagsterInstance.get()


@click.command("update")
def update_cmd() -> None:
    """Materialize only the assets that are stale or missing, and say why (with the settings' executor)."""
    import dagster as dg

    from askhint_assets.definitions import defs
    from askhint_assets.orchestration.update import update, with_executor
    from askhint_assets.settings_file import load_settings

    # the executor of the settings: shards in parallel processes (multiprocess) or on Celery workers (celery)
    s = load_settings()
    run = with_executor() if s.execution.executor != "in_process" else None
    if s.execution.executor == "celery":
        _say_workers(s)
    with _instance() as instance:
        try:
            result = update(defs, instance, log=lambda m: click.echo(m), run=run)
        except dg.Failure as e:
            raise AskHintError(e.description or str(e)) from e
    n = len(result.materialized)
    observed = ", ".join(result.observed) or "nothing"
    click.echo(f"observed {observed}; materialized {n} asset(s) in {len(result.rounds)} run(s)")


def _say_workers(s) -> None:
    """Before a Celery run: fail if the broker is unreachable, warn if no worker listens (steps then wait)."""
    from askhint_assets.orchestration.executors import check_broker, listening_workers

    names = listening_workers(check_broker(s))
    if names:
        click.echo(f"Celery workers listening on {s.execution.celery.broker}: {', '.join(names)}")
    else:
        click.echo(f"warning: no Celery worker answered on {s.execution.celery.broker}; the steps wait in the "
                   "queue until one is free (`askhint worker`; a worker running a step answers when it is done)",
                   err=True)


@click.command("worker")
@click.option("--name", "-n", default=None, help="Worker name (default askhint-<pid>); '@<host>' is appended.")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
def worker_cmd(name: str | None, loglevel: str) -> None:
    """Take steps (prediction shards) from the broker of `execution.executor: celery` until stopped.

    One step at a time, in this process: start one worker per step to run at once, on as many hosts as
    you like. Every host needs the same settings file, ASKHINT_HOME and DAGSTER_HOME (shared storage).
    A worker that dies loses nothing: its step is delivered again."""
    import os

    from askhint_assets.orchestration.executors import QUEUE, check_broker
    from askhint_assets.settings_file import load_settings

    s = load_settings()
    if s.execution.executor != "celery":
        raise AskHintError(f"{s.source}: execution.executor is {s.execution.executor!r}; a worker takes steps "
                           "only when it is 'celery' (and `execution.celery.broker` names the broker)")
    app = check_broker(s)
    _instance().dispose()  # sets DAGSTER_HOME (default $ASKHINT_HOME/dagster) as `askhint update` does
    # the solo pool runs each step in this (non-daemonic) process, so a step may start its own processes (the
    # frame decoding pool); Celery's prefork pool runs tasks in daemonic children, which may not
    app.worker_main(["worker", "--pool", "solo", "--queues", QUEUE, "--loglevel", loglevel,
                     "--hostname", f"{name or f'askhint-{os.getpid()}'}@%h"])


@click.command("observe")
def observe_cmd() -> None:
    """Observe the source assets (the prompt files), recording their current data versions."""
    from askhint_assets.definitions import defs
    from askhint_assets.orchestration.update import observe_sources

    with _instance() as instance:
        keys = observe_sources(instance, defs)
    click.echo(f"observed {', '.join(keys) or 'nothing'}")


@click.command("report")
def report_cmd() -> None:
    """Print the latest evaluation report of each configured data set, and where things are."""
    from askhint_assets.pipeline.report import latest_reports
    from askhint_assets.settings_file import load_settings

    found = latest_reports([one.dataset.name for one in load_settings().per_dataset()])
    for text in found.texts:
        click.echo(text)
    click.echo(f"DuckDB: {found.db}")
    click.echo(f"  predictions rows: {found.prediction_rows}; model requests ever sent: {found.requests_sent} in "
               f"{found.runs} run(s)")
    click.echo(f"Report file(s): {', '.join(str(p) for p in found.files)}")
    click.echo("UI: `make ui`, then open http://127.0.0.1:3000 (asset groups prompts, data, inference, evaluation)")


def run_cli(main: click.Group) -> None:
    """Run ``main``; user-caused errors print ``error: ...`` and exit 2, without a traceback."""
    try:
        rv = main(standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except AskHintError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
