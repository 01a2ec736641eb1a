"""Rows 2 and 5: a run killed mid-scoring, and two runs at once against one ASKHINT_HOME.

Both run ``askhint update`` as subprocesses against the stand-in server (in this process), on a clone
of a home where everything before the model is already materialized.
"""

from __future__ import annotations

import pytest

from support import fault_harness as harness

pytestmark = pytest.mark.slow

LOCK_ERRORS = ("Could not set lock", "Conflicting lock", "database is locked", "StoreError", "Traceback")


def test_killed_run_resumes_without_repeating_a_finished_request(prepared, standin, tmp_path):
    home = harness.clone(prepared, tmp_path / "home")
    standin.delay_s = 0.25  # slow enough to kill mid-asset: 4 requests per batch, batches one after another
    first = harness.spawn(home, tmp_path / "first.log")
    try:
        harness.wait_for("10 model requests", lambda: standin.request_count >= 10 or first.poll() is not None, 240,
                         poll_s=0.02)
    finally:
        harness.kill(first)
    assert first.returncode == -9, (tmp_path / "first.log").read_text()[-3000:]
    sent_before = standin.request_count
    finished = harness.ok_hashes(home)  # the killed process's database opens, WAL and all
    killed_runs = [r for (r,) in home.query("SELECT DISTINCT run_id FROM model_calls")]
    assert 4 <= len(finished) <= sent_before, (len(finished), sent_before)

    standin.reset()
    second = harness.spawn(home, tmp_path / "second.log")
    assert second.wait(timeout=300) == 0, (tmp_path / "second.log").read_text()[-3000:]
    assert harness.API_KEY not in (tmp_path / "first.log").read_text() + (tmp_path / "second.log").read_text()
    resent = [h for (h,) in home.query(
        "SELECT request_hash FROM model_calls WHERE NOT list_contains(?, run_id)", [killed_runs])]
    assert not set(resent) & finished, "a request answered before the kill was sent again"
    assert standin.request_count == len(resent) == len(set(resent))
    assert harness.duplicates(home) == 0
    assert harness.lost(home) == 0
    assert home.scalar("SELECT count(DISTINCT report_id) FROM eval_reports") == 2


def test_two_runs_at_once_lose_and_duplicate_nothing(prepared, standin, tmp_path):
    home = harness.clone(prepared, tmp_path / "home")
    standin.delay_s = 0.05
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [harness.spawn(home, log) for log in logs]
    codes = [p.wait(timeout=300) for p in procs]
    texts = [log.read_text() for log in logs]
    assert codes == [0, 0], [t[-3000:] for t in texts]
    for text in texts:
        assert not [m for m in LOCK_ERRORS if m in text], text[-3000:]
        assert harness.API_KEY not in text
    assert harness.lost(home) == 0
    assert harness.duplicates(home) == 0
    # every request went to the model once, whichever run sent it
    assert standin.request_count == home.scalar("SELECT count(DISTINCT request_hash) FROM model_calls")
    assert home.scalar("SELECT count(*) FROM model_calls WHERE NOT ok") == 0
