"""Materialize only what is stale or missing (Dagster has no CLI flag for it), and say why.

One round: observe the prompt files (a new data version if they changed), ask Dagster's stale-status
resolver which assets are STALE or MISSING, materialize those in one run. Stale status is not
transitive (a child becomes stale only after its parent got a new data version), so rounds repeat
until nothing is stale; an asset whose new data version equals the old one stops the cascade.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._time import get_current_datetime


@dataclass
class UpdateResult:
    rounds: list[list[tuple[str, str]]] = field(default_factory=list)  # per round: (asset, why)
    observed: list[str] = field(default_factory=list)

    @property
    def materialized(self) -> list[str]:
        return [k for r in self.rounds for k, _ in r]


def _resolver(instance: dg.DagsterInstance, defs: dg.Definitions) -> CachingStaleStatusResolver:
    graph = defs.resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    return CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)


def _why(resolver: CachingStaleStatusResolver, key: dg.AssetKey, status: StaleStatus) -> str:
    if status == StaleStatus.MISSING:
        return "never materialized"
    causes = resolver.get_stale_root_causes(key)
    return "; ".join(f"{c.asset_key.to_user_string()}: {c.reason}" for c in causes) or "stale"


def stale_assets(instance: dg.DagsterInstance, defs: dg.Definitions) -> list[tuple[dg.AssetKey, str]]:
    """Materializable assets that are STALE or MISSING, with the reason, in topological order."""
    graph = defs.resolve_asset_graph()
    resolver = _resolver(instance, defs)
    out = []
    for key in graph.toposorted_asset_keys:
        if not graph.get(key).is_materializable:
            continue
        status = resolver.get_status(key)
        if status in (StaleStatus.STALE, StaleStatus.MISSING):
            out.append((key, _why(resolver, key, status)))
    return out


def observe_sources(instance: dg.DagsterInstance, defs: dg.Definitions) -> list[str]:
    """Observe every observable source asset (e.g. the prompt files) and return their keys."""
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if graph.get(k).is_observable and not graph.get(k).is_materializable]
    if keys:
        job = defs.resolve_implicit_global_asset_job_def()
        job.execute_in_process(instance=instance, asset_selection=keys)
    return [k.to_user_string() for k in keys]


def failure_message(run: dg.ExecuteInProcessResult) -> str:
    """The first failed step's own error (an exception an asset raised is wrapped by Dagster in a
    ``DagsterExecutionStepExecutionError`` whose message says only which op failed)."""
    failed = [e for e in run.all_events if e.is_step_failure]
    if not failed:
        return "see the Dagster logs"
    err = failed[0].event_specific_data.error
    while err.cause is not None and err.cls_name == "DagsterExecutionStepExecutionError":
        err = err.cause
    return err.message.strip()


# runs a selection of assets: (success, failure message, run id)
RunSelection = Callable[[dg.DagsterInstance, list[dg.AssetKey]], tuple[bool, str, str]]


def in_process(defs: dg.Definitions) -> RunSelection:
    """Run the selection in this process (whatever executor the definitions name)."""
    job = defs.resolve_implicit_global_asset_job_def()

    def run(instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> tuple[bool, str, str]:
        res = job.execute_in_process(instance=instance, asset_selection=keys, raise_on_error=False)
        return res.success, "" if res.success else failure_message(res), res.run_id

    return run


def with_executor(module: str = "askhint_assets.definitions", attr: str = "defs") -> RunSelection:
    """Run the selection with the executor of ``module.attr`` (e.g. one process per shard), the way
    ``dagster asset materialize -m module`` does: step processes rebuild the definitions from the module,
    so they see the same ``ASKHINT_CONFIG``."""
    import os

    from dagster._core.definitions.assets.job.asset_job import IMPLICIT_ASSET_JOB_NAME
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    recon = ReconstructableRepository.for_module(module, attr, working_directory=os.getcwd())
    job = recon.get_reconstructable_job(IMPLICIT_ASSET_JOB_NAME)

    def run(instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> tuple[bool, str, str]:
        with dg.execute_job(job, instance, asset_selection=keys) as res:
            return res.success, "" if res.success else failure_message(res), res.run_id

    return run


def update(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    log: Callable[[str], None] = print,
    max_rounds: int = 12,
    run: RunSelection | None = None,
) -> UpdateResult:
    """Observe sources, then materialize stale/missing assets round by round until none is left
    (each round one run, by ``run``: default in this process)."""
    result = UpdateResult(observed=observe_sources(instance, defs))
    run = run or in_process(defs)
    for _ in range(max_rounds):
        todo = stale_assets(instance, defs)
        if not todo:
            break
        for key, why in todo:
            log(f"materialize {key.to_user_string()}: {why}")
        ok, message, run_id = run(instance, [k for k, _ in todo])
        result.rounds.append([(k.to_user_string(), why) for k, why in todo])
        if not ok:
            raise dg.Failure(f"update run {run_id} failed: {message}")
    else:
        raise dg.Failure(f"still stale after {max_rounds} rounds; is an asset non-deterministic?")
    if not result.rounds:
        log("everything is up to date: nothing materialized")
    return result
