"""Print the README's demo table from a home where `make demo` ran (its DuckDB, nothing recomputed).

    python bench/demo_table.py [--home DIR]      # default: $ASKHINT_HOME, else ./.askhint
    make demo-table                              # the same for make demo's own home

Prints the smoke model's name and weights sha256 (what makes the numbers reproducible), the demo's
size and the frame-level pooled AUCs of the latest pipeline report, as the Markdown table of the README's
"Measured figures". Two clones that print the same sha256 print the same table, digit for digit.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRANULARITY = {"window": "window ({window_s:g} s, stride {stride_s:g} s)", "video": "video (one answer per video)"}


def latest_metrics(store, dataset: str) -> dict[tuple[str, str, str], float]:
    """``(granularity, template, metric) → value`` of the newest pipeline report of ``dataset``."""
    rows = store.query(
        "SELECT granularity, template, metric, value FROM eval_reports WHERE source = 'pipeline' AND dataset = ? "
        "QUALIFY rank() OVER (PARTITION BY granularity, template, metric ORDER BY created_at DESC) = 1",
        [dataset],
    )
    return {(g, t, m): v for g, t, m, v in rows.iter_rows()}


def table(metrics: dict[tuple[str, str, str], float], window_s: float, stride_s: float) -> str:
    def pct(key: tuple[str, str, str]) -> str:
        return f"{100 * metrics[key]:.2f}" if key in metrics else "—"

    lines = ["| granularity | ASK-Hint frame AUC | abstract prompt frame AUC | ASK-Hint video AUC |",
             "|---|---|---|---|"]
    for g in ("window", "video"):
        name = GRANULARITY[g].format(window_s=window_s, stride_s=stride_s)
        lines.append(f"| {name} | {pct((g, 'askhint', 'frame_auc'))} | {pct((g, 'abstract', 'frame_auc'))} "
                     f"| {pct((g, 'askhint', 'video_auc'))} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=None, help="ASKHINT_HOME of the demo (default: $ASKHINT_HOME)")
    a = ap.parse_args(argv)
    if a.home is not None:
        os.environ["ASKHINT_HOME"] = str(a.home.resolve())
    from askhint_assets import paths
    from askhint_assets.demo import smoke_model
    from askhint_assets.settings_file import load_settings
    from askhint_assets.store import Store

    if not paths.db_path().is_file():
        sys.exit(f"{paths.db_path()}: no DuckDB there; run `make demo` first")
    s = load_settings()
    store = Store(paths.db_path())
    model = smoke_model.ensure_smoke_model(log=None) if s.is_smoke_model else None
    if model is not None:
        print(f"model: {model.name}  weights sha256 {smoke_model.weights_sha256(model)}")
    for one in s.per_dataset():
        name = one.dataset.name
        n_videos, n_anomalous, n_frames = store.query(
            "SELECT count(*), count(*) FILTER (WHERE json_array_length(intervals) > 0), sum(num_frames) FROM videos "
            "WHERE dataset = ? AND status = 'ok'", [name]).row(0)
        print(f"data set {name}: {n_videos} videos ({n_anomalous} anomalous), {n_frames:,} frames; "
              f"model requests in DuckDB: {store.scalar('SELECT count(*) FROM model_calls')}")
        print(table(latest_metrics(store, name), one.scoring.window_s, one.scoring.stride_s or one.scoring.window_s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
