"""Issue #22 case 2: an mp4 with its index first (faststart) cut short. Its header lists every frame; the pipeline
scores it on the frames that decode: the ``videos`` row, the units and the evaluation all agree on that count,
and a warning names the video and both counts. No unit uses a frame the file does not have."""

from __future__ import annotations

import av
import pytest

from support import fault_harness as harness
from tests.unit.test_short_and_duplicate_videos import decodable

pytestmark = pytest.mark.slow

VIDEO = "Normal_Videos_001_x264"


def _faststart_cut(path, fraction: float = 0.4) -> None:
    data = harness.faststart_bytes(path)
    path.write_bytes(data[: int(len(data) * fraction)])


def _cache_meta(home, video_id: str) -> list[dict]:
    from askhint_assets.video.frame_cache import FrameCache

    cache = FrameCache(home.root / "cache" / "frames")
    keys = {k for (k,) in home.query("SELECT frames_key FROM scoring_units WHERE video_id = ?", [video_id])}
    return [cache.load(k)[1] for k in keys]


def _warnings_logged(home) -> list[str]:
    """Every WARNING line the runs of ``home`` logged (what the UI and the terminal show)."""
    import logging

    import dagster as dg

    with home.active(), dg.DagsterInstance.from_config(home.env["DAGSTER_HOME"]) as instance:
        return [e.user_message for run in instance.get_runs() for e in instance.all_logs(run.run_id)
                if e.level == logging.WARNING]


def test_a_video_cut_short_is_scored_on_the_frames_it_has(tmp_path, standin):
    home = harness.make_home(tmp_path / "home", standin.base_url, granularities=("video", "window"))
    path = home.video(VIDEO)
    with av.open(str(path)) as c:
        header = c.streams.video[0].frames
    _faststart_cut(path)
    with av.open(str(path)) as c:
        assert c.streams.video[0].frames == header  # the header still claims every frame
    n = decodable(path)
    assert 0 < n < header * 0.6, (n, header)

    out = harness.materialize(home)
    assert out.ok, out.message

    assert home.query("SELECT num_frames, status FROM videos WHERE video_id = ?", [VIDEO]) == [(n, "ok")]
    units = home.query("SELECT end_frame, frame_indices FROM scoring_units WHERE video_id = ?", [VIDEO])
    assert units and max(e for e, _ in units) == n
    assert max(max(idx) for _, idx in units) < n  # no unit asks for a frame past the data
    used = [f for meta in _cache_meta(home, VIDEO) for f in meta["used"]]
    assert used and max(used) < n
    total = home.scalar("SELECT sum(num_frames) FROM videos WHERE status = 'ok'")
    assert set(home.query("SELECT DISTINCT n_frames FROM eval_reports")) == {(total,)}
    warning = (f"video '{VIDEO}' ({path}): its header lists {header} frames but only {n} decode (the file ends "
               f"early); it is scored on those {n}")
    assert warning in harness.latest_metadata(home, "dataset_index")["warnings"]
    assert any(warning in m for m in _warnings_logged(home)), _warnings_logged(home)
