"""XD-Violence: labels from names, annotations.txt in the real format, loading a folder."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from askhint_assets.datasets import xd_violence as xd
from askhint_assets.datasets.registry import load_dataset
from askhint_assets.errors import InputError
from askhint_assets.video.decode import write_video

SHOOT = "Bad.Boys.1995__#01-11-55_01-12-40_label_B2-G-0"
FIGHT = "v=wVey5JJzgHk__#1_label_B1-0-0"
RIOT = "News.2019__#00-01-00_00-02-00_label_B4-B5-B6"
NORMAL = "A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A"
# real quirks: a name with .mp4, three intervals, no final newline
ANN = f"{SHOOT} 2 10 20 30\n{FIGHT}.mp4 0 5 8 12 40 48\n{RIOT} 3 9"
LENGTHS = {SHOOT: 24, FIGHT: 44, RIOT: 20, NORMAL: 16}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("xd_videos")
    for vid, n in LENGTHS.items():
        frames = np.random.default_rng(n).integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)
        write_video(src / f"{vid}.mp4", frames, 24)
    return src


@pytest.fixture
def root(tmp_path: Path, videos: Path) -> Path:
    r = tmp_path / "XD"
    r.mkdir()
    for vid in LENGTHS:
        (r / f"{vid}.mp4").write_bytes((videos / f"{vid}.mp4").read_bytes())
    (r / "annotations.txt").write_text(ANN)
    return r


def _ann(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "annotations.txt"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        (SHOOT, ("Shooting", "Explosion")),
        (FIGHT + ".mp4", ("Fighting",)),
        (RIOT, ("Riot", "Abuse", "Car accident")),
        (NORMAL, ()),
        ("x_label_B1-B1-0", ("Fighting",)),
    ],
)
def test_labels_from_name(name: str, labels: tuple[str, ...]) -> None:
    assert xd.labels_from_name(name) == labels


@pytest.mark.parametrize(
    ("name", "msg"),
    [("holiday_clip.mp4", "no '_label_"), ("x_label_0", "no label code"), ("x_label_B3", "unknown label"),
     ("x_label_A-B1", "mixes")],
)
def test_bad_names(name: str, msg: str) -> None:
    with pytest.raises(InputError, match=msg) as e:
        xd.labels_from_name(name, path="list.txt", line=7)
    assert (e.value.path, e.value.line) == ("list.txt", 7)


def test_parse_real_format(tmp_path: Path) -> None:
    ann = xd.parse_annotations(_ann(tmp_path, ANN))
    assert ann == {SHOOT: [(2, 10), (20, 30)], FIGHT: [(0, 5), (8, 12), (40, 48)], RIOT: [(3, 9)]}
    inc = xd.parse_annotations(_ann(tmp_path, ANN), inclusive_end=True)
    assert inc[RIOT] == [(3, 10)]


ERRORS = {
    "odd": (f"{RIOT} 1 2 3\n", "intervals", "odd number"),
    "non_integer": (f"{RIOT} 1 x\n", "number 2", "not an integer"),
    "start_after_end": (f"{RIOT} 1 2 9 4\n", "interval 2", "after end"),
    "duplicate": (f"{SHOOT}.mp4 1 2\n", "name", "listed twice (first at line 1)"),
    "no_interval": (f"{RIOT}\n", "intervals", "no interval"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_parse_errors_name_path_line_field(tmp_path: Path, case: str) -> None:
    bad, field, msg = ERRORS[case]
    p = _ann(tmp_path, f"{SHOOT} 2 10\n\n{bad}")
    with pytest.raises(InputError) as e:
        xd.parse_annotations(p)
    assert (e.value.path, e.value.line, e.value.field) == (str(p), 3, field)
    assert str(e.value).startswith(f"{p}:3: ") and msg in str(e.value)


def test_records_from_names(tmp_path: Path) -> None:
    p = _ann(tmp_path, ANN)
    recs = xd.records_from_names([NORMAL, f"{SHOOT}.mp4", FIGHT], p)
    assert [r.video_id for r in recs] == [NORMAL, SHOOT, FIGHT]
    assert (recs[0].label, recs[0].intervals, recs[0].num_frames) == ("Normal", (), None)
    assert (recs[1].label, recs[1].classes, recs[1].source_line) == ("Shooting", ("Shooting", "Explosion"), 1)
    missing = "Other__#1_label_B1-0-0"
    with pytest.raises(InputError, match=r"violent video .* has no line") as e:
        xd.records_from_names([missing], p)
    assert e.value.path == str(p)


def test_load(root: Path) -> None:
    ds = xd.load(root)
    assert ds.kind == "xd_violence" and ds.skipped == []
    assert [v.video_id for v in ds.videos] == sorted(LENGTHS)
    by = ds.by_id()
    assert (by[FIGHT].num_frames, by[FIGHT].fps) == (44, 24.0)
    assert by[FIGHT].intervals == ((0, 5), (8, 12), (40, 44))  # clipped to 44 frames
    assert by[NORMAL].intervals == () and not by[NORMAL].is_anomalous
    assert load_dataset("xd_violence", root, root / "annotations.txt").fingerprint == ds.fingerprint


def test_violent_video_without_line(root: Path) -> None:
    (root / "annotations.txt").write_text(ANN.split("\n", 1)[1])
    with pytest.raises(InputError, match=re.escape(f"violent video '{SHOOT}'")):
        xd.load(root)
    with pytest.warns(UserWarning):
        ds = xd.load(root, on_error="skip")
    assert [k for k, _ in ds.skipped] == [SHOOT] and len(ds.videos) == 3


def test_annotated_video_missing(root: Path) -> None:
    (root / f"{FIGHT}.mp4").unlink()
    ann = root / "annotations.txt"
    with pytest.raises(InputError) as e:
        xd.load(root)
    assert (e.value.path, e.value.line) == (str(ann), 2) and "not found" in str(e.value)


def test_normal_video_with_line(root: Path) -> None:
    (root / "annotations.txt").write_text(ANN + f"\n{NORMAL} 1 4\n")
    with pytest.raises(InputError, match="normal video") as e:
        xd.load(root)
    assert e.value.line == 4


def test_bad_video_name_in_folder(root: Path) -> None:
    (root / "holiday.mp4").write_bytes((root / f"{NORMAL}.mp4").read_bytes())
    with pytest.raises(InputError, match="_label_") as e:
        xd.load(root)
    assert e.value.path == str(root / "holiday.mp4")
