"""Published frame-level results to show beside ours (as gathered in shared/reference.md, in %)."""

from __future__ import annotations

# method -> (kind, UCF-Crime AUC, XD-Violence AP, XD-Violence AUC); None = not gathered
PUBLISHED: dict[str, tuple[str, float | None, float | None, float | None]] = {
    "zero-shot CLIP": ("training-free", 53.16, None, None),
    "LLaVA-1.5": ("training-free", 72.84, None, None),
    "Video-LLaMA2": ("training-free", 74.42, None, None),
    "LAVAD (CVPR'24)": ("training-free", 80.28, 62.01, 85.36),
    "EventVAD": ("training-free", 82.03, 64.04, 87.51),
    "VADTree": ("training-free", 84.74, 68.85, 90.55),
    "Flashback": ("training-free", 87.29, 75.13, 90.54),
    "ASK-Hint (paper)": ("training-free", 89.83, None, 90.31),
    "ASK-Hint abstract prompt (paper)": ("training-free", 74.50, None, None),
    "Holmes-VAD": ("instruction-tuned", 89.51, 90.67, None),
    "VadCLIP": ("weakly supervised", 88.02, 84.51, None),
}


def published_rows() -> list[dict[str, object]]:
    """The table as rows for reports; ``-`` where a number was not gathered."""
    fmt = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
    return [
        {"method": m, "kind": k, "UCF AUC": fmt(u), "XD AP": fmt(ap), "XD AUC": fmt(a)}
        for m, (k, u, ap, a) in PUBLISHED.items()
    ]
