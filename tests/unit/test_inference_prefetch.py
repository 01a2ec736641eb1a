"""``inference.prefetched``: order, errors, overlap, bounded look-ahead, worker shut down; predict with it."""

from __future__ import annotations

import threading
from contextlib import closing

import numpy as np
import pytest

from askhint_assets.inference import predict, predict_per_question, prefetched
from askhint_assets.pipeline.runner import CachedRunner
from askhint_assets.prompts.templates import default_templates
from askhint_assets.store import Store
from askhint_assets.video.units import Unit
from tests.fakes import FakeBackend


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("askhint-prefetch")]


def test_order_and_values_preserved() -> None:
    items = list(range(7))
    assert list(prefetched(items, lambda i: i * 10)) == [(i, i * 10) for i in items]
    assert list(prefetched([], lambda i: i)) == []
    assert list(prefetched(iter("ab"), str.upper)) == [("a", "A"), ("b", "B")]
    assert prefetch_threads() == []


def test_load_error_raised_when_its_item_is_reached() -> None:
    def load(i: int) -> int:
        if i == 2:
            raise KeyError(f"frames {i} missing")
        return i

    got = []
    with pytest.raises(KeyError, match="frames 2 missing"):
        for _, v in prefetched(range(5), load):
            got.append(v)
    assert got == [0, 1]  # items before the failing one were handed out first
    assert prefetch_threads() == []


def test_worker_shut_down_when_the_caller_fails() -> None:
    loads = []

    def load(i: int) -> int:
        loads.append(i)
        return i

    with pytest.raises(RuntimeError, match="model failed"), closing(prefetched(range(10), load)) as it:
        for i, _ in it:
            if i == 1:
                raise RuntimeError("model failed")
    assert prefetch_threads() == []
    assert loads in ([0, 1], [0, 1, 2])  # one item ahead at most (2 may be cancelled before it starts)


def test_next_load_overlaps_work_on_current_item() -> None:
    """Load i+1 runs while the caller still works on item i; the one after waits for the next request.

    The work on item i waits (event, no timing threshold) until load i+1 has finished: with strictly
    sequential loading it would never finish and the wait would time out. Load i+1 itself finishes only after
    the work on item i has started (an event too), so the order checked below never depends on timing.
    """
    events: list[tuple[str, int]] = []
    lock = threading.Lock()
    loaded = {i: threading.Event() for i in range(4)}
    working = {i: threading.Event() for i in range(4)}

    def log(kind: str, i: int) -> None:
        with lock:
            events.append((kind, i))

    def load(i: int) -> int:
        log("load_start", i)
        if i > 0:
            assert working[i - 1].wait(timeout=30), f"load {i} finished before the work on {i - 1} started"
        log("load_end", i)
        loaded[i].set()
        return i

    for i, _ in prefetched(range(4), load):
        log("work_start", i)
        working[i].set()
        if i + 1 in loaded:
            assert loaded[i + 1].wait(timeout=30), f"load {i + 1} did not run during the work on {i}"
        log("work_end", i)
    pos = {e: k for k, e in enumerate(events)}
    for i in range(3):
        assert pos[("work_start", i)] < pos[("load_end", i + 1)] < pos[("work_end", i)]
        if i + 2 < 4:  # never two items ahead
            assert pos[("load_start", i + 2)] > pos[("work_end", i)]
    assert [i for k, i in events if k == "load_start"] == [0, 1, 2, 3]


# ---------------------------------------------------------------------------------------------- predict


def units(n: int) -> list[Unit]:
    return [Unit("d", "p", f"v{i}", 0, 0, 8, f"k{i}", 2.0) for i in range(n)]


def frames_of(n: int) -> dict[str, np.ndarray]:
    return {f"k{i}": np.full((2, 8, 8, 3), 30 if i % 3 else 220, np.uint8) for i in range(n)}


STABLE = ("video_id", "score", "score_source", "answer", "raw_stage1", "raw_stage2", "stage1_request")


@pytest.mark.parametrize("mode", ["askhint", "per_question"])
def test_predict_same_rows_with_and_without_prefetch(tmp_path, mode: str) -> None:
    frames = frames_of(7)
    out = {}
    for prefetch in (True, False):
        runner = CachedRunner(FakeBackend(), Store(tmp_path / f"{mode}-{prefetch}.duckdb"))
        common = dict(templates=default_templates(), questions=["Is anyone fighting?", "Is there fire?"],
                      question_set="qs", model="fake", runner=runner, load_frames=frames.__getitem__,
                      chunk_size=3, prefetch=prefetch)
        if mode == "askhint":
            rows = predict(units(7), template="askhint", **common)
        else:
            rows = predict_per_question(units(7), **common)
        out[prefetch] = [{k: r[k] for k in STABLE} for r in rows]
    assert out[True] == out[False]
    assert [r["video_id"] for r in out[True]] == [f"v{i}" for i in range(7)]


def test_predict_propagates_frame_load_errors(tmp_path) -> None:
    frames = frames_of(5)
    del frames["k4"]  # the last chunk's frames are missing from the cache
    stored: list[str] = []
    runner = CachedRunner(FakeBackend(), Store(tmp_path / "d.duckdb"))
    with pytest.raises(KeyError, match="k4"):
        predict(units(5), template="abstract", templates=default_templates(), questions=[], question_set="a",
                model="fake", runner=runner, load_frames=frames.__getitem__, chunk_size=2,
                on_rows=lambda rows: stored.extend(r["video_id"] for r in rows))
    assert stored == ["v0", "v1", "v2", "v3"]  # the chunks before the failing one were scored and kept
    assert prefetch_threads() == []
