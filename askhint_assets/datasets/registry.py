"""One entry point for every supported data set kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from askhint_assets.datasets import folder, ucf_crime, xd_violence
from askhint_assets.datasets.base import Dataset
from askhint_assets.errors import InputError

DatasetKind = Literal["ucf_crime", "xd_violence", "folder"]
LOADERS = {"ucf_crime": ucf_crime.load, "xd_violence": xd_violence.load, "folder": folder.load}


def load_dataset(
    kind: DatasetKind, root: str | Path, annotations: str | Path | None = None, **kw: Any
) -> Dataset:
    """Load a data set of ``kind``; ``kw`` (``on_error``, ``inclusive_end``) goes to its loader."""
    try:
        loader = LOADERS[kind]
    except KeyError:
        raise InputError(f"unknown data set kind {kind!r}; expected one of {', '.join(LOADERS)}",
                         field="kind") from None
    return loader(root, annotations, **kw)
