"""Row 1: corrupt, truncated, empty, audio-only, unreadable and undecodable videos in the data set.

Six of the twelve demo videos are replaced in place (the annotation still lists them). Five fail the
probe of ``dataset_index`` (``status='skipped'``); one has an intact header but no decodable frame
and fails in ``sampled_frames`` (``status='failed'``). Unreadable is simulated with a dangling
symlink: the tests run as root, for whom ``chmod 000`` changes nothing.
"""

from __future__ import annotations

import re

import pytest

from support import fault_harness as harness
from support.fault_harness import BROKEN

pytestmark = pytest.mark.slow

def broken_home(root, server, videos=harness.SUBSET, **dataset) -> harness.Home:
    home = harness.make_home(root, server.base_url, videos=videos, dataset=dataset or None)
    harness.break_videos(home)
    return home


@pytest.fixture(scope="module")
def bad_home(tmp_path_factory, server):
    server.reset()
    home = broken_home(tmp_path_factory.mktemp("bad_videos") / "home", server)
    out = harness.materialize(home)
    assert out.ok, out.message
    return home


def test_each_bad_video_is_recorded_with_its_reason(bad_home):
    rows = {v: (s, r) for v, s, r in bad_home.query("SELECT video_id, status, reason FROM videos")}
    for vid, (how, status, reason) in BROKEN.items():
        got_status, got_reason = rows[vid]
        assert got_status == status, (how, rows[vid])
        assert reason in got_reason, (how, got_reason)
    ok = {v for v, (s, _) in rows.items() if s == "ok"}
    assert ok == set(harness.SUBSET) - set(BROKEN)


def test_all_other_videos_are_scored_and_metrics_cover_only_them(bad_home):
    ok = {v for (v,) in bad_home.query("SELECT video_id FROM videos WHERE status = 'ok'")}
    for template in ("askhint", "abstract"):
        scored = {v for (v,) in bad_home.query(
            "SELECT DISTINCT video_id FROM predictions WHERE template = ? AND score_source <> 'failed'", [template])}
        assert scored == ok, template
    assert harness.lost(bad_home) == 0 and harness.duplicates(bad_home) == 0
    assert set(bad_home.query("SELECT DISTINCT n_videos FROM eval_reports")) == {(len(ok),)}
    meta = harness.latest_metadata(bad_home, "evaluation_report")
    assert meta["failed_videos"] == len(BROKEN) and meta["videos"] == len(ok)
    report = (bad_home.root / "reports" / "demo.md").read_text()
    assert f"{len(ok)} videos" in report and f"{len(BROKEN)} video(s) failed and are excluded" in report
    frames_meta = harness.latest_metadata(bad_home, "sampled_frames")
    assert frames_meta["failed_videos"] == 1 and "Stealing001_x264" in frames_meta["failures"]
    assert harness.latest_metadata(bad_home, "dataset_index")["skipped"] == 5


@pytest.mark.parametrize(
    ("broken", "select", "failing_step"),
    [
        ("Normal_Videos_002_x264", ("dataset_index",), "probe"),
        ("Stealing001_x264", ("dataset_index", "sampled_frames"), "decode"),
    ],
)
def test_on_error_raise_fails_the_run_naming_the_video(tmp_path, standin, broken, select, failing_step):
    videos = ("Fighting001_x264", "Normal_Videos_001_x264", broken)
    home = broken_home(tmp_path / "home", standin, videos=videos, on_error="raise")
    out = harness.materialize(home, select)
    assert not out.ok
    assert str(home.video(broken)) in out.message, out.message
    assert re.search(re.escape(BROKEN[broken][2]), out.message), out.message
    assert standin.request_count == 0
