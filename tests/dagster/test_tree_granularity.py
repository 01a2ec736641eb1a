"""The ``tree`` granularity and follow-ups through Dagster: one small generated data set scored at window, video
and tree granularity with ``follow_up: uncertain`` by the fake VLM; the report carries the cost table; a second
update sends nothing."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
import yaml

from askhint_assets import paths
from askhint_assets.demo.datasets import generate_demo
from askhint_assets.orchestration.resources import VLMResource
from askhint_assets.orchestration.update import update
from askhint_assets.pipeline.data import plan_id
from askhint_assets.settings_file import load_settings
from askhint_assets.store import Store
from tests.fakes import FakeBackend, registered_backend

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tree_home(tmp_path_factory):
    h = tmp_path_factory.mktemp("askhint_tree")
    data = generate_demo(tmp_path_factory.mktemp("tree_data") / "ucf", n_anomalous_per_class=1, n_normal=2,
                         seconds=(8, 10))
    shutil.copytree(ROOT / "prompts_store", h / "prompts_store")
    (h / "dagster").mkdir()
    cfg = h / "askhint.yaml"
    cfg.write_text(yaml.safe_dump({
        "dataset": {"name": "tree_small", "kind": "ucf_crime", "root": str(data)},
        "scoring": {"granularities": ["window", "video", "tree"], "uncertain_band": [0.2, 0.8],
                    "follow_up": "uncertain", "band_source": "test: fixed"},
        "questions": {"ablation_sizes": []},
    }))
    fake = FakeBackend(threshold=100)
    with pytest.MonkeyPatch.context() as mp, registered_backend("tree_fake", fake):
        mp.setenv("ASKHINT_HOME", str(h))
        mp.setenv("DAGSTER_HOME", str(h / "dagster"))
        mp.setenv("ASKHINT_PROMPTS_STORE", str(h / "prompts_store"))
        from askhint_assets.definitions import build_defs

        s = load_settings(cfg)
        defs = build_defs(s, resources={"vlm": VLMResource.from_settings(replace(s.model, backend="tree_fake"))})
        with dg.DagsterInstance.get() as instance:
            update(defs, instance, log=lambda m: None)
            yield {"defs": defs, "instance": instance, "settings": s, "fake": fake, "home": h}


@pytest.mark.slow  # a full materialization
def test_tree_nodes_rows_report_and_a_rerun_that_sends_nothing(tree_home):
    s, fake = tree_home["settings"], tree_home["fake"]
    st = Store(paths.db_path())
    tree = plan_id(s, "tree")
    nodes = st.query("SELECT video_id, unit, start_frame, end_frame FROM predictions WHERE plan = ? "
                     "AND template = 'askhint'", [tree])
    videos = st.query("SELECT video_id, num_frames FROM videos WHERE status = 'ok'")
    assert set(nodes.filter(nodes["unit"] == 0)["video_id"]) == set(videos["video_id"])  # every video's root
    assert nodes.height > videos.height  # some node was split
    grans = set(st.query("SELECT DISTINCT granularity FROM eval_reports")["granularity"])
    assert grans == {"window", "video", "tree"}
    paths_seen = st.query("SELECT score_path, count(*) AS n FROM predictions WHERE template = 'follow_up' "
                          "GROUP BY ALL")
    assert set(paths_seen["score_path"]) <= {"joint", "per_question"} and paths_seen.height
    report = paths.report_path("tree_small").read_text()
    assert "## What each granularity costs" in report and "| tree | ASK-Hint |" in report
    assert "Band from: test: fixed." in report
    assert (paths.report_path("tree_small").parent / "tree_small_auc_vs_requests.png").is_file()
    sent = len(fake.sent)
    update(tree_home["defs"], tree_home["instance"], log=lambda m: None)
    assert len(fake.sent) == sent  # nothing changed: no request
