"""Small report figures (6x4 in, 100 dpi), returned as PNG bytes.

Figures are built with ``matplotlib.figure.Figure`` and rendered by Agg, without pyplot: no global
state, no display needed, safe in threads.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # matplotlib and scikit-learn load on the first figure (step processes start faster)
    from matplotlib.figure import Figure

FIGSIZE = (6.0, 4.0)
DPI = 100
MAX_CURVE_POINTS = 2000


def _png(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _figure(**kw) -> Figure:
    from matplotlib.figure import Figure

    return Figure(**kw)


def _axes():
    fig = _figure(figsize=FIGSIZE, dpi=DPI)
    return fig, fig.subplots()


def downsample_curve(x: np.ndarray, y: np.ndarray, max_points: int = MAX_CURVE_POINTS):
    """At most ``max_points`` evenly spaced points of a curve, first and last kept (drawing only)."""
    if len(x) <= max_points:
        return x, y
    idx = np.unique(np.linspace(0, len(x) - 1, max_points).round().astype(int))
    return x[idx], y[idx]


def roc_label(label: str, auc: float) -> str:
    """A legend entry: the curve's name and its AUC in percent, once (``ASK-Hint (AUC 94.89)``)."""
    return f"{label} (AUC {100 * auc:.2f})"


def roc_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str) -> Figure:
    """The ROC figure of :func:`roc_plot` (its legend can be read back: ``fig.axes[0].get_legend()``)."""
    from sklearn.metrics import roc_curve

    fig, ax = _axes()
    for label, (y_true, y_score) in curves.items():
        fpr, tpr, _ = roc_curve(y_true, y_score)
        auc = float(np.trapezoid(tpr, fpr))
        fx, ty = downsample_curve(fpr, tpr)
        ax.plot(fx, ty, label=roc_label(label, auc))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=title, xlim=(0, 1), ylim=(0, 1))
    if curves:
        ax.legend(loc="lower right", fontsize=8)
    return fig


def roc_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str) -> bytes:
    """ROC curves ``{label: (y_true, y_score)}`` as PNG; the curve uses every point, only the drawing is
    downsampled. Each legend entry is the label with its AUC appended once (:func:`roc_label`)."""
    return _png(roc_figure(curves, title))


def per_class_bar(per_class: Mapping[str, Mapping[str, float]], title: str) -> bytes:
    """Grouped bars ``{class: {series: auc}}`` (e.g. ASK-Hint vs abstract prompt); NaN bars are empty."""
    classes = list(per_class)
    series = list(dict.fromkeys(s for vals in per_class.values() for s in vals))
    fig, ax = _axes()
    width = 0.8 / max(1, len(series))
    x = np.arange(len(classes))
    for i, s in enumerate(series):
        vals = [per_class[c].get(s, np.nan) for c in classes]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=s)
    ax.set_xticks(x, classes, rotation=45, ha="right", fontsize=8)
    ax.set(ylabel="Frame AUC", title=title, ylim=(0, 1))
    if series:
        ax.legend(fontsize=8)
    return _png(fig)


def ablation_plot(sizes: Sequence[float], aucs: Sequence[float], title: str, xlabel: str = "Questions") -> bytes:
    """AUC against an ablated quantity (e.g. number of guiding questions)."""
    fig, ax = _axes()
    ax.plot(list(sizes), list(aucs), marker="o")
    ax.set(xlabel=xlabel, ylabel="Frame AUC", title=title)
    ax.grid(alpha=0.3)
    return _png(fig)


def similarity_heatmap(sim: np.ndarray, labels: Sequence[str], title: str) -> bytes:
    """Cosine-similarity matrix as a heatmap; tick labels (e.g. each question's class) on both axes."""
    n = len(labels)
    fig = _figure(figsize=(7.0, 6.0), dpi=DPI)
    ax = fig.subplots()
    im = ax.imshow(sim, vmin=-0.2, vmax=1.0, cmap="viridis")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    step = max(1, n // 40)
    ticks = list(range(0, n, step))
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=90, fontsize=6)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=6)
    ax.set_title(title)
    return _png(fig)


def trade_plot(series: Mapping[str, Sequence[tuple[float, float, str]]], title: str) -> bytes:
    """Frame AUC against requests per video: one line per template, a point per granularity (labelled)."""
    from matplotlib.ticker import ScalarFormatter

    fig, ax = _axes()
    for i, (name, points) in enumerate(series.items()):  # styles differ, so equal lines stay visible
        pts = sorted(points)
        ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker="os^dv"[i % 5],
                linestyle=["-", "--", ":"][i % 3], markersize=8 - 2 * (i % 3), label=name)
        for x, y, label in pts:
            ax.annotate(label, (x, 100 * y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.set(xlabel="Requests per video (log)", ylabel="Frame AUC (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
