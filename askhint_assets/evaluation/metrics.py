"""Frame-level metrics with the literature's protocol: one ROC over all test frames, pooled.

Frame scores are joined to ground truth by video id, never by position. Every metric is computed
on the pooled frames of all videos (normal ones included); per-video AUCs are never averaged.
Degenerate inputs (one class only) give NaN plus a note, not an exception.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from askhint_assets.datasets.base import VideoRecord
from askhint_assets.errors import InputError

AP_KIND = "sklearn average_precision_score (step-wise, not trapezoidal)"


def pooled_frame_arrays(
    frame_scores: Mapping[str, np.ndarray], videos: Sequence[VideoRecord]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate every video's frame labels and scores, joined by ``video_id``.

    Returns ``(y_true int8, y_score float64, video_index int)`` where ``video_index[i]`` is the
    position in ``videos`` of frame ``i``'s video. A video's score vector must have exactly
    ``num_frames`` entries; a record without ``num_frames`` takes the score vector's length.
    Raises InputError naming the video for missing scores, a length mismatch or non-finite scores.
    """
    seen: set[str] = set()
    ys, ss, idx = [], [], []
    for i, v in enumerate(videos):
        if v.video_id in seen:
            raise InputError("video listed twice", field=v.video_id)
        seen.add(v.video_id)
        if v.video_id not in frame_scores:
            raise InputError("no frame scores for this video", field=v.video_id)
        s = np.asarray(frame_scores[v.video_id], dtype=np.float64).ravel()
        n = v.num_frames if v.num_frames is not None else len(s)
        if len(s) != n:
            raise InputError(f"{len(s)} frame scores but the video has {n} frames", field=v.video_id)
        if not np.all(np.isfinite(s)):
            raise InputError("frame scores contain NaN or infinity", field=v.video_id)
        ys.append(v.frame_labels(n))
        ss.append(s)
        idx.append(np.full(n, i, dtype=np.int64))
    if not ys:
        return np.zeros(0, np.int8), np.zeros(0, np.float64), np.zeros(0, np.int64)
    return np.concatenate(ys), np.concatenate(ss), np.concatenate(idx)


def _two_classes(y: np.ndarray) -> bool:
    return len(y) > 0 and 0 < int(np.sum(y)) < len(y)


def frame_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Pooled frame-level ROC-AUC (sklearn ``roc_auc_score``); NaN if only one class is present."""
    if not _two_classes(np.asarray(y_true)):
        return math.nan
    from sklearn.metrics import roc_auc_score  # loaded on first use: step processes start faster

    return float(roc_auc_score(y_true, y_score))


def frame_ap(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Pooled frame-level AP: sklearn ``average_precision_score``, the step-wise sum
    ``Σ (R_n - R_{n-1}) P_n`` — not the trapezoidal PR area some codes report. NaN without positives."""
    y = np.asarray(y_true)
    if len(y) == 0 or int(np.sum(y)) == 0:
        return math.nan
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, y_score))


def _video_classes(v: VideoRecord) -> tuple[str, ...]:
    if not v.is_anomalous:
        return ()
    return tuple(v.classes) if v.classes else (v.label,)


def video_auc(y_score: np.ndarray, video_index: np.ndarray, videos: Sequence[VideoRecord]) -> float:
    """Video-level ROC-AUC: a video's score is its max frame score, its label ``is_anomalous``."""
    if len(videos) == 0:
        return math.nan
    vmax = np.full(len(videos), -np.inf)
    np.maximum.at(vmax, video_index, y_score)
    labels = np.array([v.is_anomalous for v in videos], dtype=np.int8)
    present = np.isfinite(vmax)  # videos with zero frames have no score
    return frame_auc(labels[present], vmax[present])


def per_class_auc(
    y_true: np.ndarray, y_score: np.ndarray, video_index: np.ndarray, videos: Sequence[VideoRecord]
) -> dict[str, float]:
    """Pooled frame AUC per anomaly class: that class's videos' frames against all normal videos'
    frames. A multi-label video counts in each of its classes. Sorted by class name."""
    normal = np.array([not v.is_anomalous for v in videos], dtype=bool)
    members: dict[str, list[int]] = {}
    for i, v in enumerate(videos):
        for c in _video_classes(v):
            members.setdefault(c, []).append(i)
    out: dict[str, float] = {}
    for c in sorted(members):
        keep = normal.copy()
        keep[members[c]] = True
        mask = keep[video_index]
        out[c] = frame_auc(y_true[mask], y_score[mask])
    return out


def false_alarm_rate(normal_scores: np.ndarray, threshold: float = 0.5) -> float:
    """Share of normal videos' frames flagged anomalous (``score > threshold``; a score equal to the
    threshold, e.g. 0.5 for "no answer", is not an alarm). NaN without normal frames."""
    s = np.asarray(normal_scores, dtype=np.float64)
    return float(np.mean(s > threshold)) if len(s) else math.nan


def _auc_state(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort once (scores descending) and find the last index of each run of tied scores."""
    order = np.argsort(-np.asarray(y_score, dtype=np.float64), kind="mergesort")
    s = np.asarray(y_score, dtype=np.float64)[order]
    ends = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    return order, np.asarray(y_true)[order].astype(np.float64), ends


def _weighted_auc(y_sorted: np.ndarray, w_sorted: np.ndarray, ends: np.ndarray) -> float:
    """ROC-AUC with sample weights on pre-sorted data; equals sklearn's with ``sample_weight``."""
    tp = np.r_[0.0, np.cumsum(w_sorted * y_sorted)[ends]]
    fp = np.r_[0.0, np.cumsum(w_sorted * (1.0 - y_sorted))[ends]]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return math.nan
    return float(np.trapezoid(tp / tp[-1], fp / fp[-1]))


def bootstrap_ci(
    y_true: np.ndarray,
    y_score: np.ndarray,
    video_index: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Percentile CI of pooled frame AUC, resampling videos with replacement.

    A video drawn k times contributes its frames k times, computed as frame weights on one sorted
    pass (identical to concatenating the copies). Resamples with one class only are dropped
    (``n_valid`` counts the rest). Deterministic for a given ``seed``.
    """
    video_index = np.asarray(video_index)
    n_videos = int(video_index.max()) + 1 if len(video_index) else 0
    rng = np.random.default_rng(seed)
    order, y_sorted, ends = _auc_state(y_true, y_score)
    vid_sorted = video_index[order]
    aucs = []
    for _ in range(n_boot):
        counts = np.bincount(rng.integers(0, n_videos, n_videos), minlength=n_videos).astype(np.float64)
        a = _weighted_auc(y_sorted, counts[vid_sorted], ends)
        if not math.isnan(a):
            aucs.append(a)
    if aucs:
        low, high = np.quantile(aucs, [alpha / 2, 1 - alpha / 2])
    else:
        low = high = math.nan
    return {
        "low": float(low),
        "high": float(high),
        "alpha": alpha,
        "n_boot": n_boot,
        "n_valid": len(aucs),
        "seed": seed,
    }


def _json_num(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_num(v) for k, v in x.items()}
    return x


@dataclass
class EvalResult:
    """Every metric of one evaluation; NaN where undefined (see ``notes``)."""

    frame_auc: float
    frame_ap: float
    video_auc: float
    per_class_auc: dict[str, float]
    false_alarm_rate: float
    n_videos: int
    n_frames: int
    ci: dict[str, Any] | None = None
    threshold: float = 0.5
    n_anomalous_videos: int = 0
    n_anomalous_frames: int = 0
    notes: list[str] = field(default_factory=list)

    def to_rows(self) -> list[dict[str, Any]]:
        """``{"metric", "value"}`` rows: headline metrics, ``auc/<Class>`` rows, CI bounds if any."""
        rows = [
            {"metric": "frame_auc", "value": self.frame_auc},
            {"metric": "frame_ap", "value": self.frame_ap},
            {"metric": "video_auc", "value": self.video_auc},
            {"metric": "false_alarm_rate", "value": self.false_alarm_rate},
        ]
        rows += [{"metric": f"auc/{c}", "value": v} for c, v in sorted(self.per_class_auc.items())]
        if self.ci is not None:
            rows += [
                {"metric": "frame_auc_ci_low", "value": self.ci["low"]},
                {"metric": "frame_auc_ci_high", "value": self.ci["high"]},
            ]
        return rows

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN → null): ``frame_auc, frame_ap, video_auc, per_class_auc,
        n_videos, n_frames`` plus ``false_alarm_rate, threshold, ci, ap_kind, notes`` and counts."""
        return _json_num(
            {
                "frame_auc": self.frame_auc,
                "frame_ap": self.frame_ap,
                "video_auc": self.video_auc,
                "per_class_auc": dict(sorted(self.per_class_auc.items())),
                "n_videos": self.n_videos,
                "n_frames": self.n_frames,
                "n_anomalous_videos": self.n_anomalous_videos,
                "n_anomalous_frames": self.n_anomalous_frames,
                "false_alarm_rate": self.false_alarm_rate,
                "threshold": self.threshold,
                "ci": self.ci,
                "ap_kind": AP_KIND,
                "notes": list(self.notes),
            }
        )


def evaluate(
    frame_scores: Mapping[str, np.ndarray],
    videos: Sequence[VideoRecord],
    *,
    threshold: float = 0.5,
    n_boot: int = 0,
    seed: int = 0,
    alpha: float = 0.05,
) -> EvalResult:
    """All metrics for ``videos`` (joined to ``frame_scores`` by id); ``n_boot > 0`` adds a CI."""
    y, s, vi = pooled_frame_arrays(frame_scores, videos)
    notes: list[str] = []
    n_pos = int(y.sum())
    if not _two_classes(y):
        notes.append(f"frame_auc/frame_ap undefined: pooled frames hold only one class ({n_pos} anomalous of {len(y)})")
    anomalous = [v.is_anomalous for v in videos]
    if all(anomalous) or not any(anomalous):
        notes.append("video_auc undefined: all videos are " + ("anomalous" if any(anomalous) else "normal"))
    pcs = per_class_auc(y, s, vi, videos)
    for c, a in pcs.items():
        if math.isnan(a):
            notes.append(f"auc/{c} undefined: needs anomalous frames of {c} and normal-video frames")
    normal_mask = ~np.array(anomalous, dtype=bool)[vi] if len(vi) else np.zeros(0, bool)
    far = false_alarm_rate(s[normal_mask], threshold)
    if math.isnan(far):
        notes.append("false_alarm_rate undefined: no normal videos")
    ci = bootstrap_ci(y, s, vi, n_boot=n_boot, seed=seed, alpha=alpha) if n_boot > 0 else None
    return EvalResult(
        frame_auc=frame_auc(y, s),
        frame_ap=frame_ap(y, s),
        video_auc=video_auc(s, vi, videos),
        per_class_auc=pcs,
        false_alarm_rate=far,
        n_videos=len(videos),
        n_frames=len(y),
        ci=ci,
        threshold=threshold,
        n_anomalous_videos=sum(anomalous),
        n_anomalous_frames=n_pos,
        notes=notes,
    )
