"""Prompt lifecycle automation: named automation conditions, the prompt-store sensor, the nightly schedule.

How an edit travels:

1. ``prompt_store_sensor`` (every 30 s) hashes the prompt set's YAML files; when the hash differs from
   its cursor (JSON: the hash and each file's hash, to name the changed files) it reports an
   ``AssetObservation`` of ``prompt_store`` carrying the hash as data version.
2. The automation conditions below, evaluated by Dagster's ``default_automation_condition_sensor``,
   request the cheap prompt chain (class prompts → embeddings → clusters → Q*, and the templates) in one
   run. The VLM assets are requested only once a dependency has *recorded* a new data version, so a
   prompt edit that leaves Q* unchanged stops at ``guiding_questions`` and costs no model request.
3. ``nightly_reevaluation`` (02:00 UTC) materializes whatever is stale or missing (settings changes
   show up as new code versions); the conditions carry the new data versions further down.

Both sensors start STOPPED: switch on ``prompt_store_sensor`` and ``default_automation_condition_sensor``
(and the schedule) in the UI under Automation, with the daemon running (``dagster dev`` runs it; a
deployment needs ``dagster-daemon run``).
"""

from __future__ import annotations

import json

import dagster as dg

from askhint_assets.hashing import hash_file, hash_tree
from askhint_assets.orchestration.chain import ChainNames
from askhint_assets.settings import PipelineSettings

AC = dg.AutomationCondition

# The event tag Dagster reads an observation's data version from (dagster._core.definitions.data_version
# .DATA_VERSION_TAG; not exported by dagster 1.13). Observable source assets write the same tag.
DATA_VERSION_TAG = "dagster/data_version"

_NEW_DATA_VERSION_WITHOUT_ROOT = (AC.data_version_changed() & ~AC.executed_with_root_target()).with_label(
    "new_data_version_without_root"
)


def on_new_data_version(
    label: str, *, settled: bool = False, ignore: dg.AssetSelection | None = None
) -> dg.AutomationCondition:
    """``eager()`` with data versions: true when a dependency recorded a *new data version* since the last
    tick (a rerun that reproduces its data version does not count), or when the asset became missing.

    ``settled=False`` also counts dependencies requested in the same tick, so a chain runs as one;
    ``settled=True`` waits until the dependency's run has finished and its blocking checks passed.
    ``ignore``: dependencies whose updates never trigger (they must still not be missing)."""
    trigger = _NEW_DATA_VERSION_WITHOUT_ROOT if settled else _NEW_DATA_VERSION_WITHOUT_ROOT | AC.will_be_requested()
    deps = AC.any_deps_match(trigger)
    if ignore is not None:
        deps = deps.ignore(ignore)
    cond = (
        AC.in_latest_time_window()
        & (AC.newly_missing() | deps).since_last_handled()
        & ~AC.any_deps_missing()
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
    )
    if settled:
        cond = cond & AC.all_deps_blocking_checks_passed()
    return cond.with_label(label)


ON_NEW_DATA_VERSION = on_new_data_version("on_new_data_version")
"""For cheap assets (the prompt chain): runs together with the upstream that triggers it."""

ON_SETTLED_NEW_DATA_VERSION = on_new_data_version("on_settled_new_data_version", settled=True)
"""For expensive assets (frame decoding, the VLM): only after an upstream recorded a new data version and
passed its blocking checks, so an edit that leaves Q* as it was requests no model call."""

def on_new_predictions(dataset_index: dg.AssetKey) -> dg.AutomationCondition:
    """For ``evaluation_report``: follows the predictions (in the same run when they are requested); a new
    ``dataset_index`` (the chain's key given) alone does not trigger it, as the predictions of the new
    videos do not exist yet."""
    return on_new_data_version("on_new_predictions", ignore=dg.AssetSelection.assets(dataset_index))


def _latest_observed_version(instance: dg.DagsterInstance, key: dg.AssetKey) -> tuple[str | None, dict]:
    records = instance.fetch_observations(key, limit=1).records
    if not records or records[0].asset_observation is None:
        return None, {}
    obs = records[0].asset_observation
    return obs.data_version, {k: v.value for k, v in obs.metadata.items()}


def _parse_cursor(raw: str | None) -> dict | None:
    try:
        cursor = json.loads(raw) if raw else None
    except ValueError:
        return None
    return cursor if isinstance(cursor, dict) and "version" in cursor and "files" in cursor else None


def build_prompt_store_sensor(
    s: PipelineSettings, names: ChainNames = ChainNames(), minimum_interval_seconds: int = 30
) -> dg.SensorDefinition:
    """The sensor that turns an edit of the prompt set's YAML files into a new data version of the chain's
    ``prompt_store`` (``prompt_store_sensor``, or ``<prompt_set>_prompt_store_sensor`` for a prefixed chain)."""
    prompt_dir = s.prompt_dir()
    key = names.key("prompt_store")
    name = f"{names.sensor_prefix}prompt_store_sensor"

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        description=f"Hashes the YAML files in `{prompt_dir}`; when the hash changes it records an observation "
        f"of `{key.to_user_string()}` with the hash as its data version (the automation conditions take it "
        "from there).",
    )
    def prompt_store_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        if not prompt_dir.is_dir():
            return dg.SkipReason(f"{prompt_dir}: no such folder")
        version = hash_tree(prompt_dir, "*.yaml")
        files = {p.name: hash_file(p) for p in sorted(prompt_dir.glob("*.yaml"))}
        cursor = json.dumps({"version": version, "files": files}, sort_keys=True)
        previous = _parse_cursor(context.cursor)
        if previous is None:  # a new sensor: compare with what the instance last recorded
            observed, meta = _latest_observed_version(context.instance, key)
            prev_files = {k.removeprefix("file:"): v for k, v in meta.items() if k.startswith("file:")}
            previous = {"version": observed, "files": prev_files}
        if previous["version"] == version:
            return dg.SensorResult(skip_reason=f"prompt store unchanged ({version})", cursor=cursor)
        changed = sorted(f for f in files.keys() | previous["files"].keys() if files.get(f) != previous["files"].get(f))
        observation = dg.AssetObservation(
            asset_key=key,
            tags={DATA_VERSION_TAG: version},
            description=f"prompt files changed: {', '.join(changed)}" if previous["files"] else "prompt files changed",
            metadata={
                "previous_version": previous["version"] or "-",
                "changed_files": dg.MetadataValue.json(changed) if previous["files"] else "unknown",
                **{f"file:{f}": h for f, h in files.items()},
            },
        )
        return dg.SensorResult(asset_events=[observation], cursor=cursor)

    return prompt_store_sensor


@dg.schedule(
    name="nightly_reevaluation",
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    target=dg.AssetSelection.all(),
    description="02:00 UTC: materialize every stale or missing asset of the graph in one run (stale status "
    "is not transitive; the automation conditions carry the new data versions further).",
)
def nightly_reevaluation(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """One run request narrowed by the scheduler to the stale or missing assets of the whole graph."""
    return dg.RunRequest(
        run_key=f"nightly-{context.scheduled_execution_time:%Y-%m-%d}" if context.scheduled_execution_time else None,
        stale_assets_only=True,
        tags={"askhint/trigger": "nightly_reevaluation"},
    )
