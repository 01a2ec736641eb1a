"""Several data sets in one code location (``datasets:``): a UCF-Crime-layout and an XD-Violence-layout
data set, each with its own asset chain under its name, each reading its own prompt set's Q*.

One materialized home per module (two small generated data sets, the fake VLM); then a prompt edit of
one prompt set must make stale only that prompt set's chain and the data set that uses it.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
import yaml

from askhint_assets import paths
from askhint_assets.demo.datasets import generate_demo, generate_demo_xd
from askhint_assets.errors import InputError
from askhint_assets.orchestration.resources import VLMResource
from askhint_assets.orchestration.update import observe_sources, stale_assets, update
from askhint_assets.settings_file import load_settings
from askhint_assets.store import Store
from tests.fakes import FakeBackend, registered_backend

ROOT = Path(__file__).resolve().parents[2]


def _config(path: Path, ucf: Path, xd: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "datasets": [
            {"name": "ucf_small", "kind": "ucf_crime", "root": str(ucf)},
            {"name": "xd_small", "kind": "xd_violence", "root": str(xd), "prompt_set": "xd_violence"},
        ],
        "scoring": {"granularities": ["video", "window"]},
        "questions": {"ablation_sizes": []},
    }))
    return path


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    h = tmp_path_factory.mktemp("askhint_multi")
    data = tmp_path_factory.mktemp("multi_data")
    ucf = generate_demo(data / "ucf", n_anomalous_per_class=1, n_normal=4, seconds=(4, 6))
    xd = generate_demo_xd(data / "xd", n_per_kind=1, n_normal=3, seconds=(4, 6))
    shutil.copytree(ROOT / "prompts_store", h / "prompts_store")
    (h / "dagster").mkdir()
    fake = FakeBackend(threshold=100)
    with pytest.MonkeyPatch.context() as mp, registered_backend("multi_fake", fake):
        mp.setenv("ASKHINT_HOME", str(h))
        mp.setenv("DAGSTER_HOME", str(h / "dagster"))
        mp.setenv("ASKHINT_PROMPTS_STORE", str(h / "prompts_store"))
        from askhint_assets.definitions import build_defs

        s = load_settings(_config(h / "askhint.yaml", ucf, xd))
        defs = build_defs(s, resources={"vlm": VLMResource.from_settings(replace(s.model, backend="multi_fake"))})
        with dg.DagsterInstance.get() as instance:
            first = update(defs, instance, log=lambda m: None)
            yield {"defs": defs, "instance": instance, "home": h, "fake": fake, "first": first}


@pytest.mark.slow  # a full materialization
def test_each_data_set_has_its_own_chain_on_its_own_prompt_set(multi):
    graph = multi["defs"].resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for ps in ("ucf_crime", "xd_violence"):
        assert {f"{ps}/prompt_store", f"{ps}/guiding_questions", f"{ps}/inference_templates"} <= keys
    for ds in ("ucf_small", "xd_small"):
        assert {f"{ds}/dataset_index", f"{ds}/sampled_frames", f"{ds}/askhint_predictions",
                f"{ds}/abstract_predictions", f"{ds}/evaluation_report"} <= keys
    parents = {p.to_user_string() for p in graph.get(dg.AssetKey(["xd_small", "askhint_predictions"])).parent_keys}
    assert parents == {"xd_small/sampled_frames", "xd_violence/guiding_questions", "xd_violence/inference_templates"}
    checks = {c.to_user_string() for c in graph.asset_check_keys}
    assert "xd_violence/guiding_questions:qstar_size_within_bounds" in checks
    assert "ucf_small/askhint_predictions:every_video_predicted" in checks
    groups = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups["xd_small/askhint_predictions"] == "xd_small_inference"
    assert groups["xd_violence/prompt_store"] == groups["xd_violence/guiding_questions"] == "xd_violence_prompts"
    assert groups["ucf_small/evaluation_report"] == "ucf_small_evaluation"
    sensors = {s.name for s in multi["defs"].sensors}
    assert sensors == {"ucf_crime_prompt_store_sensor", "xd_violence_prompt_store_sensor"}


@pytest.mark.slow  # a full materialization
def test_both_data_sets_are_evaluated_in_one_code_location(multi):
    st = Store(paths.db_path())
    rows = st.query(
        "SELECT dataset, granularity, question_set, metric, value FROM eval_reports WHERE source = 'pipeline'"
    )
    assert set(rows["dataset"]) == {"ucf_small", "xd_small"}
    assert set(rows["granularity"]) == {"video", "window"}
    xd_metrics = set(rows.filter(rows["dataset"] == "xd_small")["metric"])
    assert {"auc/Fighting", "auc/Car accident", "auc/Explosion"} <= xd_metrics  # XD classes from file names
    asked = st.query(
        "SELECT DISTINCT e.dataset, p.prompt_set FROM eval_reports e JOIN question_sets q USING (question_set) "
        "JOIN prompt_versions p ON p.version = q.prompt_version WHERE e.source = 'pipeline'"
    )
    assert sorted(asked.iter_rows()) == [("ucf_small", "ucf_crime"), ("xd_small", "xd_violence")]
    for ds in ("ucf_small", "xd_small"):
        assert (multi["home"] / "reports" / f"{ds}.md").is_file()


@pytest.mark.slow  # a full materialization
def test_nothing_changed_nothing_materialized_no_request(multi):
    fake = multi["fake"]
    sent = len(fake.sent)
    again = update(multi["defs"], multi["instance"], log=lambda m: None)
    assert again.materialized == []
    assert len(fake.sent) == sent


@pytest.mark.slow  # a full materialization
def test_a_prompt_edit_makes_stale_only_its_prompt_set_and_data_set(multi):
    defs, instance, home = multi["defs"], multi["instance"], multi["home"]
    path = home / "prompts_store" / "xd_violence" / "class_questions.yaml"
    text = path.read_text()
    first = next(q for qs in yaml.safe_load(text).values() for q in qs)
    path.write_text(text.replace(first, first[:-1] + " right now?", 1))
    observe_sources(instance, defs)
    stale = {k.to_user_string() for k, _ in stale_assets(instance, defs)}
    assert stale and all(k.startswith("xd_violence/") for k in stale), stale
    result = update(defs, instance, log=lambda m: None)
    touched = set(result.materialized)
    assert all(k.startswith(("xd_violence/", "xd_small/")) for k in touched), touched
    assert "xd_violence/class_prompts" in touched


def test_datasets_settings_are_validated(tmp_path):
    def load(data: dict):
        p = tmp_path / "s.yaml"
        p.write_text(yaml.safe_dump(data))
        return load_settings(p)

    ok = {"name": "a", "kind": "ucf_crime"}
    with pytest.raises(InputError, match="either `dataset:`"):
        load({"dataset": ok, "datasets": [ok]})
    with pytest.raises(InputError, match="used twice"):
        load({"datasets": [ok, ok]})
    with pytest.raises(InputError, match="asset-key"):
        load({"datasets": [{"name": "a-b", "kind": "ucf_crime"}]})
    with pytest.raises(InputError, match="needs a `name`"):
        load({"datasets": [{"kind": "ucf_crime"}]})
    with pytest.raises(InputError, match=r"datasets\[1\]\.kind"):
        load({"datasets": [ok, {"name": "b", "kind": "kinetics"}]})
    with pytest.raises(InputError, match="needs `root`"):
        load({"datasets": [{"name": "b", "kind": "folder"}]})
    with pytest.raises(InputError, match="non-empty list"):
        load({"datasets": []})
    s = load({"datasets": [ok, {"name": "b", "kind": "xd_violence", "prompt_set": "xd_violence"}]})
    assert s.multi_dataset and [d.dataset.name for d in s.per_dataset()] == ["a", "b"]
    assert s.per_dataset()[1].dataset_root() == paths.demo_dataset_dir("xd_violence")


@pytest.mark.slow  # a full materialization
def test_report_prints_every_data_set(multi, monkeypatch):
    from click.testing import CliRunner

    from askhint_assets.cli_ops import report_cmd

    monkeypatch.setenv("ASKHINT_CONFIG", str(multi["home"] / "askhint.yaml"))
    out = CliRunner().invoke(report_cmd).output
    assert "data set `ucf_small`" in out and "data set `xd_small`" in out
