"""Pooled frame-level metrics: agree with sklearn, join by video id, degenerate cases."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from askhint_assets.datasets.base import VideoRecord
from askhint_assets.errors import InputError
from askhint_assets.evaluation import metrics as m


def _videos() -> list[VideoRecord]:
    return [
        VideoRecord("Abuse001", "Abuse", ("Abuse",), ((10, 30),), num_frames=60),
        VideoRecord("Arrest002", "Arrest", ("Arrest",), ((5, 15), (40, 70)), num_frames=64),  # end clipped
        VideoRecord("multi_label_B1-B2-0", "Fighting", ("Fighting", "Shooting"), ((0, 12),), num_frames=40),
        VideoRecord("Normal_1", "Normal", (), (), num_frames=50),
        VideoRecord("Normal_2", "Normal", (), (), num_frames=33),
    ]


def _scores(videos: list[VideoRecord], seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for v in videos:
        y = v.frame_labels()
        out[v.video_id] = np.round(rng.random(v.num_frames) * 0.6 + 0.35 * y, 2)  # rounded: ties
    return out


def _manual(videos, scores):
    y = np.concatenate([v.frame_labels() for v in videos])
    s = np.concatenate([scores[v.video_id] for v in videos])
    return y, s


def test_pooled_matches_sklearn():
    videos = _videos()
    scores = _scores(videos)
    y, s = _manual(videos, scores)
    r = m.evaluate(scores, videos)
    assert abs(r.frame_auc - roc_auc_score(y, s)) < 1e-9
    assert abs(r.frame_ap - average_precision_score(y, s)) < 1e-9
    assert r.n_frames == len(y) == 60 + 64 + 40 + 50 + 33
    assert r.n_videos == 5 and r.n_anomalous_videos == 3
    assert r.n_anomalous_frames == 20 + 10 + 24 + 12


def test_join_by_id_not_position():
    videos = _videos()
    scores = _scores(videos)
    base = m.evaluate(scores, videos)
    shuffled = videos[:]
    random.Random(3).shuffle(shuffled)
    keys = list(scores)
    random.Random(4).shuffle(keys)
    r = m.evaluate({k: scores[k] for k in keys}, shuffled)
    assert r.frame_auc == pytest.approx(base.frame_auc, abs=1e-12)
    assert r.per_class_auc == pytest.approx(base.per_class_auc, abs=1e-12)
    y, s, vi = m.pooled_frame_arrays(scores, shuffled)
    for i, v in enumerate(shuffled):
        np.testing.assert_array_equal(s[vi == i], scores[v.video_id])
        np.testing.assert_array_equal(y[vi == i], v.frame_labels())


def test_missing_and_mismatched_videos_are_named():
    videos = _videos()
    scores = _scores(videos)
    del scores["Normal_2"]
    with pytest.raises(InputError, match="Normal_2"):
        m.pooled_frame_arrays(scores, videos)
    scores = _scores(videos)
    scores["Abuse001"] = scores["Abuse001"][:-1]
    with pytest.raises(InputError, match=r"Abuse001.*59 frame scores.*60"):
        m.pooled_frame_arrays(scores, videos)
    scores = _scores(videos)
    scores["Normal_1"][3] = np.nan
    with pytest.raises(InputError, match="Normal_1"):
        m.pooled_frame_arrays(scores, videos)


def test_num_frames_unknown_takes_score_length():
    v = VideoRecord("a", "X", ("X",), ((2, 4),))
    y, s, _ = m.pooled_frame_arrays({"a": np.arange(6.0)}, [v])
    assert y.tolist() == [0, 0, 1, 1, 0, 0] and len(s) == 6


def test_per_class_against_normals_multi_label_in_each():
    videos = _videos()
    scores = _scores(videos)
    r = m.evaluate(scores, videos)
    assert list(r.per_class_auc) == ["Abuse", "Arrest", "Fighting", "Shooting"]
    normals = [v for v in videos if not v.is_anomalous]
    for cls in r.per_class_auc:
        members = [v for v in videos if cls in v.classes] + normals
        y, s = _manual(members, scores)
        assert abs(r.per_class_auc[cls] - roc_auc_score(y, s)) < 1e-9
    assert r.per_class_auc["Fighting"] == r.per_class_auc["Shooting"]


def test_per_class_uses_label_when_classes_empty():
    videos = [
        VideoRecord("a", "Arson", (), ((0, 2),), num_frames=4),
        VideoRecord("n", "Normal", (), (), num_frames=4),
    ]
    r = m.evaluate({"a": np.array([0.9, 0.8, 0.1, 0.2]), "n": np.array([0.1, 0.3, 0.2, 0.0])}, videos)
    assert r.per_class_auc == {"Arson": 1.0}


def test_video_auc_uses_max_frame_score():
    videos = _videos()
    scores = _scores(videos)
    r = m.evaluate(scores, videos)
    vmax = [scores[v.video_id].max() for v in videos]
    labels = [int(v.is_anomalous) for v in videos]
    assert abs(r.video_auc - roc_auc_score(labels, vmax)) < 1e-9


def test_false_alarm_rate_on_normal_frames():
    assert m.false_alarm_rate(np.array([0.1, 0.5, 0.6, 0.9])) == 0.5  # 0.5 itself is not an alarm
    videos = _videos()
    scores = _scores(videos)
    normal = np.concatenate([scores["Normal_1"], scores["Normal_2"]])
    assert m.evaluate(scores, videos, threshold=0.3).false_alarm_rate == pytest.approx(np.mean(normal > 0.3))


def test_weighted_auc_equals_sklearn_and_concatenation():
    videos = _videos()
    scores = _scores(videos)
    y, s, vi = m.pooled_frame_arrays(scores, videos)
    counts = np.array([2, 0, 1, 3, 1], dtype=float)
    order, ys, ends = m._auc_state(y, s)
    got = m._weighted_auc(ys, counts[vi][order], ends)
    assert abs(got - roc_auc_score(y, s, sample_weight=counts[vi])) < 1e-9
    resampled = [v for v, c in zip(videos, counts, strict=True) for _ in range(int(c))]
    ry, rs = _manual(resampled, scores)
    assert abs(got - roc_auc_score(ry, rs)) < 1e-9


def test_bootstrap_deterministic_and_brackets_estimate():
    videos = _videos()
    scores = _scores(videos)
    a = m.evaluate(scores, videos, n_boot=200, seed=7)
    b = m.evaluate(scores, videos, n_boot=200, seed=7)
    c = m.evaluate(scores, videos, n_boot=200, seed=8)
    assert a.ci == b.ci
    assert a.ci != c.ci
    assert a.ci["low"] <= a.frame_auc <= a.ci["high"]
    assert 0 < a.ci["n_valid"] <= 200
    assert [r["metric"] for r in a.to_rows()][-2:] == ["frame_auc_ci_low", "frame_auc_ci_high"]


def test_degenerate_cases_give_nan_and_notes():
    normals = [VideoRecord(f"n{i}", "Normal", (), (), num_frames=5) for i in range(2)]
    scores = {v.video_id: np.linspace(0, 1, 5) for v in normals}
    r = m.evaluate(scores, normals, n_boot=10)
    assert math.isnan(r.frame_auc) and math.isnan(r.frame_ap) and math.isnan(r.video_auc)
    assert r.per_class_auc == {}
    assert any("only one class" in n for n in r.notes)
    assert math.isnan(r.ci["low"]) and r.ci["n_valid"] == 0
    out = r.to_json()
    assert out["frame_auc"] is None
    json.dumps(out, allow_nan=False)

    only_anomalous = [VideoRecord("a", "Abuse", ("Abuse",), ((0, 2),), num_frames=4)]
    r = m.evaluate({"a": np.array([0.9, 0.8, 0.1, 0.2])}, only_anomalous)
    assert r.frame_auc == 1.0
    assert math.isnan(r.video_auc) and math.isnan(r.false_alarm_rate)
    assert r.per_class_auc["Abuse"] == 1.0  # the class video's own normal frames are negatives too

    all_frames = [VideoRecord("a", "Abuse", ("Abuse",), ((0, 9),), num_frames=4)]
    r = m.evaluate({"a": np.array([0.9, 0.8, 0.1, 0.2])}, all_frames)
    assert math.isnan(r.per_class_auc["Abuse"])
    assert any("auc/Abuse undefined" in n for n in r.notes)


def test_rows_and_json_shape():
    videos = _videos()
    r = m.evaluate(_scores(videos), videos)
    rows = r.to_rows()
    names = [x["metric"] for x in rows]
    assert names[:4] == ["frame_auc", "frame_ap", "video_auc", "false_alarm_rate"]
    assert names[4:] == ["auc/Abuse", "auc/Arrest", "auc/Fighting", "auc/Shooting"]
    j = r.to_json()
    assert {"frame_auc", "frame_ap", "video_auc", "per_class_auc", "n_videos", "n_frames"} <= set(j)
    assert "step-wise" in j["ap_kind"]


def test_plots_are_small_pngs():
    from askhint_assets.evaluation import plots

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200_000)
    s = rng.random(200_000) + 0.3 * y
    png = plots.roc_plot({"ASK-Hint": (y, s), "abstract": (y, rng.random(200_000))}, "UCF-Crime")
    bars = plots.per_class_bar({"Abuse": {"ASK-Hint": 0.9, "abstract": 0.6}, "Arson": {"ASK-Hint": 0.8}}, "per class")
    abl = plots.ablation_plot([3, 6, 12, 65], [0.85, 0.89, 0.8, 0.67], "questions")
    for img in (png, bars, abl):
        assert img[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(img[16:20], "big") == 600 and int.from_bytes(img[20:24], "big") == 400
    x, yy = plots.downsample_curve(np.linspace(0, 1, 10_000), np.linspace(0, 1, 10_000), 100)
    assert len(x) == 100 and x[0] == 0 and x[-1] == 1 and len(yy) == 100


def test_roc_legend_carries_each_curves_auc_once():
    """The legend names each curve with its own AUC (scikit-learn's, independently), exactly once; the
    README's old screenshot showed ``ASK-Hint (AUC 64.61) (AUC 64.61)`` for two identical curves."""
    from sklearn.metrics import roc_auc_score

    from askhint_assets.evaluation import plots

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 5_000)
    curves = {"ASK-Hint": (y, rng.random(5_000) + 0.8 * y), "abstract prompt": (y, rng.random(5_000) + 0.2 * y)}
    fig = plots.roc_figure(curves, "demo")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    want = [f"{name} (AUC {100 * roc_auc_score(*yc):.2f})" for name, yc in curves.items()]
    assert texts == want
    assert all(t.count("AUC") == 1 for t in texts)
    assert texts[0] != texts[1]  # two different curves, two different AUCs
    assert plots.roc_plot(curves, "demo")[:8] == b"\x89PNG\r\n\x1a\n"

