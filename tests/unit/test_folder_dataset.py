"""A generic folder of videos with a CSV or JSON annotation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from askhint_assets.datasets import folder
from askhint_assets.datasets.registry import load_dataset
from askhint_assets.errors import InputError
from askhint_assets.video.decode import write_video

CSV = """video,class,intervals
cam1.mp4,Theft,10-20;25-40
cam2,Normal,
cam3.avi,Fire|Smoke,0-5
"""
JSON_ITEMS = [
    {"video": "cam1.mp4", "class": "Theft", "intervals": [[10, 20], [25, 40]]},
    {"video": "cam2", "class": "normal", "intervals": []},
    {"video": "cam3.avi", "class": "Fire|Smoke", "intervals": [[0, 5]]},
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("folder_ds")
    for name, n in (("cam1.mp4", 36), ("sub/cam2.mkv", 12), ("cam3.avi", 20)):
        frames = np.random.default_rng(n).integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)
        write_video(r / name, frames, 10)
    (r / "annotations.csv").write_text(CSV)
    (r / "labels.json").write_text(json.dumps(JSON_ITEMS, indent=2))
    return r


def test_video_id_of() -> None:
    assert folder.video_id_of("a/b/Abuse028_x264.mp4") == "Abuse028_x264"
    assert folder.video_id_of("Bad.Boys.1995__#01_label_A") == "Bad.Boys.1995__#01_label_A"
    assert folder.video_id_of("clip.MKV") == "clip"


@pytest.mark.parametrize("ann", ["annotations.csv", "labels.json"])
def test_load_csv_and_json(root: Path, ann: str) -> None:
    ds = folder.load(root, root / ann)
    assert ds.kind == "folder" and [v.video_id for v in ds.videos] == ["cam1", "cam2", "cam3"]
    cam1, cam2, cam3 = ds.videos
    assert cam1.intervals == ((10, 20), (25, 36)) and cam1.num_frames == 36 and cam1.fps == 10.0
    assert (cam2.label, cam2.classes, cam2.path) == ("Normal", (), root / "sub" / "cam2.mkv")
    assert (cam3.label, cam3.classes) == ("Fire", ("Fire", "Smoke"))
    assert cam1.source_line == 2  # CSV: after the header; JSON: the line where the entry starts


def test_default_annotation_and_registry(root: Path) -> None:
    assert load_dataset("folder", root).fingerprint == folder.load(root, root / "annotations.csv").fingerprint
    with pytest.raises(InputError, match="unknown data set kind"):
        load_dataset("kinetics", root)  # type: ignore[arg-type]


def test_inclusive_end(root: Path) -> None:
    recs = folder.parse_annotations(root / "annotations.csv", inclusive_end=True)
    assert recs[0].intervals == ((10, 21), (25, 41))


CSV_ERRORS = {
    "interval_syntax": ("camX,Theft,10to20\n", "intervals", "not 'start-end'"),
    "start_after_end": ("camX,Theft,30-20\n", "interval 1", "after end"),
    "no_interval": ("camX,Theft,\n", "intervals", "has no interval"),
    "normal_with_interval": ("camX,Normal,1-2\n", "intervals", "normal video"),
    "duplicate": ("cam1,Theft,1-2\n", "video", "listed twice"),
    "field_count": ("camX,Theft\n", None, "expected 3 fields"),
    "no_class": ("camX,,1-2\n", "class", "missing class"),
}


@pytest.mark.parametrize("case", list(CSV_ERRORS))
def test_csv_errors(tmp_path: Path, case: str) -> None:
    bad, field, msg = CSV_ERRORS[case]
    p = tmp_path / "a.csv"
    p.write_text("video,class,intervals\ncam1,Theft,1-5\n" + bad)
    with pytest.raises(InputError) as e:
        folder.parse_annotations(p)
    assert (e.value.path, e.value.line, e.value.field) == (str(p), 3, field)
    assert msg in str(e.value)


def test_csv_bad_header(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text("name,label\nx,y\n")
    with pytest.raises(InputError, match="header") as e:
        folder.parse_annotations(p)
    assert e.value.line == 1


def test_json_errors_name_the_entry_line(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    items = [*JSON_ITEMS[:2], {"video": "camX", "class": "Theft", "intervals": [[1, "x"]]}]
    p.write_text(json.dumps(items, indent=2))
    with pytest.raises(InputError) as e:
        folder.parse_annotations(p)
    lines = p.read_text().splitlines()
    assert e.value.field == "intervals" and lines[e.value.line - 1].strip() == "{"
    assert lines[e.value.line].strip() == '"video": "camX",'
    p.write_text('[{"video": "a",\n "class": }]')
    with pytest.raises(InputError, match="invalid JSON") as e:
        folder.parse_annotations(p)
    assert e.value.line == 2
    p.write_text('{"video": "a"}')
    with pytest.raises(InputError, match="top level"):
        folder.parse_annotations(p)


def test_unsupported_format(tmp_path: Path) -> None:
    p = tmp_path / "a.yaml"
    p.write_text("x")
    with pytest.raises(InputError, match="unsupported"):
        folder.parse_annotations(p)


def test_missing_video_and_skip(root: Path, tmp_path: Path) -> None:
    ann = tmp_path / "a.csv"
    ann.write_text(CSV + "ghost.mp4,Theft,1-2\n")
    with pytest.raises(InputError) as e:
        folder.load(root, ann)
    assert (e.value.line, e.value.field) == (5, "video") and "'ghost' not found" in str(e.value)
    with pytest.warns(UserWarning, match="ghost"):
        ds = folder.load(root, ann, on_error="skip")
    assert len(ds.videos) == 3 and ds.skipped[0][0] == "ghost"
