"""The data chain without Dagster: a folder data set of tiny clips indexed into a temporary store, its units
planned and decoded, a video that went missing marked failed (or stopping the step under ``on_error: raise``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from askhint_assets import ids
from askhint_assets.errors import VideoError
from askhint_assets.pipeline.data import index_dataset, sample_frames, video_rows
from askhint_assets.settings import PipelineSettings
from askhint_assets.settings_file import load_settings
from askhint_assets.store import Store
from askhint_assets.store.videos import load_units, ok_video_ids
from askhint_assets.video.decode import write_video

ANNOTATIONS = "video,class,intervals\ncam1.mp4,Theft,10-20\ncam2,Normal,\nghost.mp4,Fire,0-5\n,Fire,0-5\n"


@pytest.fixture()
def root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ASKHINT_HOME", str(tmp_path / "home"))
    r = tmp_path / "ds"
    for name, n in (("cam1.mp4", 36), ("cam2.mp4", 24)):
        write_video(r / name, np.random.default_rng(n).integers(0, 255, (n, 16, 16, 3), dtype=np.uint8), 10)
    (r / "annotations.csv").write_text(ANNOTATIONS)
    return r


def _settings(tmp_path: Path, root: Path, on_error: str = "skip") -> PipelineSettings:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({
        "dataset": {"name": "toy", "kind": "folder", "root": str(root), "annotations": str(root / "annotations.csv"),
                    "on_error": on_error},
        "scoring": {"granularities": ["window", "video"], "window_s": 1.0, "stride_s": 1.0},
    }))
    return load_settings(p)


@pytest.mark.filterwarnings("ignore:skipped")
def test_the_index_stores_every_video_and_says_what_it_skipped(tmp_path, root):
    st = Store(tmp_path / "db.duckdb")
    index = index_dataset(st, _settings(tmp_path, root))
    assert [v.video_id for v in index.dataset.videos] == ["cam1", "cam2"]
    assert (index.anomalous, index.frames, index.root) == (1, 60, root)
    assert ok_video_ids(st, "toy") == {"cam1", "cam2"}
    assert st.scalar("SELECT status FROM videos WHERE video_id = 'ghost'") == "skipped"
    assert [r["video"] for r in index.skipped_rows] == ["ghost", "(annotation line)"]
    ghost, line = index.warnings  # the skipped video, then the annotation line naming none (its file:line first)
    assert ghost.startswith("skipped video ghost: ") and "annotations.csv:4" in ghost
    assert line.startswith("skipped: ") and "annotations.csv:5" in line
    assert index.version == ids.dataset_index_version(index.dataset.fingerprint, video_rows("toy", index.dataset))


@pytest.mark.filterwarnings("ignore:skipped")
def test_sampling_stores_every_plan_and_marks_a_missing_video_failed(tmp_path, root):
    st = Store(tmp_path / "db.duckdb")
    s = _settings(tmp_path, root)
    index_dataset(st, s)
    said: list[str] = []
    first = sample_frames(st, s, warn=said.append, info=said.append)
    units = load_units(st, "toy", sorted(first.plans.values()))
    assert first.plans.keys() == {"window", "video"} and not first.failed and not said
    assert (first.videos, first.units, first.decoded) == (2, len(units), len(units))
    assert sum(u.plan == first.plans["video"] for u in units) == 2  # one whole-video unit per video
    again = sample_frames(st, s, warn=said.append, info=said.append)
    assert (again.version, again.decoded) == (first.version, 0)  # the frames are cached
    (root / "cam2.mp4").unlink()
    gone = sample_frames(st, s, warn=said.append, info=said.append)
    assert [f["video"] for f in gone.failed] == ["cam2"] and said == [f"video cam2 failed: {gone.failed[0]['reason']}"]
    assert gone.videos == 1 and gone.version != first.version
    assert ok_video_ids(st, "toy") == {"cam1"}
    assert {u.video_id for u in load_units(st, "toy", sorted(gone.plans.values()))} == {"cam1"}


def test_a_missing_video_stops_sampling_under_on_error_raise(tmp_path, root):
    st = Store(tmp_path / "db.duckdb")
    (root / "annotations.csv").write_text("".join(ANNOTATIONS.splitlines(keepends=True)[:3]))
    s = _settings(tmp_path, root, on_error="raise")
    index_dataset(st, s)
    (root / "cam2.mp4").unlink()
    with pytest.raises(VideoError, match="cam2"):
        sample_frames(st, s, warn=print, info=print)
