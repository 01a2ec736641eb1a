"""``os.environ`` changed for a block and restored after: for the fault harness's homes, the graph snapshots and
the benchmarks' homes alike."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping


@contextlib.contextmanager
def environ(values: Mapping[str, str], unset: Iterable[str] = ()) -> Iterator[None]:
    """Inside: ``unset`` removed, then ``values`` set; after: every variable it touched as it was before."""
    unset = tuple(unset)
    old = {k: os.environ.get(k) for k in (*unset, *values)}
    for k in unset:
        os.environ.pop(k, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
