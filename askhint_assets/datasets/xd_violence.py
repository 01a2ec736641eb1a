"""XD-Violence test split: labels live in file names, intervals in ``annotations.txt``.

Names end in ``_label_<codes>``: ``A`` normal, ``B1`` Fighting, ``B2`` Shooting, ``B4`` Riot, ``B5``
Abuse, ``B6`` Car accident, ``G`` Explosion, several joined by ``-`` with ``0`` as a placeholder
(``..._label_B2-G-0``). ``annotations.txt`` has one line per violent video: ``name s1 e1 s2 e2 ...``
(any number of pairs; the name may carry ``.mp4``). Intervals are read half-open ``[s, e)``;
``inclusive_end=True`` reads ``[s, e]``. Ends past the last frame are clipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from askhint_assets.datasets.base import NORMAL, Dataset, VideoRecord
from askhint_assets.datasets.folder import (
    Issues,
    OnError,
    attach_videos,
    fingerprint,
    index_videos,
    make_interval,
    video_id_of,
)
from askhint_assets.errors import InputError
from askhint_assets.user_files import read_text

LABEL_CODES: dict[str, str] = {
    "A": NORMAL, "B1": "Fighting", "B2": "Shooting", "B4": "Riot", "B5": "Abuse", "B6": "Car accident",
    "G": "Explosion",
}
ANNOTATION_FILE = "annotations.txt"
_Ann = dict[str, tuple[list[tuple[int, int]], int]]


def labels_from_name(name: str, *, path: str | Path | None = None, line: int | None = None) -> tuple[str, ...]:
    """Classes encoded in a video name (``()`` for ``label_A``); ``InputError`` if none can be read."""
    vid = video_id_of(name)
    _, sep, tail = vid.rpartition("_label_")
    if not sep:
        raise InputError(f"video name {vid!r} has no '_label_<codes>' part", path=path, line=line,
                         field="name")
    codes = [c for c in tail.split("-") if c != "0"]
    if not codes:
        raise InputError(f"video name {vid!r} has no label code after '_label_'", path=path, line=line,
                         field="name")
    unknown = [c for c in codes if c not in LABEL_CODES]
    if unknown:
        raise InputError(f"unknown label code(s) {unknown} in {vid!r}; known: {', '.join(LABEL_CODES)}",
                         path=path, line=line, field="name")
    if "A" in codes:
        if len(codes) > 1:
            raise InputError(f"{vid!r} mixes the normal code A with violent codes", path=path, line=line,
                             field="name")
        return ()
    return tuple(dict.fromkeys(LABEL_CODES[c] for c in codes))


def _parse(path: Path, inclusive_end: bool, issues: Issues) -> _Ann:
    out: _Ann = {}
    for line, text in enumerate(read_text(path, "annotation file").splitlines(), 1):
        fields = text.split()
        if not fields:
            continue
        try:
            vid, nums = video_id_of(fields[0]), fields[1:]
            if not nums:
                raise InputError(f"video {vid!r} has no interval", path=path, line=line, field="intervals")
            if len(nums) % 2:
                raise InputError(f"odd number of frame numbers ({len(nums)}): intervals need start/end pairs",
                                 path=path, line=line, field="intervals")
            ints = []
            for k, v in enumerate(nums):
                try:
                    ints.append(int(v))
                except ValueError:
                    raise InputError(f"{v!r} is not an integer frame number", path=path, line=line,
                                     field=f"number {k + 1}") from None
            ivs = [
                make_interval(ints[k], ints[k + 1], inclusive_end=inclusive_end, path=path, line=line,
                              field=f"interval {k // 2 + 1}")
                for k in range(0, len(ints), 2)
            ]
            if vid in out:
                raise InputError(f"video {vid!r} listed twice (first at line {out[vid][1]})", path=path,
                                 line=line, field="name")
            out[vid] = (ivs, line)
        except InputError as e:
            issues.fail_line(path, line, e)
    return out


def parse_annotations(path: str | Path, *, inclusive_end: bool = False) -> dict[str, list[tuple[int, int]]]:
    """``video_id -> [(s, e), ...]`` half-open; raises ``InputError`` naming path, line and field."""
    return {k: ivs for k, (ivs, _) in _parse(Path(path), inclusive_end, Issues("raise")).items()}


def _record(vid: str, ann: _Ann, ann_path: Path, issues: Issues, video_path: Path | None) -> VideoRecord | None:
    try:
        classes = labels_from_name(vid, path=video_path)
        ivs, line = ann.get(vid, ([], None))
        if classes and line is None:
            raise InputError(f"violent video {vid!r} ({', '.join(classes)}) has no line", path=ann_path,
                             field="name")
        if not classes and line is not None:
            raise InputError(f"normal video {vid!r} (label_A) has anomalous intervals", path=ann_path,
                             line=line, field="name")
    except InputError as e:
        issues.fail(vid, e)
        return None
    label = classes[0] if classes else NORMAL
    return VideoRecord(vid, label, classes, tuple(ivs), path=video_path, source_line=line)


def records_from_names(
    names: Iterable[str], annotations_path: str | Path, *, inclusive_end: bool = False
) -> list[VideoRecord]:
    """Records for the given video names (no video files needed, e.g. to evaluate a score file).

    Annotation lines for names not listed are ignored.
    """
    ann_path = Path(annotations_path)
    issues = Issues("raise")
    ann = _parse(ann_path, inclusive_end, issues)
    return [r for n in names if (r := _record(video_id_of(n), ann, ann_path, issues, None)) is not None]


def load(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    on_error: OnError = "raise",
    inclusive_end: bool = False,
) -> Dataset:
    """Every video under ``root`` (sorted by id) with labels from its name and intervals from
    ``annotations`` (default ``root/annotations.txt``). Violent videos need a line; every line needs
    a video. ``on_error="skip"`` moves bad lines/videos to ``Dataset.skipped`` with a warning."""
    root = Path(root)
    ann_path = Path(annotations) if annotations is not None else root / ANNOTATION_FILE
    issues = Issues(on_error)
    ann = _parse(ann_path, inclusive_end, issues)
    index = index_videos(root)
    for vid, (_, line) in ann.items():
        if vid not in index:
            issues.fail(vid, InputError(f"video {vid!r} not found under {root}",
                                                             path=ann_path, line=line, field="name"))
    records = [r for vid in sorted(index) if (r := _record(vid, ann, ann_path, issues, index[vid][0]))]
    # several files of one id: attach_videos names them all instead of taking the first
    records = [replace(r, path=None) if len(index[r.video_id]) > 1 else r for r in records]
    videos = attach_videos(records, index, annotations=ann_path, root=root, issues=issues)
    return Dataset(root.name, "xd_violence", videos, issues.skipped,
                   fingerprint("xd_violence", ann_path, videos, inclusive_end=inclusive_end), issues.notes,
                   skipped_lines=issues.skipped_lines)
