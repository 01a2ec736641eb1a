"""``execution.decode: overlapped``: ``sampled_frames`` only plans and the prediction assets decode on
their prefetch thread while the model works. Same scores as decoding upfront; the video with an intact
header but no decodable frame is found while scoring, recorded as failed and excluded, the rest scored."""

from __future__ import annotations

import pytest

from support import fault_harness as harness

pytestmark = pytest.mark.slow
UNDECODABLE = "Stealing001_x264"


def _home(root, server, decode: str) -> harness.Home:
    home = harness.make_home(root, server.base_url)
    home.write_settings({**home.settings(), "execution": {"decode": decode}})
    harness.break_video(home.video(UNDECODABLE), "undecodable")
    out = harness.materialize(home)
    assert out.ok, out.message
    return home


@pytest.fixture(scope="module")
def homes(tmp_path_factory, server):
    server.reset()
    root = tmp_path_factory.mktemp("decode")
    return {mode: _home(root / mode, server, mode) for mode in ("upfront", "overlapped")}


def test_overlapped_decoding_gives_the_upfront_scores(homes):
    sql = "SELECT template, plan, video_id, unit, round(score, 9), answer FROM predictions ORDER BY ALL"
    up, over = (homes[m].query(sql) for m in ("upfront", "overlapped"))
    assert up and over == up
    assert homes["overlapped"].query("SELECT frame_auc FROM (SELECT value AS frame_auc FROM eval_reports "
                                     "WHERE metric = 'frame_auc' ORDER BY ALL)") == \
        homes["upfront"].query("SELECT frame_auc FROM (SELECT value AS frame_auc FROM eval_reports "
                               "WHERE metric = 'frame_auc' ORDER BY ALL)")


def test_sampled_frames_only_plans_and_the_model_assets_decode(homes):
    frames = harness.latest_metadata(homes["overlapped"], "sampled_frames")
    assert frames["units_decoded_now"] == 0 and frames["decode"].startswith("overlapped")
    assert harness.latest_metadata(homes["upfront"], "sampled_frames")["units_decoded_now"] > 0
    meta = {t: harness.latest_metadata(homes["overlapped"], f"{t}_predictions") for t in ("askhint", "abstract")}
    assert sum(m["videos_failed_decoding"] for m in meta.values()) == 1  # found once, by whichever ran first


def test_the_undecodable_video_is_failed_with_its_reason_and_excluded(homes):
    home = homes["overlapped"]
    status, reason = home.query("SELECT status, reason FROM videos WHERE video_id = ?", [UNDECODABLE])[0]
    assert status == "failed" and "corrupt or truncated video data" in reason
    assert not home.query("SELECT 1 FROM predictions WHERE video_id = ?", [UNDECODABLE])
    n_ok = len(harness.SUBSET) - 1
    assert set(home.query("SELECT DISTINCT n_videos FROM eval_reports")) == {(n_ok,)}
    assert harness.lost(home) == 0 and harness.duplicates(home) == 0
