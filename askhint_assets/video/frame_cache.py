"""A folder of decoded frame arrays keyed by content hash; corrupt entries count as missing."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from askhint_assets import paths
from askhint_assets.errors import InputError
from askhint_assets.hashing import canonical_json


class FrameCache:
    """Frames plus a JSON-able ``meta`` dict per key, stored as one uncompressed ``.npz``.

    Writes are atomic (temp file in the same folder, then ``os.replace``), so readers never see a
    half-written entry; an unreadable entry is removed and reported as missing.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        try:
            return paths.under(self.root, key, ".npz", what="cache key", pattern=paths.KEY)
        except InputError as e:  # keys are made by the code, never typed: a bug, not bad input
            raise ValueError(f"invalid cache key: {e}") from None

    def has(self, key: str) -> bool:
        """True if a readable-looking entry exists (a corrupt one is removed and gives False)."""
        p = self.path_for(key)
        if not p.is_file():
            return False
        try:
            with zipfile.ZipFile(p) as z:
                if {"frames.npy", "meta.npy"} <= set(z.namelist()):
                    return True
        except (OSError, zipfile.BadZipFile):
            pass
        p.unlink(missing_ok=True)
        return False

    def save(self, key: str, frames: np.ndarray, meta: dict[str, Any]) -> Path:
        p = self.path_for(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, frames=np.ascontiguousarray(frames), meta=np.array(canonical_json(meta)))
            os.replace(tmp, p)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return p

    def get(self, key: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        """The entry, or ``None`` if missing or corrupt (a corrupt file is deleted)."""
        p = self.path_for(key)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                frames = z["frames"]
                meta = json.loads(str(z["meta"]))
            if not isinstance(meta, dict):
                raise ValueError("meta is not a dict")
            return frames, meta
        except Exception:  # any unreadable entry is a cache miss, never a crash
            p.unlink(missing_ok=True)
            return None

    def load(self, key: str) -> tuple[np.ndarray, dict[str, Any]]:
        """The entry; ``KeyError`` if missing or corrupt (a corrupt file is deleted)."""
        entry = self.get(key)
        if entry is None:
            raise KeyError(key)
        return entry
