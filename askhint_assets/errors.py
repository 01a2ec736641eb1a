"""Errors a user can cause, each naming the file, line, field or video at fault."""

from __future__ import annotations

from pathlib import Path


class AskHintError(Exception):
    """Base class of every error askhint raises on purpose."""


class InputError(AskHintError):
    """Bad user input: a prompt file, an annotation line, a score file, a config value.

    The message reads ``path:line: field: what is wrong`` so editors and terminals can jump to it.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.reason = message
        where = ""
        if self.path is not None:
            where = self.path + (f":{line}" if line is not None else "") + ": "
        elif line is not None:
            where = f"line {line}: "
        if field:
            where += f"{field}: "
        super().__init__(where + message)


class VideoError(AskHintError):
    """A video that cannot be read or decoded; names the video and the reason."""

    def __init__(self, video: str | Path, reason: str) -> None:
        self.video = str(video)
        self.reason = reason
        super().__init__(f"{self.video}: {reason}")


class NotWritableError(AskHintError):
    """A folder askhint must write to (``ASKHINT_HOME`` or one under it) cannot be written; names it."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: not writable ({reason})")


class BackendError(AskHintError):
    """A model backend failed for a request after its retries; nothing stored is lost."""


class MissingArtefactError(AskHintError):
    """An artefact an asset needs is not stored (its upstream asset was never materialized, or failed)."""


class PipelineError(AskHintError):
    """A pipeline step cannot go on (every video failed, model requests failed); what was computed is kept."""

    def __init__(self, message: str, metadata: dict | None = None) -> None:
        self.metadata = metadata or {}
        super().__init__(message)
