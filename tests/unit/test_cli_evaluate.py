"""``askhint evaluate`` end to end on small files in the real annotation formats."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import average_precision_score, roc_auc_score

from askhint_assets.cli import main

# name, class, s1, e1, s2, e2 — exactly as in Temporal_Anomaly_Annotation_for_Testing_Videos.txt
UCF = """\
Abuse028_x264.mp4  Abuse  10  30  -1  -1
Arrest001_x264.mp4  Arrest  5  15  40  50
Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1
Explosion002_x264.mp4  Explosion  20  80  -1  -1
Normal_Videos_006_x264.mp4  Normal  -1  -1  -1  -1
"""
UCF_FRAMES = {
    "Abuse028_x264": 60,
    "Arrest001_x264": 64,
    "Normal_Videos_003_x264": 50,
    "Explosion002_x264": 70,  # the interval end 80 lies past the last frame: clipped
    "Normal_Videos_006_x264": 40,
}
UCF_GT = {"Abuse028_x264": [(10, 30)], "Arrest001_x264": [(5, 15), (40, 50)], "Explosion002_x264": [(20, 70)]}

XD_NAMES = [
    "Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6-0",
    "v=38GQ9L2meyE__#1_label_B1-0-0",
    "A.Beautiful.Mind.2001__#00-01-45_00-02-50_label_A",
    "v=8cTqh9tMz_I__#1_label_A",
]
XD_ANN = (  # some names carry .mp4; the file ends without a newline
    "Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6-0.mp4 4 10 20 24 30 31\nv=38GQ9L2meyE__#1_label_B1-0-0 0 8"
)
XD_FRAMES = dict(zip(XD_NAMES, (40, 24, 30, 16), strict=True))
XD_GT = {XD_NAMES[0]: [(4, 10), (20, 24), (30, 31)], XD_NAMES[1]: [(0, 8)]}


def _labels(gt: dict, counts: dict) -> dict[str, np.ndarray]:
    out = {}
    for vid, n in counts.items():
        y = np.zeros(n, dtype=int)
        for s, e in gt.get(vid, []):
            y[s : min(e, n)] = 1
        out[vid] = y
    return out


def _frame_scores(counts: dict, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {vid: np.round(rng.random(n), 3) for vid, n in counts.items()}


def _write_scores(path: Path, scores: dict[str, np.ndarray], ext: str = ".mp4") -> Path:
    rows = ["video,frame,score"]
    for vid in reversed(list(scores)):  # a different order than the annotation file
        rows += [f"{vid}{ext},{f},{s}" for f, s in enumerate(scores[vid])]
    path.write_text("\n".join(rows) + "\n")
    return path


def _write_counts(path: Path, counts: dict) -> Path:
    path.write_text("video,num_frames\n" + "".join(f"{v}.mp4,{n}\n" for v, n in counts.items()))
    return path


@pytest.fixture
def ucf(tmp_path):
    ann = tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    ann.write_text(UCF)
    scores = _frame_scores(UCF_FRAMES)
    return {
        "ann": ann,
        "scores": scores,
        "scores_csv": _write_scores(tmp_path / "scores.csv", scores),
        "counts": _write_counts(tmp_path / "counts.csv", UCF_FRAMES),
        "tmp": tmp_path,
    }


def _run(*args: str | Path):
    return CliRunner().invoke(main, ["evaluate", *map(str, args)])


def _ucf_args(ucf, scores=None, *extra):
    return ("--dataset", "ucf-crime", "--annotations", ucf["ann"], "--scores", scores or ucf["scores_csv"], *extra)


def test_ucf_json_matches_sklearn(ucf):
    res = _run(*_ucf_args(ucf, None, "--frame-counts", ucf["counts"], "--json"))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    labels = _labels(UCF_GT, UCF_FRAMES)
    y = np.concatenate([labels[v] for v in UCF_FRAMES])
    s = np.concatenate([ucf["scores"][v] for v in UCF_FRAMES])
    assert abs(out["frame_auc"] - roc_auc_score(y, s)) < 1e-9
    assert abs(out["frame_ap"] - average_precision_score(y, s)) < 1e-9
    assert out["n_videos"] == 5 and out["n_frames"] == sum(UCF_FRAMES.values())
    assert sorted(out["per_class_auc"]) == ["Abuse", "Arrest", "Explosion"]
    normals = ["Normal_Videos_003_x264", "Normal_Videos_006_x264"]
    ya = np.concatenate([labels[v] for v in ["Arrest001_x264", *normals]])
    sa = np.concatenate([ucf["scores"][v] for v in ["Arrest001_x264", *normals]])
    assert abs(out["per_class_auc"]["Arrest"] - roc_auc_score(ya, sa)) < 1e-9
    vmax = [ucf["scores"][v].max() for v in UCF_FRAMES]
    assert abs(out["video_auc"] - roc_auc_score([int(v in UCF_GT) for v in UCF_FRAMES], vmax)) < 1e-9


def test_ucf_table_and_inclusive_end(ucf):
    res = _run(*_ucf_args(ucf, None, "--frame-counts", ucf["counts"]))
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    metrics = [ln.split()[0] for ln in lines]
    assert metrics.index("auc/Abuse") < metrics.index("auc/Arrest") < metrics.index("auc/Explosion")
    assert "frame_auc" in metrics and "step-wise" in res.stdout
    half = json.loads(_run(*_ucf_args(ucf, None, "--frame-counts", ucf["counts"], "--json")).stdout)
    incl = json.loads(_run(*_ucf_args(ucf, None, "--frame-counts", ucf["counts"], "--json", "--inclusive-end")).stdout)
    assert incl["n_anomalous_frames"] == half["n_anomalous_frames"] + 3  # one more frame per interval (not clipped)
    assert incl["interval_convention"] == "inclusive-end"


def test_frame_counts_required_or_from_scores(ucf):
    res = _run(*_ucf_args(ucf))
    assert res.exit_code == 2
    assert "frame count unknown" in res.stderr and "--frame-counts" in res.stderr
    res = _run(*_ucf_args(ucf, None, "--frame-counts-from-scores", "--json"))
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n_frames"] == sum(UCF_FRAMES.values())


def test_window_scores(ucf):
    p = ucf["tmp"] / "windows.csv"
    rows = ["video,start_frame,end_frame,score"]
    expect = {}
    for i, (vid, n) in enumerate(UCF_FRAMES.items()):
        rows += [f"{vid},0,{n // 2},{0.1 * i}", f"{vid},{n // 2},{n + 16},{0.9 - 0.1 * i}"]
        expect[vid] = np.r_[np.full(n // 2, 0.1 * i), np.full(n - n // 2, 0.9 - 0.1 * i)]
    p.write_text("\n".join(rows))
    res = _run(*_ucf_args(ucf, p, "--frame-counts", ucf["counts"], "--json"))
    assert res.exit_code == 0, res.output
    labels = _labels(UCF_GT, UCF_FRAMES)
    y = np.concatenate([labels[v] for v in UCF_FRAMES])
    s = np.concatenate([expect[v] for v in UCF_FRAMES])
    out = json.loads(res.stdout)
    assert out["score_layout"] == "window"
    assert abs(out["frame_auc"] - roc_auc_score(y, s)) < 1e-9
    res = _run(*_ucf_args(ucf, p, "--frame-counts-from-scores"))
    assert res.exit_code == 2 and "window score file" in res.stderr


def test_xd_names_multi_label(tmp_path):
    ann = tmp_path / "annotations.txt"
    ann.write_text(XD_ANN)
    scores = _frame_scores(XD_FRAMES, seed=3)
    p = _write_scores(tmp_path / "xd.csv", scores, ext="")
    res = _run(
        "--dataset", "xd-violence", "--annotations", ann, "--scores", p,
        "--frame-counts", _write_counts(tmp_path / "c.csv", XD_FRAMES), "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    labels = _labels(XD_GT, XD_FRAMES)
    y = np.concatenate([labels[v] for v in XD_NAMES])
    s = np.concatenate([scores[v] for v in XD_NAMES])
    assert abs(out["frame_auc"] - roc_auc_score(y, s)) < 1e-9
    assert abs(out["frame_ap"] - average_precision_score(y, s)) < 1e-9
    assert sorted(out["per_class_auc"]) == ["Car accident", "Explosion", "Fighting", "Shooting"]
    assert out["per_class_auc"]["Explosion"] == out["per_class_auc"]["Shooting"]  # the same one video
    assert out["n_videos"] == 4 and out["n_anomalous_videos"] == 2


def test_missing_scores_error_or_skip(ucf):
    scores = dict(ucf["scores"])
    del scores["Normal_Videos_006_x264"]
    p = _write_scores(ucf["tmp"] / "partial.csv", scores)
    res = _run(*_ucf_args(ucf, p, "--frame-counts", ucf["counts"]))
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and "partial.csv" in res.stderr
    assert "Normal_Videos_006_x264" in res.stderr and "Traceback" not in res.output
    res = _run(*_ucf_args(ucf, p, "--frame-counts", ucf["counts"], "--skip-missing", "--json"))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n_skipped"] == 1 and out["n_videos"] == 4
    assert "warning: skipping 1 video" in res.stderr


@pytest.mark.parametrize(
    ("content", "name", "pattern"),
    [
        ("video,frame,score\nAbuse028_x264.mp4,0,oops\n", "bad.csv", r"bad\.csv:2: score"),
        ("video,score\nAbuse028_x264.mp4,0.1\n", "nocol.csv", r"nocol\.csv: missing column"),
        ("video,frame,score\nAbuse028_x264.mp4,99,0.1\n", "past.csv", r"past\.csv:2: frame: Abuse028_x264: frame 99"),
    ],
)
def test_bad_score_files_exit_2_naming_file(ucf, content, name, pattern):
    p = ucf["tmp"] / name
    p.write_text(content)
    res = _run(*_ucf_args(ucf, p, "--frame-counts", ucf["counts"], "--skip-missing"))
    assert res.exit_code == 2
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and re.search(pattern, errors[0]), res.stderr
    assert "Traceback" not in res.output


def test_bad_annotation_and_counts_exit_2(ucf):
    bad = ucf["tmp"] / "ann.txt"
    bad.write_text("Abuse028_x264.mp4  Abuse  10  x  -1  -1\n")
    res = _run(
        "--dataset", "ucf-crime", "--annotations", bad, "--scores", ucf["scores_csv"], "--frame-counts-from-scores"
    )
    assert res.exit_code == 2 and "ann.txt:1" in res.stderr
    counts = ucf["tmp"] / "counts_bad.csv"
    counts.write_text("video,num_frames\nAbuse028_x264,ten\n")
    res = _run(*_ucf_args(ucf, None, "--frame-counts", counts))
    assert res.exit_code == 2 and "counts_bad.csv:2" in res.stderr
    res = _run(*_ucf_args(ucf, ucf["tmp"] / "missing.csv"))
    assert res.exit_code == 2 and "missing.csv" in res.output


def test_db_rows(ucf):
    db = ucf["tmp"] / "db" / "askhint.duckdb"
    args = _ucf_args(ucf, None, "--frame-counts", ucf["counts"], "--json", "--db", db, "--bootstrap", "20")
    out = json.loads(_run(*args).stdout)
    _run(*args)  # the same report again replaces its rows
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT metric, value, n_videos, n_frames, report_id FROM eval_reports ORDER BY metric"
    ).fetchall()
    con.close()
    metrics = {r[0]: r[1] for r in rows}
    assert len(rows) == len(metrics) == 9  # 4 headline + 3 classes + 2 CI bounds
    assert abs(metrics["frame_auc"] - out["frame_auc"]) < 1e-12
    assert {r[2] for r in rows} == {5} and {r[3] for r in rows} == {sum(UCF_FRAMES.values())}
    assert {r[4] for r in rows} == {out["report_id"]}
    assert out["ci"]["n_boot"] == 20


def test_interval_past_video_end_is_an_error(ucf):
    counts = dict(UCF_FRAMES, Explosion002_x264=20)  # interval 20-80 starts at the 21st frame
    scores = _frame_scores(counts)
    p = _write_scores(ucf["tmp"] / "short.csv", scores)
    res = _run(*_ucf_args(ucf, p, "--frame-counts", _write_counts(ucf["tmp"] / "short_counts.csv", counts)))
    assert res.exit_code == 2
    assert "Temporal_Anomaly_Annotation_for_Testing_Videos.txt:4" in res.stderr and "Explosion002_x264" in res.stderr
