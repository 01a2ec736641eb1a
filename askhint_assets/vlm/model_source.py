"""Where a model's files are: a local folder, or a Hugging Face Hub id resolved through ``huggingface_hub``.

``model.path`` may be a folder or a Hub id such as ``Qwen/Qwen2.5-VL-7B-Instruct`` (with an optional
``model.revision``: a branch, tag or commit). A Hub id is looked up in the local cache first
(``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``, laid out as
``models--ORG--NAME/snapshots/<commit>/`` with ``refs/<branch>``); only when it is absent there and
``HF_HUB_OFFLINE`` is not set is it downloaded (with ``huggingface_hub``'s progress bars). The resolved
commit goes into the backend fingerprint, so other weights never reuse cached answers. A model that is
neither cached nor downloadable is one :class:`ModelNotFoundError` naming the id, the cache folder and the
command that fetches it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from askhint_assets.errors import AskHintError

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_TRUE = {"1", "on", "yes", "true"}


class ModelNotFoundError(AskHintError):
    """A model that is neither a folder nor in the Hugging Face cache (and could not be downloaded)."""


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: its local folder, and for Hub ids the repo, requested revision and commit."""

    spec: str  # as the user wrote it
    path: Path
    repo_id: str | None = None
    revision: str | None = None
    commit: str | None = None

    @property
    def name(self) -> str:
        """How the model is named in fingerprints and tables: the Hub id, else the folder's name."""
        return self.repo_id or self.path.name

    def identity(self) -> dict:
        """The fingerprint part that says which files these are (empty for a plain folder)."""
        if self.repo_id is None:
            return {}
        return {"hub_id": self.repo_id, "revision": self.revision or "main", "commit": self.commit}


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, read from the environment now (not at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids downloads."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in _TRUE


def is_hub_id(spec: str) -> bool:
    """``org/name`` that is not an existing path (a folder always wins)."""
    return bool(_HUB_ID.match(spec)) and not Path(spec).expanduser().exists()


def fetch_command(repo_id: str, revision: str | None) -> str:
    """The shell command that puts ``repo_id`` into the cache (``hf`` ships with huggingface_hub)."""
    rev = f" --revision {revision}" if revision and revision != "main" else ""
    return f"hf download {repo_id}{rev}"


def _snapshot_commit(path: Path) -> str | None:
    """The commit of a ``.../snapshots/<commit>`` folder, else None."""
    return path.name if path.parent.name == "snapshots" and _COMMIT.match(path.name) else None


def resolve_model(spec: str, revision: str | None = None, *, download: bool | None = None) -> ModelSource:
    """Resolve ``spec`` (folder or Hub id) to a local folder; see the module doc.

    ``download``: None follows ``HF_HUB_OFFLINE``; False never downloads. A folder is returned as given
    (its absence is the backend's error); a folder inside the hub cache keeps its snapshot commit.
    """
    spec = str(spec)
    if not is_hub_id(spec):
        if revision:
            raise ModelNotFoundError(f"model.revision {revision!r} is set but model.path {spec!r} is a folder, "
                                     "not a Hub id")
        path = Path(spec).expanduser()
        return ModelSource(spec, path, commit=_snapshot_commit(path.resolve()) if path.exists() else None)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    cache = hub_cache_dir()
    allowed = (not hub_offline()) if download is None else (download and not hub_offline())
    cause = ""
    try:
        folder = snapshot_download(spec, revision=revision, cache_dir=cache, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError) as e:
        folder, cause = None, f"{type(e).__name__}: {e}"
    if folder is None and allowed:
        try:
            folder = snapshot_download(spec, revision=revision, cache_dir=cache)  # progress bars on stderr
        except Exception as e:  # no network, unknown repo, gated repo: one clear error below
            cause = f"download failed: {type(e).__name__}: {e}"
    if folder is None:
        where = f"revision {revision!r} of " if revision else ""
        how = "HF_HUB_OFFLINE is set, so nothing is downloaded" if hub_offline() else "downloading is off"
        if allowed:
            how = "it could not be downloaded"
        raise ModelNotFoundError(
            f"model {where}{spec!r} is not in the Hugging Face cache {cache} and {how}. "
            f"Fetch it on a machine with network access with: {fetch_command(spec, revision)} "
            f"(set HF_HOME or HF_HUB_CACHE to the same cache), or set model.path to a local folder. "
            f"[{cause.splitlines()[0][:300] if cause else 'not cached'}]")
    path = Path(folder)
    commit = _snapshot_commit(path)
    if commit is None:  # snapshot_download returns snapshots/<commit>; anything else is not a cache we know
        raise ModelNotFoundError(f"{spec!r} resolved to {path}, which is not a snapshots/<commit> folder")
    return ModelSource(spec, path, repo_id=spec, revision=revision, commit=commit)
