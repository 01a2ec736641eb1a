"""Where askhint errors become Dagster failures: the core raises :class:`AskHintError`s, asset and check
bodies are wrapped here, and the run shows the error's own message (file, line, field or video) as a
``dg.Failure`` instead of a traceback of the framework."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import dagster as dg

from askhint_assets.errors import AskHintError, PipelineError

F = TypeVar("F", bound=Callable)


def fails_clearly(fn: F) -> F:
    """``fn`` with every :class:`AskHintError` it raises turned into a ``dg.Failure`` with its message
    (and, for a :class:`PipelineError`, its metadata). The signature is kept for Dagster's inputs."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AskHintError as e:
            metadata = e.metadata if isinstance(e, PipelineError) else {}
            # from None: the run shows the error's one line, not the askhint code's stack beneath it
            raise dg.Failure(description=str(e), metadata=metadata) from None

    return wrapper  # type: ignore[return-value]
