"""The registry of data set kinds: how each is loaded, how its ground truth is read, whether it has a demo.

Settings validation (``dataset.kind``), the CLI (``askhint evaluate --dataset``) and the Dagster layer read
the kinds from here. A kind's module is imported only when that kind is used. The generated demo of a kind
is written by the generator a plug-in registers (:func:`register_demo`; the demo package, loaded through
:mod:`askhint_assets.plugins`), so this package never imports ``askhint_assets.demo``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from askhint_assets.datasets.base import Dataset, VideoRecord
from askhint_assets.errors import InputError
from askhint_assets.plugins import load_plugins

DemoGenerator = Callable[[Path], object]
"""Called with the data set root; writes the kind's generated demo there (videos and annotations)."""


@dataclass(frozen=True)
class KindEntry:
    """One data set kind. ``module`` (under ``askhint_assets.datasets``) has ``load(root, annotations, *,
    on_error, inclusive_end)``; ``ground_truth`` reads records from an annotation file alone (no videos):
    ``"annotations"`` (``module.parse_annotations``) or ``"names"`` (``module.records_from_names``: the
    labels are in the video names, so the scored names are needed). ``has_demo``: a generated demo exists
    in this layout (a data set of this kind may omit ``root``)."""

    name: str
    module: str
    ground_truth: Literal["annotations", "names"]
    has_demo: bool
    description: str

    def _module(self) -> Any:
        return importlib.import_module(f"askhint_assets.datasets.{self.module}")


KINDS: dict[str, KindEntry] = {
    e.name: e
    for e in (
        KindEntry("ucf_crime", "ucf_crime", "annotations", True,
                  "UCF-Crime test split: Temporal_Anomaly_Annotation_for_Testing_Videos.txt"),
        KindEntry("xd_violence", "xd_violence", "names", True,
                  "XD-Violence test split: labels in the file names, intervals in annotations.txt"),
        KindEntry("folder", "folder", "annotations", False, "any folder of videos with annotations.csv or .json"),
    )
}
KIND_NAMES: tuple[str, ...] = tuple(KINDS)
DatasetKind = Literal["ucf_crime", "xd_violence", "folder"]
"""The kinds for type checkers; ``tests/unit/test_settings.py`` checks it equals :data:`KIND_NAMES`."""


def get_kind(kind: str) -> KindEntry:
    """The entry of ``kind``; an :class:`InputError` on ``kind`` listing the known kinds if none.

    The CLI's spelling with a hyphen (``ucf-crime``) names the same kind.
    """
    try:
        return KINDS[kind.replace("-", "_")]
    except (KeyError, AttributeError):
        raise InputError(f"unknown data set kind {kind!r}; expected one of {', '.join(KINDS)}",
                         field="kind") from None


def load_dataset(kind: str, root: str | Path, annotations: str | Path | None = None, **kw: Any) -> Dataset:
    """Load a data set of ``kind``; ``kw`` (``on_error``, ``inclusive_end``) goes to its loader."""
    return get_kind(kind)._module().load(root, annotations, **kw)


def ground_truth(
    kind: str, annotations: str | Path, video_ids: Iterable[str], *, inclusive_end: bool = False
) -> list[VideoRecord]:
    """Records from an annotation file without the videos (to evaluate a score file); ``video_ids`` are
    the scored names (only kinds that label videos by name use them)."""
    entry = get_kind(kind)
    mod = entry._module()
    if entry.ground_truth == "names":
        return list(mod.records_from_names(list(video_ids), annotations, inclusive_end=inclusive_end))
    return list(mod.parse_annotations(annotations, inclusive_end=inclusive_end))


_DEMOS: dict[str, DemoGenerator] = {}


def register_demo(kind: str, generator: DemoGenerator) -> None:
    """Make ``generator`` write the generated demo of ``kind`` (a kind whose entry has ``has_demo``)."""
    name = get_kind(kind).name
    if name in _DEMOS and _DEMOS[name] is not generator:
        raise ValueError(f"data set kind {name!r} already has a demo generator")
    _DEMOS[name] = generator


def write_demo(kind: str, root: str | Path) -> None:
    """Write the generated demo of ``kind`` into ``root`` through the generator a plug-in registered."""
    name = get_kind(kind).name
    if name not in _DEMOS:
        load_plugins()
    if name not in _DEMOS:
        raise InputError(f"no generated demo of the {name} kind is registered; set the data set's `root`",
                         field="dataset.root")
    _DEMOS[name](Path(root))
