"""Lay out a Hugging Face hub cache the way ``huggingface_hub`` writes it (not a test file).

``$HF_HOME/hub/models--ORG--NAME/`` with ``blobs/<sha256>`` (file contents), ``snapshots/<commit>/<file>``
(relative symlinks into ``blobs/``) and ``refs/<branch>`` (the commit, no newline).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def repo_folder(hub: Path, repo_id: str) -> Path:
    return hub / ("models--" + repo_id.replace("/", "--"))


def add_snapshot(hub: Path, repo_id: str, source: Path, commit: str, branch: str | None = "main") -> Path:
    """Put the files of folder ``source`` into the cache as snapshot ``commit``; point ``refs/<branch>`` at it."""
    assert len(commit) == 40 and all(c in "0123456789abcdef" for c in commit), commit
    repo = repo_folder(hub, repo_id)
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    for f in sorted(p for p in source.rglob("*") if p.is_file()):
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        blob = repo / "blobs" / digest
        if not blob.exists():
            shutil.copyfile(f, blob)
        link = snap / f.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if branch:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / branch).write_text(commit)
    return snap
