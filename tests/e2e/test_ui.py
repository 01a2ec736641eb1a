"""The Dagster UI (`dagster dev`, as `make ui` runs it) over a home with a materialized run: GraphQL sees
the four groups, every asset and the report's metadata; headless Chromium renders the asset graph and
the report's page (the graph's nodes are HTML in SVG foreignObjects, so their names are in the DOM)."""

from __future__ import annotations

import os

import pytest

from support import dagster_ui as ui
from tests.e2e.ui_helpers import materialize_demo, prepare_home

pytestmark = pytest.mark.slow

ASSETS_QUERY = "{ assetNodes { assetKey { path } groupName } }"
REPORT_QUERY = """
{ assetOrError(assetKey: {path: ["evaluation_report"]}) {
    ... on Asset { assetMaterializations(limit: 1) { runId metadataEntries { label __typename } } } } }
"""

REPO = '(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: "askhint"})'
DEV_QUERY = f"""
{{ instance {{ daemonHealth {{ allDaemonStatuses {{ daemonType required healthy }} }} }}
  sensorsOrError{REPO} {{ ... on Sensors {{ results {{ name sensorState {{ status }} }} }} }}
  schedulesOrError{REPO} {{ ... on Schedules {{ results {{ name scheduleState {{ status }} }} }} }}
  runsOrError {{ ... on Runs {{ results {{ runId status tags {{ key }} }} }} }} }}
"""


@pytest.fixture(scope="module")
def ui_base(tmp_path_factory):
    """The base URL of `dagster dev` serving a freshly materialized home (stopped after the module)."""
    home = tmp_path_factory.mktemp("ui_home")
    env = prepare_home(home)
    with ui.dagster_ui(env, home / "dagster-dev.log", meanwhile=lambda: materialize_demo(env)) as base:
        yield base


@pytest.fixture
def chromium():
    if ui.chromium_path():
        return ui.chromium_path()
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed; `make test` installs it through `make system-deps`")
    pytest.skip("chromium is not installed: run `make system-deps` (apt-get install chromium)")


@pytest.fixture(scope="module")
def expected():
    assets = ui.expected_assets()
    assert set(assets.values()) == set(ui.GROUPS) and assets["evaluation_report"] == "evaluation", assets
    return assets


def test_graphql_lists_groups_assets_and_report_metadata(ui_base, expected):
    nodes = ui.graphql(ui_base, ASSETS_QUERY)["assetNodes"]
    assert {"/".join(n["assetKey"]["path"]): n["groupName"] for n in nodes} == expected
    mats = ui.graphql(ui_base, REPORT_QUERY)["assetOrError"]["assetMaterializations"]
    assert len(mats) == 1, mats
    entries = {e["label"]: e["__typename"] for e in mats[0]["metadataEntries"]}
    assert {k: entries.get(k) for k in ui.REPORT_METADATA} == {
        "report": "MarkdownMetadataEntry",
        "roc": "MarkdownMetadataEntry",
        "frame_auc": "FloatMetadataEntry",
    }


def test_dagster_dev_daemon_is_healthy_and_launches_nothing(ui_base):
    """`make ui` must not start materializing (with the real model) on its own: automation starts STOPPED."""
    d = ui.graphql(ui_base, DEV_QUERY)
    unhealthy = [s["daemonType"] for s in d["instance"]["daemonHealth"]["allDaemonStatuses"] if not s["healthy"]]
    assert not unhealthy, f"unhealthy daemons: {unhealthy}"
    states = {s["name"]: s["sensorState"]["status"] for s in d["sensorsOrError"]["results"]}
    states |= {s["name"]: s["scheduleState"]["status"] for s in d["schedulesOrError"]["results"]}
    assert set(states.values()) <= {"STOPPED"}, states
    runs = d["runsOrError"]["results"]
    assert runs and all(r["status"] == "SUCCESS" for r in runs), runs  # only the test's own runs
    launched = {"dagster/sensor_name", "dagster/schedule_name", "dagster/backfill"}
    assert not [r["runId"] for r in runs if launched & {t["key"] for t in r["tags"]}]


def test_chromium_renders_asset_graph_and_report_page(ui_base, expected, chromium, tmp_path):
    shot = tmp_path / "asset-graph.png"
    dom = ui.render(ui.graph_url(ui_base), shot, window=ui.GRAPH_WINDOW)
    assert "Global asset lineage" in dom
    assert "Join the Dagster community" not in dom  # setNuxSeen took effect
    names = [*ui.GROUPS, *(k.split("/")[-1] for k in expected)]
    missing = [n for n in names if f">{n}<" not in dom]  # element text, not URLs or JSON
    hint = " (nodes drawn minimal, names truncated: widen ui.GRAPH_WINDOW)" if "minimalName" in dom else ""
    assert not missing, f"not in the rendered graph: {missing}{hint}"
    assert ui.png_size(shot) == ui.GRAPH_WINDOW and ui.drawn_share(shot) > 0.1  # a blank page: 0

    shot = tmp_path / "evaluation-report.png"
    dom = ui.render(f"{ui_base}/assets/evaluation_report?view=events", shot)
    assert "Materialized in run" in dom
    assert all(f">{k}<" in dom for k in ui.REPORT_METADATA), "metadata keys missing from the events page"
    assert dom.count("[Show Markdown]") >= 2  # report and roc (markdown opens in a dialog)
    assert ui.png_size(shot) == ui.PAGE_WINDOW and ui.drawn_share(shot) > 0.02  # mostly white text page: ~0.06
