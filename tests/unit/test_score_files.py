"""External score files: layouts, name normalisation, validation with file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from askhint_assets.errors import InputError
from askhint_assets.evaluation import score_files as sf

XD = "Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6-0"


def _write(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_video_id_from_name():
    assert sf.video_id_from_name("Abuse/Abuse028_x264.mp4") == "Abuse028_x264"
    assert sf.video_id_from_name(" Normal_Videos_003_x264 ") == "Normal_Videos_003_x264"
    assert sf.video_id_from_name(XD) == XD
    assert sf.video_id_from_name(XD + ".MP4") == XD


def test_per_frame_csv(tmp_path):
    p = _write(tmp_path, "video,frame,score\na.mp4,1,0.2\na.mp4,0,0.1\nb,0,0.9\n" + f"{XD}.mp4,0,0.5\n")
    df = sf.read_scores(p)
    assert sf.score_kind(df) == "frame"
    assert df["_line"].to_list() == [2, 3, 4, 5]
    out = sf.to_frame_scores(df, {"a": 2, "b": 1, XD: 1}, path=p)
    np.testing.assert_array_equal(out["a"], [0.1, 0.2])
    assert set(out) == {"a", "b", XD}
    only = sf.to_frame_scores(df, {"a": 2}, videos=["a"], path=p)
    assert list(only) == ["a"]


def test_window_csv_and_parquet(tmp_path):
    df = pl.DataFrame(
        {"Video": ["v1", "v1", "v2"], "start_frame": [0, 4, 0], "end_frame": [4, 8, 100], "score": [0.2, 0.6, 1.0]}
    )
    pq = tmp_path / "w.parquet"
    df.write_parquet(pq)
    csv = tmp_path / "w.csv"
    df.write_csv(csv)
    for p in (pq, csv):
        t = sf.read_scores(p)
        assert sf.score_kind(t) == "window"
        out = sf.to_frame_scores(t, {"v1": 10, "v2": 3}, path=p)
        np.testing.assert_allclose(out["v1"], [0.2] * 4 + [0.6] * 6)  # frames 8, 9 take the nearest window
        np.testing.assert_allclose(out["v2"], [1.0] * 3)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("video,score\na,0.1\n", r"s\.csv: missing column\(s\) frame"),
        ("video,start_frame,score\na,0,0.1\n", r"missing column\(s\) end_frame"),
        ("video,frame,score\na,0,0.1\na,1,nan\n", r"s\.csv:3: score: 'nan' is missing or not a number"),
        ("video,frame,score\na,0,high\n", r"s\.csv:2: score: 'high'"),
        ("video,frame,score\na,0,0.1\na,1,\n", r"s\.csv:3: score"),
        ("video,frame,score\na,-1,0.1\n", r"s\.csv:2: frame: '-1' is not a non-negative integer"),
        ("video,frame,score\na,1.5,0.1\n", r"s\.csv:2: frame"),
        ("video,frame,score\n,0,0.1\n", r"s\.csv:2: video: empty video name"),
        ("video,start_frame,end_frame,score\na,5,5,0.1\n", r"s\.csv:2: end_frame: window \[5, 5\) is empty"),
        ("video,frame,score\n", r"no score rows"),
    ],
)
def test_read_errors_name_file_and_line(tmp_path, text, pattern):
    with pytest.raises(InputError, match=pattern):
        sf.read_scores(_write(tmp_path, text))


def test_read_errors_other(tmp_path):
    with pytest.raises(InputError, match="not found"):
        sf.read_scores(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="unknown score file type"):
        sf.read_scores(_write(tmp_path, "x", "s.txt"))
    pq = tmp_path / "b.parquet"
    pl.DataFrame({"video": ["a"], "frame": [0], "score": [True]}).write_parquet(pq)
    with pytest.raises(InputError, match=r"b\.parquet: score: column has type Boolean"):
        sf.read_scores(pq)


def test_to_frame_scores_errors(tmp_path):
    p = _write(tmp_path, "video,frame,score\na,0,0.1\na,1,0.2\na,5,0.3\nb,0,0.1\n")
    t = sf.read_scores(p)
    with pytest.raises(InputError, match=r"s\.csv:4: frame: a: frame 5 is past the video's last frame \(5 frames"):
        sf.to_frame_scores(t, {"a": 5, "b": 1}, path=p)
    with pytest.raises(InputError, match=r"a: 3 of 6 frames have no score, first: 2, 3, 4"):
        sf.to_frame_scores(t, {"a": 6, "b": 1}, path=p)
    with pytest.raises(InputError, match=r"no frame count for video\(s\): b"):
        sf.to_frame_scores(t, {"a": 6}, path=p)
    dup = _write(tmp_path, "video,frame,score\na,0,0.1\na,0,0.2\n", "d.csv")
    with pytest.raises(InputError, match=r"d\.csv:3: frame: a: frame 0 scored more than once"):
        sf.to_frame_scores(sf.read_scores(dup), {"a": 1}, path=dup)
    w = _write(tmp_path, "video,start_frame,end_frame,score\na,0,4,0.1\na,9,12,0.5\n", "w.csv")
    with pytest.raises(InputError, match=r"w\.csv:3: start_frame: a: frame 9 is past"):
        sf.to_frame_scores(sf.read_scores(w), {"a": 8}, path=w)


def test_frame_counts(tmp_path):
    p = _write(tmp_path, "video,num_frames\nAbuse028_x264.mp4,120\nb, 7 \nb,7\n", "c.csv")
    assert sf.read_frame_counts(p) == {"Abuse028_x264": 120, "b": 7}
    with pytest.raises(InputError, match=r"c\.csv:3: b: listed twice with 7 and 8"):
        sf.read_frame_counts(_write(tmp_path, "video,num_frames\nb,7\nb,8\n", "c.csv"))
    with pytest.raises(InputError, match=r"c\.csv:2: num_frames: 'x'"):
        sf.read_frame_counts(_write(tmp_path, "video,num_frames\nb,x\n", "c.csv"))
    with pytest.raises(InputError, match=r"c\.csv:2: num_frames: b: a video needs at least one frame"):
        sf.read_frame_counts(_write(tmp_path, "video,num_frames\nb,0\n", "c.csv"))
    with pytest.raises(InputError, match=r"missing column\(s\) num_frames"):
        sf.read_frame_counts(_write(tmp_path, "video,frames\nb,3\n", "c.csv"))


def test_frame_counts_from_scores(tmp_path):
    t = sf.read_scores(_write(tmp_path, "video,frame,score\na,0,0.1\na,3,0.2\nb,0,0.1\n"))
    assert sf.frame_counts_from_scores(t) == {"a": 4, "b": 1}
    w = sf.read_scores(_write(tmp_path, "video,start_frame,end_frame,score\na,0,4,0.1\n", "w.csv"))
    with pytest.raises(InputError, match="window score file"):
        sf.frame_counts_from_scores(w)
