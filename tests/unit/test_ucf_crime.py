"""UCF-Crime annotations in the exact real format, and loading them against a video tree."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from askhint_assets.datasets import ucf_crime
from askhint_assets.datasets.registry import load_dataset
from askhint_assets.errors import InputError, VideoError
from askhint_assets.video.decode import write_video

ANN = """\
Abuse028_x264.mp4  Abuse  5  20  -1  -1
Arson011_x264.mp4  Arson  2  8  25  40
Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1
Explosion002_x264.mp4  Explosion  -1  -1  10  35
"""
LENGTHS = {"Abuse028_x264": 30, "Arson011_x264": 36, "Normal_Videos_003_x264": 24, "Explosion002_x264": 30}
FOLDERS = {"Abuse": "Anomaly-Videos-Part-1/Abuse", "Arson": "Anomaly-Videos-Part-1/Arson",
           "Normal": "Testing_Normal_Videos_Anomaly", "Explosion": "Anomaly-Videos-Part-2/Explosion"}


def _clip(path: Path, n: int) -> Path:
    frames = np.random.default_rng(n).integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)
    return write_video(path, frames, 30)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("ucf_videos")
    for vid, n in LENGTHS.items():
        _clip(src / f"{vid}.mp4", n)
    return src


@pytest.fixture
def root(tmp_path: Path, videos: Path) -> Path:
    """A fresh copy of the real layout per test (the tests may break it)."""
    for vid in LENGTHS:
        cls = vid.split("_")[0].rstrip("0123456789") if not vid.startswith("Normal") else "Normal"
        dst = tmp_path / "UCF" / FOLDERS[cls] / f"{vid}.mp4"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes((videos / f"{vid}.mp4").read_bytes())
    (tmp_path / "UCF" / ucf_crime.ANNOTATION_FILE).write_text(ANN)
    return tmp_path / "UCF"


def _ann(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "ann.txt"
    p.write_text(text)
    return p


def test_classes() -> None:
    assert len(ucf_crime.CLASSES) == 13 and "RoadAccidents" in ucf_crime.CLASSES


def test_parse_real_format(tmp_path: Path) -> None:
    recs = ucf_crime.parse_annotations(_ann(tmp_path, ANN))
    assert [r.video_id for r in recs] == list(LENGTHS)
    abuse, arson, normal, expl = recs
    assert (abuse.label, abuse.classes, abuse.intervals, abuse.source_line) == ("Abuse", ("Abuse",), ((5, 20),), 1)
    assert arson.intervals == ((2, 8), (25, 40))
    assert (normal.label, normal.classes, normal.intervals, normal.is_anomalous) == ("Normal", (), (), False)
    assert expl.intervals == ((10, 35),)
    inc = ucf_crime.parse_annotations(_ann(tmp_path, ANN), inclusive_end=True)
    assert inc[1].intervals == ((2, 9), (25, 41))


def test_parse_tolerates_tabs_crlf_blank_lines(tmp_path: Path) -> None:
    text = "Abuse028_x264.mp4\tAbuse\t5\t20\t-1\t-1\r\n\r\nNormal_Videos_003_x264.mp4 Normal -1 -1 -1 -1"
    recs = ucf_crime.parse_annotations(_ann(tmp_path, text))
    assert [(r.video_id, r.source_line) for r in recs] == [("Abuse028_x264", 1), ("Normal_Videos_003_x264", 3)]


GOOD = "Abuse028_x264.mp4  Abuse  5  20  -1  -1\n"
ERRORS = {
    "field_count": ("X_x264.mp4  Abuse  5  20  -1\n", None, "expected 6 fields"),
    "non_integer": ("X_x264.mp4  Abuse  5  2O  -1  -1\n", "e1", "not an integer"),
    "start_after_end": ("X_x264.mp4  Abuse  50  20  -1  -1\n", "s1/e1", "after end"),
    "half_pair": ("X_x264.mp4  Abuse  5  20  30  -1\n", "s2/e2", "only one of the pair"),
    "unknown_class": ("X_x264.mp4  Burglar  5  20  -1  -1\n", "class", "unknown class"),
    "duplicate": ("Abuse028_x264.mp4  Abuse  1  2  -1  -1\n", "name", "listed twice (first at line 1)"),
    "no_interval": ("X_x264.mp4  Abuse  -1  -1  -1  -1\n", "intervals", "has no interval"),
    "normal_with_interval": ("X_x264.mp4  Normal  1  5  -1  -1\n", "intervals", "normal video"),
    "negative": ("X_x264.mp4  Abuse  -3  5  -1  -1\n", "s1/e1", "negative"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_parse_errors_name_path_line_field(tmp_path: Path, case: str) -> None:
    bad, field, msg = ERRORS[case]
    p = _ann(tmp_path, GOOD + bad)
    with pytest.raises(InputError) as e:
        ucf_crime.parse_annotations(p)
    assert (e.value.path, e.value.line, e.value.field) == (str(p), 2, field)
    assert str(e.value).startswith(f"{p}:2: ") and msg in str(e.value)


def test_load(root: Path) -> None:
    ds = ucf_crime.load(root)
    assert (ds.kind, ds.name, ds.skipped) == ("ucf_crime", "UCF", [])
    by = ds.by_id()
    assert [v.video_id for v in ds.videos] == list(LENGTHS)
    for vid, n in LENGTHS.items():
        assert (by[vid].num_frames, by[vid].fps) == (n, 30.0)
        assert by[vid].path is not None and by[vid].path.name == f"{vid}.mp4"
    assert by["Arson011_x264"].intervals == ((2, 8), (25, 36))  # end past the last frame: clipped
    assert by["Explosion002_x264"].intervals == ((10, 30),)
    assert by["Arson011_x264"].frame_labels().sum() == 6 + 11
    assert load_dataset("ucf_crime", root).fingerprint == ds.fingerprint


def test_fingerprint_follows_annotation_and_options(root: Path) -> None:
    fp = ucf_crime.load(root).fingerprint
    assert ucf_crime.load(root, inclusive_end=True).fingerprint != fp
    ann = root / ucf_crime.ANNOTATION_FILE
    ann.write_text(ANN.replace("5  20", "6  20"))
    assert ucf_crime.load(root).fingerprint != fp


def test_annotation_found_below_root(root: Path) -> None:
    (root / "meta").mkdir()
    (root / ucf_crime.ANNOTATION_FILE).rename(root / "meta" / ucf_crime.ANNOTATION_FILE)
    assert len(ucf_crime.load(root).videos) == 4


def test_missing_annotation_file(tmp_path: Path) -> None:
    tmp_path.joinpath("v").mkdir()
    with pytest.raises(InputError, match="annotation file not found"):
        ucf_crime.load(tmp_path / "v")


def test_missing_video_names_video_and_line(root: Path) -> None:
    (root / FOLDERS["Arson"] / "Arson011_x264.mp4").unlink()
    ann = root / ucf_crime.ANNOTATION_FILE
    with pytest.raises(InputError) as e:
        ucf_crime.load(root)
    assert (e.value.path, e.value.line, e.value.field) == (str(ann), 2, "video")
    assert "'Arson011_x264' not found" in str(e.value)
    with pytest.warns(UserWarning, match="Arson011_x264"):
        ds = ucf_crime.load(root, on_error="skip")
    assert len(ds.videos) == 3 and ds.skipped[0][0] == "Arson011_x264"


def test_start_past_the_end(root: Path) -> None:
    ann = root / ucf_crime.ANNOTATION_FILE
    ann.write_text(ANN.replace("Abuse  5  20", "Abuse  30  40"))
    with pytest.raises(InputError) as e:
        ucf_crime.load(root)
    assert (e.value.line, e.value.field) == (1, "interval 1") and "30 frames" in str(e.value)


def test_broken_video(root: Path) -> None:
    bad = root / FOLDERS["Normal"] / "Normal_Videos_003_x264.mp4"
    bad.write_text("not a video")
    with pytest.raises(VideoError) as e:
        ucf_crime.load(root)
    assert e.value.video == str(bad)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        ds = ucf_crime.load(root, on_error="skip")
    assert [k for k, _ in ds.skipped] == ["Normal_Videos_003_x264"]


def test_skip_bad_lines(root: Path) -> None:
    ann = root / ucf_crime.ANNOTATION_FILE
    ann.write_text(ANN + "Bogus_x264.mp4  Bogus  1  2  -1  -1\n")
    with pytest.warns(UserWarning, match="unknown class"):
        ds = ucf_crime.load(root, on_error="skip")
    assert len(ds.videos) == 4 and ds.skipped == [] and ds.skipped_lines[0][0] == f"{ann}:5"
    with pytest.raises(InputError, match="on_error"):
        ucf_crime.load(root, on_error="ignore")  # type: ignore[arg-type]


def test_duplicate_files_prefer_class_folder(root: Path) -> None:
    other = root / "Normal_Videos_for_Event_Recognition" / "Abuse028_x264.mp4"
    other.parent.mkdir()
    other.write_text("a different file")
    assert ucf_crime.load(root).by_id()["Abuse028_x264"].path == root / FOLDERS["Abuse"] / "Abuse028_x264.mp4"
