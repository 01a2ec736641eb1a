"""Read scores produced outside askhint (CSV or Parquet) and turn them into frame scores.

Two layouts, chosen by the columns (names case-insensitive):

- per frame: ``video,frame,score`` — frames 0-based; every frame of every video must be scored;
- windows: ``video,start_frame,end_frame,score`` — 0-based, end excluded; frames get the mean of
  the windows covering them (see :func:`askhint_assets.evaluation.frames.window_frame_scores`).

``video`` may carry a directory and a video extension; both are dropped to get the ``video_id``.
Errors name the file and, for CSV, the line (header = line 1); for Parquet the "line" is the row.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import polars as pl

from askhint_assets.errors import InputError
from askhint_assets.evaluation.frames import window_frame_scores
from askhint_assets.user_files import read_bytes, read_text

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv")
FRAME_COLUMNS = ("video", "frame", "score")
WINDOW_COLUMNS = ("video", "start_frame", "end_frame", "score")
_MAX_LISTED = 10


def video_id_from_name(name: str) -> str:
    """``"Abuse/Abuse028_x264.mp4"`` → ``"Abuse028_x264"``; other dots (XD names) are kept."""
    base = re.split(r"[\\/]", name.strip())[-1]
    if base.lower().endswith(VIDEO_EXTENSIONS):
        base = base[: base.rfind(".")]
    return base


def listed(items: list, limit: int = _MAX_LISTED) -> str:
    """The first ``limit`` items, comma-separated, and how many more there are."""
    shown = ", ".join(str(x) for x in items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def _read_table(path: Path) -> tuple[pl.DataFrame, int]:
    """The raw table with lower-cased column names, and the offset from row index to line."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            df, offset = pl.read_csv(io.StringIO(read_text(path, "score file")), infer_schema=False), 2
        elif suffix in (".parquet", ".pq"):
            df, offset = pl.read_parquet(io.BytesIO(read_bytes(path, "score file"))), 1
        else:
            raise InputError(f"unknown score file type {suffix!r}; use .csv or .parquet", path=path)
    except InputError:
        raise
    except Exception as exc:  # polars raises several error types for malformed files
        raise InputError(f"cannot read: {exc}", path=path) from exc
    return df.rename({c: c.strip().lower() for c in df.columns}), offset


def _numeric(df: pl.DataFrame, col: str, path: Path, *, integer: bool) -> pl.Series:
    """Column ``col`` as Float64, or InputError naming the first bad line."""
    s = df[col]
    if s.dtype == pl.String:
        parsed = s.str.strip_chars().cast(pl.Float64, strict=False)
    elif s.dtype.is_numeric():
        parsed = s.cast(pl.Float64)
    else:
        raise InputError(f"column has type {s.dtype}, expected numbers", path=path, field=col)
    vals = parsed.to_numpy()
    bad = np.isnan(vals)  # nulls come back as NaN
    what = "missing or not a number"
    if not bad.any():
        bad = ~np.isfinite(vals)
        what = "not finite"
    if not bad.any() and integer:
        bad = (vals != np.floor(vals)) | (vals < 0)
        what = "not a non-negative integer"
    if bad.any():
        rows = np.flatnonzero(bad)
        raw = s[int(rows[0])]
        more = f" ({len(rows)} bad rows)" if len(rows) > 1 else ""
        raise InputError(f"{raw!r} is {what}{more}", path=path, line=int(df["_line"][int(rows[0])]), field=col)
    return parsed


def read_scores(path: str | Path) -> pl.DataFrame:
    """Read and validate a score file; columns ``video, frame|start_frame,end_frame, score, _line``.

    ``video`` holds video ids. Raises InputError for a missing column, an empty video name, NaN or
    non-numeric scores, a negative or fractional frame, or a window with ``end_frame <= start_frame``.
    """
    path = Path(path)
    df, offset = _read_table(path)
    cols = set(df.columns)
    if "frame" in cols:
        need = FRAME_COLUMNS
    elif "start_frame" in cols or "end_frame" in cols:
        need = WINDOW_COLUMNS
    else:
        need = FRAME_COLUMNS
    missing = [c for c in need if c not in cols]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; expected {','.join(FRAME_COLUMNS)} "
            f"or {','.join(WINDOW_COLUMNS)} (found {','.join(df.columns) or 'none'})",
            path=path,
        )
    df = df.select(need).with_row_index("_line", offset=offset).with_columns(pl.col("_line").cast(pl.Int64))
    if df.height == 0:
        raise InputError("no score rows", path=path)
    names = df["video"].cast(pl.String)
    empty = (names.is_null() | (names.str.strip_chars() == "")).to_numpy()
    if empty.any():
        raise InputError("empty video name", path=path, line=int(df["_line"][int(np.argmax(empty))]), field="video")
    out = {"video": pl.Series([video_id_from_name(n) for n in names.to_list()], dtype=pl.String)}
    for c in need[1:]:
        out[c] = _numeric(df, c, path, integer=c != "score")
        if c != "score":
            out[c] = out[c].cast(pl.Int64)
    table = pl.DataFrame(out).with_columns(df["_line"])
    if need is WINDOW_COLUMNS:
        bad = (table["end_frame"] <= table["start_frame"]).to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(
                f"window [{table['start_frame'][i]}, {table['end_frame'][i]}) is empty (end is excluded)",
                path=path,
                line=int(table["_line"][i]),
                field="end_frame",
            )
    return table


def score_kind(df: pl.DataFrame) -> str:
    """``"frame"`` or ``"window"``, from the columns of a table :func:`read_scores` returned."""
    return "frame" if "frame" in df.columns else "window"


def read_frame_counts(path: str | Path) -> dict[str, int]:
    """CSV ``video,num_frames`` → ``{video_id: num_frames}``; counts must be integers >= 1."""
    path = Path(path)
    df, offset = _read_table(path)
    missing = [c for c in ("video", "num_frames") if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; expected video,num_frames", path=path)
    df = df.with_row_index("_line", offset=offset)
    counts = _numeric(df, "num_frames", path, integer=True).cast(pl.Int64).to_list()
    out: dict[str, int] = {}
    for name, n, line in zip(df["video"].cast(pl.String).to_list(), counts, df["_line"].to_list(), strict=True):
        if name is None or not name.strip():
            raise InputError("empty video name", path=path, line=line, field="video")
        vid = video_id_from_name(name)
        if n < 1:
            raise InputError(f"{vid}: a video needs at least one frame", path=path, line=line, field="num_frames")
        if out.get(vid, n) != n:
            raise InputError(f"{vid}: listed twice with {out[vid]} and {n} frames", path=path, line=line)
        out[vid] = n
    return out


def frame_counts_from_scores(df: pl.DataFrame, path: str | Path | None = None) -> dict[str, int]:
    """``max(frame) + 1`` per video of a per-frame table. This trusts the score file to reach each
    video's last frame (a truncated file goes unnoticed), so the CLI asks for it explicitly."""
    if score_kind(df) != "frame":
        raise InputError("frame counts cannot be taken from a window score file; pass --frame-counts", path=path)
    agg = df.group_by("video").agg(pl.col("frame").max())
    return {v: int(f) + 1 for v, f in zip(agg["video"].to_list(), agg["frame"].to_list(), strict=True)}


def to_frame_scores(
    df: pl.DataFrame,
    frame_counts: Mapping[str, int],
    *,
    videos: Iterable[str] | None = None,
    rule: str = "mean",
    path: str | Path | None = None,
) -> dict[str, np.ndarray]:
    """``{video_id: scores of length num_frames}`` from a :func:`read_scores` table.

    Only ``videos`` are converted when given (others in the file are ignored). Per-frame tables must
    score every frame exactly once (errors list the first unscored frames); window tables go through
    ``window_frame_scores(rule=rule)``. Frames/windows starting at or past ``num_frames`` are errors.
    """
    if videos is not None:
        df = df.filter(pl.col("video").is_in(list(videos)))
    ids = df["video"].unique(maintain_order=True).to_list()
    no_count = [v for v in ids if v not in frame_counts]
    if no_count:
        raise InputError(f"no frame count for video(s): {listed(no_count)}", path=path)
    per_frame = score_kind(df) == "frame"
    out: dict[str, np.ndarray] = {}
    for (vid,), part in df.partition_by("video", as_dict=True, maintain_order=True).items():
        n = int(frame_counts[vid])
        lines = part["_line"].to_numpy()
        first = part["frame"].to_numpy() if per_frame else part["start_frame"].to_numpy()
        past = first >= n
        if past.any():
            i = int(np.argmax(past))
            raise InputError(
                f"{vid}: frame {first[i]} is past the video's last frame ({n} frames, 0-based)",
                path=path,
                line=int(lines[i]),
                field="frame" if per_frame else "start_frame",
            )
        scores = part["score"].to_numpy()
        if per_frame:
            out[vid] = _frames_to_array(vid, first, scores, lines, n, path)
        else:
            windows = zip(first, part["end_frame"].to_numpy(), scores, strict=True)
            try:
                out[vid] = window_frame_scores(list(windows), n, rule=rule)
            except ValueError as exc:
                raise InputError(f"{vid}: {exc}", path=path) from exc
    return out


def _frames_to_array(
    vid: str, frames: np.ndarray, scores: np.ndarray, lines: np.ndarray, n: int, path: str | Path | None
) -> np.ndarray:
    seen = np.zeros(n, dtype=bool)
    arr = np.full(n, np.nan)
    uniq, cnt = np.unique(frames, return_counts=True)
    if (cnt > 1).any():
        f = int(uniq[np.argmax(cnt > 1)])
        line = int(lines[np.flatnonzero(frames == f)[1]])
        raise InputError(f"{vid}: frame {f} scored more than once", path=path, line=line, field="frame")
    arr[frames] = scores
    seen[frames] = True
    if not seen.all():
        gaps = np.flatnonzero(~seen)
        raise InputError(f"{vid}: {len(gaps)} of {n} frames have no score, first: {listed(gaps.tolist())}", path=path)
    return arr
