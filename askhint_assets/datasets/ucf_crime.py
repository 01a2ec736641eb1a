"""UCF-Crime test split: ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt`` plus the video tree.

Annotation line: ``Abuse028_x264.mp4  Abuse  165  240  -1  -1`` (name, class or ``Normal``, two
start/end pairs, ``-1`` where absent). Intervals are read half-open ``[s, e)`` (the community's
frame-level ground truth); ``inclusive_end=True`` reads ``[s, e]``. Ends past a video's last frame
(the real file has some) are clipped silently; a start at or past it is an error.
"""

from __future__ import annotations

from pathlib import Path

from askhint_assets.datasets.base import NORMAL, Dataset, VideoRecord
from askhint_assets.datasets.folder import (
    Issues,
    OnError,
    attach_videos,
    check_label_intervals,
    fingerprint,
    index_videos,
    make_interval,
    video_id_of,
)
from askhint_assets.errors import InputError
from askhint_assets.user_files import read_text

CLASSES: tuple[str, ...] = (
    "Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting", "RoadAccidents",
    "Robbery", "Shooting", "Shoplifting", "Stealing", "Vandalism",
)
ANNOTATION_FILE = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
_FIELDS = ("name", "class", "s1", "e1", "s2", "e2")
_CANON = {c.lower(): c for c in (*CLASSES, NORMAL)}


def _parse_line(
    path: Path, line: int, text: str, inclusive_end: bool, seen: dict[str, int]
) -> VideoRecord:
    fields = text.split()
    if len(fields) != 6:
        raise InputError(f"expected 6 fields ({' '.join(_FIELDS)}), got {len(fields)}", path=path, line=line)
    name, cls = fields[0], _CANON.get(fields[1].lower())
    if cls is None:
        raise InputError(f"unknown class {fields[1]!r}; expected Normal or one of {', '.join(CLASSES)}",
                         path=path, line=line, field="class")
    nums = []
    for f, v in zip(_FIELDS[2:], fields[2:], strict=True):
        try:
            nums.append(int(v))
        except ValueError:
            raise InputError(f"{v!r} is not an integer frame number", path=path, line=line, field=f) from None
    intervals = []
    for k in (0, 2):
        s, e = nums[k], nums[k + 1]
        field = f"{_FIELDS[2 + k]}/{_FIELDS[3 + k]}"
        if s == -1 and e == -1:
            continue
        if s == -1 or e == -1:
            raise InputError(f"only one of the pair is -1 ({s} {e})", path=path, line=line, field=field)
        intervals.append(make_interval(s, e, inclusive_end=inclusive_end, path=path, line=line, field=field))
    vid = video_id_of(name)
    if vid in seen:
        raise InputError(f"video {vid!r} listed twice (first at line {seen[vid]})", path=path, line=line,
                         field="name")
    check_label_intervals(cls, tuple(intervals), path=path, line=line, video=vid)
    seen[vid] = line
    return VideoRecord(vid, cls, () if cls == NORMAL else (cls,), tuple(intervals), source_line=line)


def _parse(path: Path, inclusive_end: bool, issues: Issues) -> list[VideoRecord]:
    seen: dict[str, int] = {}
    out = []
    for line, text in enumerate(read_text(path, "annotation file").splitlines(), 1):
        if not text.strip():
            continue
        try:
            out.append(_parse_line(path, line, text, inclusive_end, seen))
        except InputError as e:
            issues.fail_line(path, line, e)
    return out


def parse_annotations(path: str | Path, *, inclusive_end: bool = False) -> list[VideoRecord]:
    """Records in file order (no video facts yet); raises ``InputError`` naming path, line and field."""
    return _parse(Path(path), inclusive_end, Issues("raise"))


def _pick(rec: VideoRecord, paths: list[Path]) -> Path | None:
    """Of several files with one name, the one under a folder named like its class (or 'Testing'), if
    exactly one is; else ``None`` (an error naming every file)."""
    hint = "testing" if rec.label == NORMAL else rec.label.lower()
    matches = [p for p in paths if any(hint in part.lower() for part in p.parent.parts)]
    return matches[0] if len(matches) == 1 else None


def load(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    on_error: OnError = "raise",
    inclusive_end: bool = False,
) -> Dataset:
    """Load the annotated test videos, found by name anywhere under ``root``.

    ``annotations`` defaults to ``root/ANNOTATION_FILE`` (or the first such file below ``root``).
    Each video is probed for its frame count and fps. ``on_error="skip"`` moves bad lines and videos
    to ``Dataset.skipped`` with a warning instead of raising.
    """
    root = Path(root)
    if annotations is None:
        annotations = root / ANNOTATION_FILE
        if not annotations.is_file():
            annotations = next(iter(sorted(root.rglob(ANNOTATION_FILE))), annotations)
    ann = Path(annotations)
    issues = Issues(on_error)
    records = _parse(ann, inclusive_end, issues)
    videos = attach_videos(records, index_videos(root), annotations=ann, root=root, issues=issues, pick=_pick)
    return Dataset(root.name, "ucf_crime", videos, issues.skipped,
                   fingerprint("ucf_crime", ann, videos, inclusive_end=inclusive_end), issues.notes,
                   skipped_lines=issues.skipped_lines)
