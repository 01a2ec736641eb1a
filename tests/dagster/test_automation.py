"""Prompt lifecycle with a real (temporary) Dagster instance and the fake VLM: the sensor turns a prompt
edit into a new data version, the automation conditions request the prompt chain, and the VLM assets
only when Q* really changed. Also the nightly schedule, the definitions and lineage on real rows.

One materialized home per module (the demo data set, ~40 s); the story fixture then walks through two
edits, evaluating the automation conditions the way the daemon's ticks would.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from askhint_assets import paths
from askhint_assets.orchestration.automation import (
    DATA_VERSION_TAG,
    ON_NEW_DATA_VERSION,
    ON_SETTLED_NEW_DATA_VERSION,
    nightly_reevaluation,
    on_new_predictions,
)
from askhint_assets.orchestration.resources import VLMResource
from askhint_assets.store import Store
from support.demo_data import seed_demo_data
from tests.fakes import FakeBackend, registered_backend

ROOT = Path(__file__).resolve().parents[2]
CHAIN = {"class_prompts", "inference_templates", "question_embeddings", "question_clusters", "guiding_questions"}


@dataclass
class Lab:
    """The definitions, the instance and the automation cursor, stepped tick by tick."""

    defs: dg.Definitions
    instance: dg.DagsterInstance
    home: Path
    cursor: object = None
    sensor_cursor: str | None = None

    def tick(self) -> set[str]:
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        graph = self.defs.resolve_asset_graph()
        return {k.to_user_string() for k in graph.get_all_asset_keys() if result.get_num_requested(k)}

    def run(self, keys: set[str]) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_implicit_global_asset_job_def()
        res = job.execute_in_process(instance=self.instance, asset_selection=[dg.AssetKey(k) for k in sorted(keys)])
        assert res.success
        return res

    def sense(self) -> dg.SensorResult | dg.SkipReason:
        sensor = self.defs.resolve_sensor_def("prompt_store_sensor")
        ctx = dg.build_sensor_context(instance=self.instance, cursor=self.sensor_cursor)
        result = sensor(ctx)
        if isinstance(result, dg.SensorResult) and result.cursor:
            self.sensor_cursor = result.cursor
        return result

    def question_sets(self) -> list[str]:
        """The Q* versions recorded so far (not the sets the prompt-count ablation recorded)."""
        return Store(paths.db_path()).query(
            "SELECT question_set FROM question_sets WHERE method <> 'ablation' ORDER BY created_at"
        )["question_set"].to_list()


ALL_CHECKS = {
    "guiding_questions:qstar_size_within_bounds", "question_clusters:clusters_cover_every_class",
    "askhint_predictions:every_video_predicted", "abstract_predictions:every_video_predicted",
    "askhint_predictions:parse_failure_rate", "askhint_predictions:scored_from_logprobs",
    "evaluation_report:askhint_not_below_abstract",
}


def _check_results(res: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        f"{e.asset_check_evaluation_data.asset_key.to_user_string()}:{e.asset_check_evaluation_data.check_name}":
        e.asset_check_evaluation_data
        for e in res.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    h = tmp_path_factory.mktemp("askhint_automation")
    shutil.copytree(ROOT / "prompts_store", h / "prompts_store")
    (h / "dagster").mkdir()
    seed_demo_data(h)
    with pytest.MonkeyPatch.context() as mp, registered_backend("automation_fake", FakeBackend(threshold=100)) as name:
        mp.setenv("ASKHINT_HOME", str(h))
        mp.setenv("DAGSTER_HOME", str(h / "dagster"))
        mp.setenv("ASKHINT_PROMPTS_STORE", str(h / "prompts_store"))
        from askhint_assets.definitions import build_defs

        defs = build_defs(resources={"vlm": VLMResource(backend=name)})  # the demo, the fake model
        with dg.DagsterInstance.get() as instance:
            yield Lab(defs=defs, instance=instance, home=h)


def _edit_question(home: Path, in_qstar: bool, qstar: list[str]) -> tuple[str, str]:
    path = home / "prompts_store" / "ucf_crime" / "class_questions.yaml"
    text = path.read_text()
    questions = [q for qs in yaml.safe_load(text).values() for q in qs]
    old = next(q for q in questions if (q in qstar) == in_qstar)
    new = old[:-1] + " at all?"
    path.write_text(text.replace(old, new, 1))
    return old, new


@pytest.fixture(scope="module")
def story(lab: Lab) -> dict:
    """Materialize all, then: comment-only edit (Q* unchanged), then an edit of a question in Q*."""
    s: dict = {}
    s["full"] = lab.run({k.to_user_string() for k in lab.defs.resolve_asset_graph().get_all_asset_keys()})
    s["checks_full"] = _check_results(s["full"])
    s["tick0"] = lab.tick()
    s["sense0"] = lab.sense()  # no cursor yet: compares with the observation of the full run
    qs0 = lab.question_sets()

    # 1. an edit that changes the files but not the parsed prompts: Q* cannot change
    settings_yaml = lab.home / "prompts_store" / "ucf_crime" / "settings.yaml"
    settings_yaml.write_text(settings_yaml.read_text() + "# reviewed\n")
    s["sense1"] = lab.sense()
    s["sense1_again"] = lab.sense()
    for obs in s["sense1"].asset_events:
        lab.instance.report_runless_asset_event(obs)
    s["tick1"] = lab.tick()
    lab.run(s["tick1"])
    s["tick2"] = lab.tick()
    s["qs_after_comment"] = lab.question_sets()

    # 2. reword a question of Q*: Q* changes, the VLM assets follow one tick later
    qstar = Store(paths.db_path()).scalar("SELECT questions FROM question_sets WHERE question_set = ?", [qs0[-1]])
    s["edit"] = _edit_question(lab.home, in_qstar=True, qstar=qstar)
    s["sense3"] = lab.sense()
    for obs in s["sense3"].asset_events:
        lab.instance.report_runless_asset_event(obs)
    s["tick3"] = lab.tick()
    lab.run(s["tick3"])
    s["tick4"] = lab.tick()
    s["run4"] = lab.run(s["tick4"]) if s["tick4"] else None
    s["tick5"] = lab.tick()
    s["qs0"], s["qs_final"] = qs0, lab.question_sets()
    return s


@pytest.mark.slow  # a full materialization
def test_full_materialization_passes_every_blocking_check(story):
    checks = story["checks_full"]
    assert set(checks) == ALL_CHECKS
    failed = {k: c.description for k, c in checks.items() if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR}
    assert not failed
    warn = checks["evaluation_report:askhint_not_below_abstract"]
    assert warn.severity == dg.AssetCheckSeverity.WARN


@pytest.mark.slow  # a full materialization
def test_sensor_reports_a_new_data_version_only_when_the_files_change(story, lab):
    assert not story["sense0"].asset_events  # same files as the full run's observation
    events = story["sense1"].asset_events
    assert len(events) == 1 and events[0].asset_key == dg.AssetKey("prompt_store")
    assert events[0].tags[DATA_VERSION_TAG] == events[0].data_version == json.loads(story["sense1"].cursor)["version"]
    assert events[0].data_version != json.loads(story["sense0"].cursor)["version"]
    assert "settings.yaml" in events[0].description
    assert not story["sense1_again"].asset_events  # unchanged since the cursor
    version = lab.instance.fetch_observations(dg.AssetKey("prompt_store"), limit=1).records[0]
    assert version.asset_observation.data_version == json.loads(story["sense3"].cursor)["version"]
    assert "class_questions.yaml" in story["sense3"].asset_events[0].description


@pytest.mark.slow  # a full materialization
def test_nothing_is_requested_while_nothing_changes(story):
    assert story["tick0"] == set()


@pytest.mark.slow  # a full materialization
def test_a_prompt_edit_requests_the_prompt_chain_and_never_the_data(story):
    for tick in ("tick1", "tick3"):
        assert story[tick] == CHAIN, tick
        assert not {"sampled_frames", "dataset_index"} & story[tick]


@pytest.mark.slow  # a full materialization
def test_an_unchanged_qstar_requests_nothing_further(story):
    assert story["qs_after_comment"] == story["qs0"]
    assert story["tick2"] == set()


@pytest.mark.slow  # a full materialization
def test_a_changed_qstar_requests_predictions_and_report_then_settles(story):
    old, new = story["edit"]
    assert len(story["qs_final"]) == len(story["qs0"]) + 1
    assert story["tick4"] == {"askhint_predictions", "evaluation_report"}
    assert story["tick5"] == set()
    latest = Store(paths.db_path()).scalar(
        "SELECT questions FROM question_sets WHERE question_set = ?", [story["qs_final"][-1]]
    )
    assert new in latest and old not in latest
    checks = _check_results(story["run4"])
    assert checks["askhint_predictions:every_video_predicted"].passed


@pytest.mark.slow  # a full materialization
def test_lineage_diff_and_history_on_the_materialized_home(story):
    from askhint_assets.cli import main
    from askhint_assets.store.lineage import diff, history, lineage

    store = Store(paths.db_path())
    a, b = story["qs0"][-1], story["qs_final"][-1]
    d = lineage(store, dataset="demo")
    assert d["report"]["template"] == "askhint" and d["question_set"]["question_set"] == b
    assert d["class_prompts"]["version"] == d["question_set"]["prompt_version"]
    assert d["class_prompts"]["ancestors"], "the edited version has a parent"
    assert d["plan"]["plan"].startswith("pl-") and d["model"]["answered_by"][0]["backend"] == "fake"
    assert d["baseline"] is not None and d["templates"]["version"].startswith("tp-")
    assert sum(len(c["questions"]) for c in d["clusters"]["clusters"]) > len(d["question_set"]["questions"])

    dd = diff(store, a, b)
    assert story["edit"][0] in dd["only_in_a"] and story["edit"][1] in dd["only_in_b"]
    assert dd["auc"] and all(p["same_videos"] and p["difference"] is not None for p in dd["auc"])

    ablation = store.query("SELECT report_id, question_set FROM eval_reports WHERE source LIKE 'ablation:%' "
                           "ORDER BY created_at DESC LIMIT 1").to_dicts()
    assert ablation, "the story's home has prompt-count ablation reports"
    traced = lineage(store, report_id=ablation[0]["report_id"])  # recorded, so it traces to its questions
    assert traced["question_set"]["question_set"] == ablation[0]["question_set"]
    assert traced["question_set"]["questions"] and traced["clusters"] is not None

    hist = history(store, "demo")
    assert [h["question_set"] for h in hist] == [a, b]
    assert all(h["frame_auc"] is not None for h in hist)

    runner = CliRunner()
    out = runner.invoke(main, ["lineage", "--dataset", "demo"])
    assert out.exit_code == 0, out.output
    assert b in out.output and "  fingerprint {" in out.output and "evaluation settings {" in out.output
    assert "not traceable" not in out.output  # model and evaluation settings are stored with the rows
    out = runner.invoke(main, ["diff", a[:8], b, "--json"])
    assert out.exit_code == 0, out.output
    assert '"only_in_b"' in out.output


def test_schedule_requests_a_stale_only_run_of_the_whole_graph():
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 1, 2, 2, 0, tzinfo=UTC))
    request = nightly_reevaluation(ctx)
    assert isinstance(request, dg.RunRequest) and request.stale_assets_only
    assert request.asset_selection is None  # the scheduler narrows the whole target to stale/missing
    assert nightly_reevaluation.cron_schedule == "0 2 * * *"
    assert nightly_reevaluation.execution_timezone == "UTC"


def test_definitions_validate_and_carry_the_conditions():
    from askhint_assets.definitions import build_defs

    defs = build_defs()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    cond = {k.to_user_string(): graph.get(k).automation_condition for k in graph.get_all_asset_keys()}
    assert cond["askhint_predictions"] == ON_SETTLED_NEW_DATA_VERSION
    assert cond["guiding_questions"] == ON_NEW_DATA_VERSION
    assert cond["evaluation_report"] == on_new_predictions(dg.AssetKey("dataset_index"))
    assert cond["dataset_index"] is None
    assert defs.resolve_sensor_def("prompt_store_sensor").minimum_interval_seconds == 30
    assert {f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys} == ALL_CHECKS

