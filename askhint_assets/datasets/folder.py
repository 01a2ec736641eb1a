"""Any data set: a folder of videos plus a CSV or JSON annotation; also the helpers every loader shares.

CSV: a header ``video,class,intervals``; ``intervals`` like ``10-50;80-120`` (empty for none).
JSON: ``[{"video": ..., "class": ..., "intervals": [[s, e], ...]}, ...]``.
``video`` is a file name (extension optional); ``class`` is ``Normal`` or a class name (several joined
by ``|``); normal videos have no interval, anomalous ones at least one. Intervals are 0-based frame
numbers read half-open ``[s, e)``; ``inclusive_end=True`` reads ``[s, e]``. An interval end past the
video's last frame is clipped; a start at or past it is an error.
"""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Literal

from askhint_assets.datasets.base import NORMAL, Dataset, VideoRecord
from askhint_assets.errors import AskHintError, InputError, VideoError
from askhint_assets.hashing import hash_file, hash_obj
from askhint_assets.user_files import read_text
from askhint_assets.video.decode import probe

OnError = Literal["raise", "skip"]
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv"})


def video_id_of(name: str) -> str:
    """File name without folder and without a video extension (``a/b.mp4`` -> ``b``)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    return stem if dot and "." + ext.lower() in VIDEO_EXTENSIONS else base


def index_videos(root: str | Path) -> dict[str, list[Path]]:
    """Every video file under ``root`` (recursive, sorted, hidden files skipped) by video id."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("data set folder not found", path=root)
    index: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith(".") and Path(f).suffix.lower() in VIDEO_EXTENSIONS:
                vid = video_id_of(f)
                if vid != vid.strip():
                    warnings.warn(f"{Path(dirpath) / f}: the file name starts or ends with a space, but video ids "
                                  f"are read from annotations without surrounding spaces, so {vid!r} can never "
                                  "match one: rename the file", stacklevel=2)
                index.setdefault(vid, []).append(Path(dirpath) / f)
    return index


class Issues:
    """Raises each problem (``on_error="raise"``) or records it in ``skipped`` and warns (``"skip"``)."""

    def __init__(self, on_error: OnError) -> None:
        if on_error not in ("raise", "skip"):
            raise InputError(f"must be 'raise' or 'skip', got {on_error!r}", field="on_error")
        self.on_error = on_error
        self.skipped: list[tuple[str, str]] = []
        self.skipped_lines: list[tuple[str, str]] = []
        self.notes: list[str] = []

    def fail(self, key: str, err: AskHintError) -> None:
        """A video that cannot be used (``key``: its id)."""
        if self.on_error == "raise":
            raise err
        self.skipped.append((key, str(err)))
        warnings.warn(f"skipped {key}: {err}", stacklevel=3)

    def fail_line(self, path: Path, line: int | None, err: AskHintError) -> None:
        """An annotation line that cannot be read (no video id to record it under)."""
        if self.on_error == "raise":
            raise err
        self.skipped_lines.append((line_key(path, line), str(err)))
        warnings.warn(f"skipped: {err}", stacklevel=3)

    def note(self, message: str) -> None:
        """A warning about a video that is kept (recorded in ``notes`` and warned)."""
        self.notes.append(message)
        warnings.warn(message, stacklevel=3)


def line_key(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line is not None else str(path)


def make_interval(
    s: int, e: int, *, inclusive_end: bool, path: Path, line: int | None, field: str
) -> tuple[int, int]:
    """Check one annotated interval and return it half-open."""
    if s < 0 or e < 0:
        raise InputError(f"negative frame number in [{s}, {e}]", path=path, line=line, field=field)
    if s > e:
        raise InputError(f"start {s} is after end {e}", path=path, line=line, field=field)
    return (s, e + 1) if inclusive_end else (s, e)


def check_label_intervals(
    label: str, intervals: tuple[tuple[int, int], ...], *, path: Path, line: int | None, video: str
) -> None:
    if label == NORMAL and intervals:
        raise InputError(f"normal video {video!r} has anomalous intervals", path=path, line=line,
                         field="intervals")
    if label != NORMAL and not intervals:
        raise InputError(f"anomalous video {video!r} ({label}) has no interval", path=path, line=line,
                         field="intervals")


def attach_videos(
    records: Iterable[VideoRecord],
    index: dict[str, list[Path]],
    *,
    annotations: Path,
    root: Path,
    issues: Issues,
    pick: Callable[[VideoRecord, list[Path]], Path | None] | None = None,
) -> list[VideoRecord]:
    """Find, probe and validate each record's video; clip interval ends to the video's length.

    A record that already has ``path`` keeps it. Several files with one id are an error naming every
    one of them, unless the kind's ``pick`` rule chooses one (a note names the files dropped). A video
    whose data ends before its header's frame count is kept with the frames that decode, and a note.
    """
    out = []
    for rec in records:
        path = rec.path
        if path is None:
            paths = index.get(rec.video_id)
            if not paths:
                issues.fail(rec.video_id, InputError(f"video {rec.video_id!r} not found under {root}",
                                                     path=annotations, line=rec.source_line, field="video"))
                continue
            path = _one_file(rec, paths, pick, annotations, issues)
            if path is None:
                continue
        try:
            info = probe(path)
            intervals = clip_intervals(rec, info.num_frames, annotations)
        except (VideoError, InputError) as e:
            issues.fail(rec.video_id, e)
            continue
        if info.header_frames is not None:
            issues.note(f"video {rec.video_id!r} ({path}): its header lists {info.header_frames} frames but only "
                        f"{info.num_frames} decode (the file ends early); it is scored on those {info.num_frames}")
        out.append(replace(rec, path=path, num_frames=info.num_frames, fps=info.fps, intervals=intervals))
    return out


def _one_file(rec: VideoRecord, paths: list[Path], pick: Callable[[VideoRecord, list[Path]], Path | None] | None,
              annotations: Path, issues: Issues) -> Path | None:
    """The one file of ``rec``'s id: the only one, or the one ``pick`` chooses (a note names the others);
    several and no rule is an error naming every file that claims the id."""
    if len(paths) == 1:
        return paths[0]
    chosen = pick(rec, paths) if pick is not None else None
    if chosen is None:
        issues.fail(rec.video_id, InputError(
            f"video id {rec.video_id!r} is claimed by {len(paths)} files: {', '.join(map(str, paths))} (an id is the "
            "file name without folder or extension); keep one of them", path=annotations, line=rec.source_line,
            field="video"))
        return None
    dropped = ", ".join(str(p) for p in paths if p != chosen)
    issues.note(f"video id {rec.video_id!r} is claimed by {len(paths)} files: took {chosen} (under a folder named "
                f"like its class), dropped {dropped}")
    return chosen


def clip_intervals(rec: VideoRecord, num_frames: int, annotations: Path) -> tuple[tuple[int, int], ...]:
    """Intervals with ends clipped to ``num_frames``; a start at or past the end is an error."""
    out = []
    for k, (s, e) in enumerate(rec.intervals, 1):
        if s >= num_frames:
            raise InputError(
                f"interval {k} [{s}, {e}) of video {rec.video_id!r} starts at or after its end "
                f"({num_frames} frames)", path=annotations, line=rec.source_line, field=f"interval {k}")
        out.append((s, min(e, num_frames)))
    return tuple(out)


def fingerprint(kind: str, annotations: Path | None, videos: list[VideoRecord], **options: object) -> str:
    """Hash of the annotation file's bytes, each video's (id, size, frame count) and the options."""
    return hash_obj({
        "kind": kind,
        "annotations": hash_file(annotations) if annotations is not None else None,
        "videos": sorted(
            (v.video_id, v.path.stat().st_size if v.path else None, v.num_frames) for v in videos
        ),
        "options": options,
    })


def _record(
    path: Path, line: int | None, video: object, cls: object, intervals: list[tuple[int, int]],
    inclusive_end: bool, seen: dict[str, int | None],
) -> VideoRecord:
    if not isinstance(video, str) or not video.strip():
        raise InputError("missing video name", path=path, line=line, field="video")
    if not isinstance(cls, str) or not cls.strip():
        raise InputError("missing class", path=path, line=line, field="class")
    vid = video_id_of(video.strip())
    if vid in seen:
        raise InputError(f"video {vid!r} listed twice (first at line {seen[vid]})", path=path, line=line,
                         field="video")
    classes = tuple(c.strip() for c in cls.split("|") if c.strip())
    normal = len(classes) == 1 and classes[0].lower() == NORMAL.lower()
    label = NORMAL if normal else classes[0]
    ivs = tuple(
        make_interval(s, e, inclusive_end=inclusive_end, path=path, line=line, field=f"interval {k}")
        for k, (s, e) in enumerate(intervals, 1)
    )
    check_label_intervals(label, ivs, path=path, line=line, video=vid)
    seen[vid] = line
    return VideoRecord(vid, label, () if normal else classes, ivs, source_line=line)


def _csv_intervals(text: str, path: Path, line: int) -> list[tuple[int, int]]:
    out = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        s, dash, e = part.partition("-")
        try:
            if not dash:
                raise ValueError
            out.append((int(s), int(e)))
        except ValueError:
            raise InputError(f"{part!r} is not 'start-end' with integer frames", path=path, line=line,
                             field="intervals") from None
    return out


def _parse_csv(path: Path, inclusive_end: bool, issues: Issues) -> list[VideoRecord]:
    text = read_text(path, "annotation file")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    cols = [h.strip().lower() for h in header] if header else []
    if "video" not in cols or "class" not in cols:
        raise InputError(f"header must name columns video,class,intervals; got {cols}", path=path, line=1)
    iv, vc, cc = (cols.index("intervals") if "intervals" in cols else None), cols.index("video"), cols.index(
        "class")
    seen: dict[str, int | None] = {}
    out = []
    line = 1
    for row in reader:
        line = reader.line_num
        if not any(c.strip() for c in row):
            continue
        try:
            if len(row) != len(cols):
                raise InputError(f"expected {len(cols)} fields, got {len(row)}", path=path, line=line)
            ivs = _csv_intervals(row[iv], path, line) if iv is not None else []
            out.append(_record(path, line, row[vc], row[cc], ivs, inclusive_end, seen))
        except InputError as e:
            issues.fail_line(path, line, e)
    return out


def _json_entries(path: Path) -> list[tuple[int, object]]:
    """Top-level array items with the line each starts on."""
    text = read_text(path, "annotation file")
    dec = json.JSONDecoder()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg}", path=path, line=e.lineno) from None
    if not isinstance(data, list):
        raise InputError("top level must be a list of {video, class, intervals} objects", path=path, line=1)
    out = []
    i = text.index("[") + 1
    for _ in data:
        while text[i] in " \t\r\n,":
            i += 1
        obj, end = dec.raw_decode(text, i)
        out.append((text.count("\n", 0, i) + 1, obj))
        i = end
    return out


def _parse_json(path: Path, inclusive_end: bool, issues: Issues) -> list[VideoRecord]:
    seen: dict[str, int | None] = {}
    out = []
    for line, obj in _json_entries(path):
        try:
            if not isinstance(obj, dict):
                raise InputError("entry must be an object with video, class, intervals", path=path, line=line)
            raw = obj.get("intervals") or []
            if not isinstance(raw, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(type(x) is int for x in p) for p in raw
            ):
                raise InputError(f"must be a list of [start, end] integer pairs, got {raw!r}", path=path,
                                 line=line, field="intervals")
            out.append(_record(path, line, obj.get("video"), obj.get("class"), [tuple(p) for p in raw],
                               inclusive_end, seen))
        except InputError as e:
            issues.fail_line(path, line, e)
    return out


def _parse(path: Path, inclusive_end: bool, issues: Issues) -> list[VideoRecord]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _parse_csv(path, inclusive_end, issues)
    if suffix == ".json":
        return _parse_json(path, inclusive_end, issues)
    raise InputError(f"unsupported annotation format {suffix!r}: use .csv or .json", path=path)


def parse_annotations(path: str | Path, *, inclusive_end: bool = False) -> list[VideoRecord]:
    """Records (no video facts yet) from a ``.csv`` or ``.json`` annotation file, in file order."""
    return _parse(Path(path), inclusive_end, Issues("raise"))


def load(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    on_error: OnError = "raise",
    inclusive_end: bool = False,
) -> Dataset:
    """Load the annotated videos found under ``root`` (default annotations: ``root/annotations.csv``
    or ``.json``). ``on_error="skip"`` moves bad lines/videos to ``Dataset.skipped`` with a warning."""
    root = Path(root)
    if annotations is None:
        found = [root / n for n in ("annotations.csv", "annotations.json") if (root / n).is_file()]
        annotations = found[0] if found else root / "annotations.csv"
    ann = Path(annotations)
    issues = Issues(on_error)
    records = _parse(ann, inclusive_end, issues)
    videos = attach_videos(records, index_videos(root), annotations=ann, root=root, issues=issues)
    return Dataset(root.name, "folder", videos, issues.skipped,
                   fingerprint("folder", ann, videos, inclusive_end=inclusive_end), issues.notes,
                   skipped_lines=issues.skipped_lines)
