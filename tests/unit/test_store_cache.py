"""The DuckDB store, the content-addressed request cache and the inference loop, with a fake VLM."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest

from askhint_assets.inference import predict, prediction_row
from askhint_assets.pipeline.runner import CachedRunner
from askhint_assets.prompts.templates import default_templates
from askhint_assets.store import Store
from askhint_assets.store.predictions import activity, store_predictions
from askhint_assets.video.units import Unit
from askhint_assets.vlm.cache import request_hash
from askhint_assets.vlm.types import Message, VLMRequest
from tests.fakes import FakeBackend


def _req(key: str, value: int, text: str = "q") -> VLMRequest:
    return VLMRequest(
        messages=[Message("user", text)],
        frames=np.full((2, 4, 4, 3), value, np.uint8),
        frames_fps=2.0,
        frames_key=key,
        choices=("Normal", "Abnormal"),
    )


def test_request_hash_depends_on_what_determines_the_answer():
    fp = {"model": "m"}
    base = request_hash(_req("k1", 0), fp)
    assert base == request_hash(_req("k1", 0), fp)
    assert base != request_hash(_req("k2", 0), fp)
    assert base != request_hash(_req("k1", 0, text="other"), fp)
    assert base != request_hash(_req("k1", 0), {"model": "m2"})


def test_cache_hits_send_nothing_and_log_only_real_calls(tmp_path):
    store = Store(tmp_path / "db.duckdb")
    backend = FakeBackend()
    runner = CachedRunner(backend, store, run_id="r1", batch_size=2)
    reqs = [_req(f"k{i}", 200 if i % 2 else 10) for i in range(5)] + [_req("k0", 10)]
    first = runner.run(reqs)
    assert len(backend.sent) == 5  # the duplicate k0 request is sent once
    assert [r.text for _, r in first][:2] == ["Normal", "Abnormal"]
    again = CachedRunner(backend, store, run_id="r2").run(reqs)
    assert len(backend.sent) == 5
    assert [r.text for _, r in again] == [r.text for _, r in first]
    assert [r.choice_logprobs for _, r in again] == [r.choice_logprobs for _, r in first]
    calls = store.query("SELECT run_id, ok FROM model_calls")
    assert calls.height == 5 and set(calls["run_id"]) == {"r1"}


def test_failed_requests_are_logged_not_cached_and_retried_next_run(tmp_path):
    store = Store(tmp_path / "db.duckdb")
    backend = FakeBackend(fail_keys={"bad"})
    out = CachedRunner(backend, store).run([_req("good", 0), _req("bad", 0)])
    assert out[0][1].ok and not out[1][1].ok
    assert store.scalar("SELECT count(*) FROM responses") == 1
    assert store.scalar("SELECT count(*) FROM model_calls WHERE NOT ok") == 1
    backend.fail_keys.clear()
    CachedRunner(backend, store).run([_req("good", 0), _req("bad", 0)])
    assert [r.frames_key for r in backend.sent] == ["good", "bad", "bad"]


def _units(n: int) -> list[Unit]:
    return [Unit("d", "p", f"v{i // 2}", i % 2, 0, 10, f"f{i}", 2.0) for i in range(n)]


def test_predict_scores_from_logprobs_and_asks_stage2_only_when_abnormal(tmp_path):
    store = Store(tmp_path / "db.duckdb")
    backend = FakeBackend()
    frames = {f"f{i}": np.full((2, 4, 4, 3), 250 if i in (1, 2) else 5, np.uint8) for i in range(4)}
    runner = CachedRunner(backend, store)
    kept = []
    rows = predict(
        _units(4), template="askhint", templates=default_templates(), questions=["Do you see a fire?"],
        question_set="qs-1", model="fake", runner=runner, load_frames=frames.__getitem__, chunk_size=3,
        on_rows=kept.extend,
    )
    assert kept == rows and len(rows) == 4
    assert [r["answer"] for r in rows] == ["Normal", "Abnormal", "Abnormal", "Normal"]
    assert rows[1]["score"] > 0.99 and rows[0]["score"] < 0.01
    assert all(r["score_source"] == "logprobs" for r in rows)
    assert [r["group_name"] for r in rows] == [None, "Public Safety Incidents", "Public Safety Incidents", None]
    assert len(backend.sent) == 4 + 2
    stage1 = backend.sent[0].messages
    assert any("Do you see a fire?" in m.text for m in stage1)
    # the abstract template never asks stage 2 and never shows Q*
    rows_b = predict(
        _units(4), template="abstract", templates=default_templates(), questions=[], question_set="abstract",
        model="fake", runner=runner, load_frames=frames.__getitem__,
    )
    assert all(r["group_name"] is None for r in rows_b)
    assert all("fire" not in m.text for r in backend.sent[6:] for m in r.messages)


def test_predict_rejects_askhint_without_questions(tmp_path):
    with pytest.raises(ValueError, match="guiding question"):
        predict([], template="askhint", templates=default_templates(), questions=[], question_set="x",
                 model="m", runner=CachedRunner(FakeBackend(), Store(tmp_path / "d.duckdb")), load_frames=dict)


def _hold_lock(path: str, ready, release) -> None:
    import duckdb

    con = duckdb.connect(path)
    ready.set()
    release.wait(10)
    con.close()


def test_store_waits_for_another_process_holding_the_lock(tmp_path, monkeypatch):
    """Events, not a timer: the holder releases the lock only once the store has met it and backed off."""
    import askhint_assets.store.db as store_mod

    path = tmp_path / "db.duckdb"
    Store(path).upsert("responses", [{"request_hash": "a", "text": "x"}])
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold_lock, args=(str(path), ready, release))
    p.start()
    assert ready.wait(20)
    waits: list[float] = []
    real_sleep = store_mod.time.sleep

    def backoff(seconds: float) -> None:  # the store's wait on a held lock
        waits.append(seconds)
        release.set()
        real_sleep(min(seconds, 0.05))

    monkeypatch.setattr(store_mod.time, "sleep", backoff)
    try:
        Store(path, lock_timeout_s=60).upsert("responses", [{"request_hash": "b", "text": "y"}])
    finally:
        release.set()
        p.join(10)
    assert waits, "the store never met the other process's lock"
    assert Store(path).scalar("SELECT count(*) FROM responses") == 2


def test_store_gives_a_clear_error_when_the_lock_is_never_released(tmp_path):
    from askhint_assets.store import StoreError

    path = tmp_path / "db.duckdb"
    Store(path).scalar("SELECT 1")
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold_lock, args=(str(path), ready, release))
    p.start()
    assert ready.wait(20)
    try:
        with pytest.raises(StoreError, match=str(path)):
            Store(path, lock_timeout_s=0.5).scalar("SELECT 1")
    finally:
        release.set()
        p.join(10)


def test_per_question_mode_asks_each_question_and_aggregates(tmp_path):
    from askhint_assets.inference import predict_per_question

    store = Store(tmp_path / "db.duckdb")
    backend = FakeBackend()
    frames = {f"f{i}": np.full((2, 4, 4, 3), 250 if i == 1 else 5, np.uint8) for i in range(2)}
    qs = ["Do you see a fire?", "Do you see a fight?", "Do you see a crash?"]
    runner = CachedRunner(backend, store)
    rows = predict_per_question(_units(2), templates=default_templates(), questions=qs, question_set="qs",
                                model="fake", runner=runner, load_frames=frames.__getitem__)
    assert len(backend.sent) == 2 * 3
    assert [r["answer"] for r in rows] == ["Normal", "Abnormal"]
    assert rows[1]["score"] > 0.99 and rows[0]["score"] < 0.01
    assert rows[1]["rationale"] == "; ".join(qs)
    # editing one question re-asks only that question
    predict_per_question(_units(2), templates=default_templates(), questions=[*qs[:2], "Do you see smoke?"],
                         question_set="qs2", model="fake", runner=runner, load_frames=frames.__getitem__)
    assert len(backend.sent) == 6 + 2


def _hold_request_locks(path: str, hashes: list[str], ready, release) -> None:
    with Store(path).request_locks(hashes):
        ready.set()
        release.wait(20)


def _stripe_is_free(path: Path, stripe: str) -> bool:
    import fcntl

    folder = path.with_name(path.name + ".requests.locks")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / stripe, "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def test_request_locks_hold_only_the_stripes_of_their_requests(tmp_path):
    """Another process asking the same request waits; one asking different requests does not (shards)."""
    path = tmp_path / "db.duckdb"
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold_request_locks, args=(str(path), ["abc123", "abd999"], ready, release))
    p.start()
    try:
        assert ready.wait(20)
        assert not _stripe_is_free(path, "abc") and not _stripe_is_free(path, "abd")
        assert _stripe_is_free(path, "fff")
        with Store(path).request_locks(["fff000", "0aa111"]):  # other requests: taken at once
            pass
    finally:
        release.set()
        p.join(20)
    assert _stripe_is_free(path, "abc")  # released with the process's context


def test_activity_counts_the_data_sets_predictions_and_every_request(tmp_path):
    st = Store(tmp_path / "d.duckdb")
    with st.connect():  # the database, with its schema
        pass
    assert activity(st, ["a"]) == (0, 0, 0)
    st.upsert("model_calls", [{"call_id": f"c{i}", "request_hash": "h", "run_id": f"r{i % 2}"} for i in range(3)])
    store_predictions(st, [
        prediction_row(Unit(ds, "p", "v", i, 0, 8, "k", 1.0), question_set="q", model="m", template="askhint",
                       run_id="r")
        for ds, n in (("a", 2), ("b", 3)) for i in range(n)
    ])
    assert activity(st, ["a"]) == (2, 3, 2) and activity(st, ["a", "b"]) == (5, 3, 2)
