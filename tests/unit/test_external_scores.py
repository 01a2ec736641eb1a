"""``evaluate_score_file`` (the body of ``askhint evaluate``) called directly: no click, warnings to a callable."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from askhint_assets.pipeline.external_scores import evaluate_score_file
from askhint_assets.store import Store
from askhint_assets.store.predictions import frame_auc_of_reports

ANNOTATIONS = "Abuse001_x264.mp4  Abuse  2  5  -1  -1\nNormal_Videos_001_x264.mp4  Normal  -1  -1  -1  -1\n" \
              "Arrest001_x264.mp4  Arrest  0  2  -1  -1\n"
SCORES = {"Abuse001_x264": [.1, .2, .9, .8, .7, .1], "Normal_Videos_001_x264": [.3, .2, .6, .1],
          "Extra_x264": [.5, .5]}
TRUTH = {"Abuse001_x264": [0, 0, 1, 1, 1, 0], "Normal_Videos_001_x264": [0, 0, 0, 0]}


def test_scores_are_joined_by_name_warned_about_and_stored(tmp_path):
    ann = tmp_path / "ann.txt"
    ann.write_text(ANNOTATIONS)
    scores = tmp_path / "scores.csv"
    scores.write_text("video,frame,score\n" + "".join(f"{v}.mp4,{i},{s}\n" for v, ss in SCORES.items()
                                                      for i, s in enumerate(ss)))
    warnings: list[str] = []
    report, rows = evaluate_score_file("ucf_crime", ann, scores, None, True, False, "mean", 0.5, 0, 0,
                                       skip_missing=True, db=tmp_path / "db.duckdb", warn=warnings.append)
    y = np.concatenate([TRUTH[v] for v in TRUTH])
    s = np.concatenate([SCORES[v] for v in TRUTH])
    got = {r["metric"]: r["value"] for r in rows}
    assert abs(got["frame_auc"] - roc_auc_score(y, s)) < 1e-12
    assert abs(got["frame_ap"] - average_precision_score(y, s)) < 1e-12
    assert report["skipped_videos"] == ["Arrest001_x264"] and report["n_videos"] == 2
    assert warnings == [
        "warning: skipping 1 video(s) without scores: Arrest001_x264",
        "warning: ignoring 1 scored video(s) not in the annotations: Extra_x264",
        f"wrote {len(rows)} rows to {tmp_path / 'db.duckdb'} (eval_reports)",
    ]
    stored = frame_auc_of_reports(Store(tmp_path / "db.duckdb"), [report["report_id"]])
    assert stored.height == 1 and abs(stored.row(0, named=True)["value"] - got["frame_auc"]) < 1e-12
