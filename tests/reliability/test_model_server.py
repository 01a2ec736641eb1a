"""Rows 3, 4 and 8: the model server down, slow, rate-limiting, failing or answering garbage; answers
that ignore the template; and the API key, which must never be written anywhere.

The tests of a module share its homes and run in file order: the last one greps what the others left.
"""

from __future__ import annotations

import re
from collections import Counter

import dagster as dg
import pytest

from support import fault_harness as harness
from support.local_net import free_port

pytestmark = pytest.mark.slow

# video -> fault on every request about it: rate limit, server error, non-JSON body, dropped
# connection, an answer slower than the client's timeout
FAULTS = {
    "Shooting001_x264": "429",
    "Vandalism001_x264": "500",
    "Normal_Videos_002_x264": "garbage",
    "Normal_Videos_003_x264": "close",
    "Stealing001_x264": "hang",
}
ERRORS = {"429": "HTTP 429", "500": "HTTP 500", "garbage": "invalid JSON", "close": "connection error",
          "hang": "timeout"}
TIMEOUT_S = 4.0
ATTEMPTS = 1 + 2  # max_retries: 2 (transient faults); a permanent one (garbage) is tried once
FAILED = re.compile(r"(\w+): (\d+) model request\(s\) failed after retries \((\d+) unit\(s\) unscored\); "
                    r"the (\d+) other units are stored")


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


@pytest.fixture(scope="module")
def fault_home(prepared, tmp_path_factory):
    home = harness.clone(prepared, tmp_path_factory.mktemp("faults") / "home")
    # a hung request is held until the test releases it, so the timeout only has to be above what a normal
    # answer takes with 16 in flight on a busy machine
    home.update_settings("model", timeout_s=TIMEOUT_S, batch_size=16, max_concurrency=16)
    return home


@pytest.fixture(scope="module")
def nonsense_home(prepared, tmp_path_factory):
    return harness.clone(prepared, tmp_path_factory.mktemp("nonsense") / "home")


def _units(home) -> int:
    return home.scalar("SELECT count(*) FROM scoring_units")


def test_server_down_fails_every_request_with_a_clear_message(fault_home, standin):
    url = fault_home.settings()["model"]["base_urls"]
    fault_home.update_settings("model", base_urls=[_dead_url()])
    try:
        out = harness.materialize(fault_home)
    finally:
        fault_home.update_settings("model", base_urls=url)
    assert not out.ok
    m = FAILED.search(out.message)
    assert m, out.message
    assert (int(m[2]), int(m[3]), int(m[4])) == (_units(fault_home), _units(fault_home), 0)
    assert fault_home.scalar("SELECT count(*) FROM model_calls WHERE ok") == 0
    errors = [e for (e,) in fault_home.query("SELECT error FROM model_calls")]
    assert errors and all("connection error" in e and "gave up after 3 attempts" in e for e in errors), errors[:3]
    assert fault_home.scalar("SELECT count(*) FROM predictions") == 0
    assert fault_home.scalar("SELECT count(*) FROM videos WHERE status = 'ok'") == len(harness.SUBSET)


def test_persistent_faults_fail_only_their_requests_after_bounded_retries(fault_home, standin):
    runs_before = [r for (r,) in fault_home.query("SELECT DISTINCT run_id FROM model_calls")]
    standin.hang_s = 600.0  # held on standin.hang_release: the client gives up after TIMEOUT_S, every attempt
    standin.fault_rule = harness.fault_by_video(fault_home, FAULTS)
    try:
        out = harness.materialize(fault_home)
    finally:
        standin.hang_release.set()
    assert not out.ok
    m = FAILED.search(out.message)
    assert m, out.message
    n, ok = len(FAULTS), _units(fault_home) - len(FAULTS)
    assert (int(m[2]), int(m[3]), int(m[4])) == (n, n, ok), out.message
    # both templates: every faulted request tried 1 + max_retries times (garbage once: not retryable)
    tried = Counter(e["fault"] for e in standin.log if e.get("fault"))
    assert tried == {k: 2 * (1 if k == "garbage" else ATTEMPTS) for k in FAULTS.values()}, tried
    errors = [e for (e,) in fault_home.query(
        "SELECT error FROM model_calls WHERE NOT ok AND NOT list_contains(?, run_id)", [runs_before])]
    assert len(errors) == 2 * n
    for kind in FAULTS.values():
        assert any(ERRORS[kind] in e for e in errors), (kind, errors)
    stored = {v for (v,) in fault_home.query("SELECT DISTINCT video_id FROM predictions")}
    assert stored == set(harness.SUBSET) - set(FAULTS)
    assert fault_home.scalar("SELECT count(*) FROM predictions") == 2 * ok


def test_rerun_after_the_fault_sends_only_the_failed_requests(fault_home, standin):
    answered = harness.ok_hashes(fault_home)
    # the server-down run's requests were keyed without the server's version (nobody answered the probe): a
    # probed rerun asks them under its own keys, so the failed requests to compare are the probed runs'
    failed = {h for (h,) in fault_home.query(
        "SELECT request_hash FROM model_calls WHERE NOT ok AND json_extract_string(fingerprint, '$.server_version') "
        "IS NOT NULL")} - answered
    runs_before = [r for (r,) in fault_home.query("SELECT DISTINCT run_id FROM model_calls")]
    rows_before = fault_home.scalar("SELECT count(*) FROM predictions")
    standin.inject("429")  # one-shot faults the retries absorb
    standin.inject("503")
    out = harness.materialize(fault_home)
    assert out.ok, out.message
    sent = [h for (h,) in fault_home.query(
        "SELECT request_hash FROM model_calls WHERE NOT list_contains(?, run_id)", [runs_before])]
    assert not set(sent) & answered
    stage2 = {h for (h,) in fault_home.query("SELECT stage2_request FROM predictions WHERE stage2_request IS NOT NULL")}
    assert failed <= set(sent) <= failed | stage2
    assert standin.request_count == len(sent) + 2  # + the two retried one-shot faults
    assert fault_home.scalar("SELECT count(*) FROM predictions") == rows_before + 2 * len(FAULTS)
    assert harness.lost(fault_home) == 0 and harness.duplicates(fault_home) == 0


def test_answers_off_the_template_are_kept_raw_and_scored_from_logprobs(nonsense_home, standin):
    standin.nonsense = True
    out = harness.materialize(nonsense_home)
    assert out.ok, out.message  # the parse-failure check warns, it does not block
    rows = nonsense_home.query("SELECT raw_stage1, parse_ok, score_source, answer, score FROM predictions")
    assert len(rows) == 2 * _units(nonsense_home)
    assert all(r[:4] == (harness.NONSENSE, False, "logprobs", None) and 0 < r[4] < 1 for r in rows), rows[:3]
    assert len({r[4] for r in rows}) > 2  # scores still follow the frames
    for asset in ("askhint_predictions", "abstract_predictions"):
        meta, n = harness.latest_metadata(nonsense_home, asset), _units(nonsense_home)
        assert meta["unparsed"] == n and meta["score_sources"] == {"logprobs": n}
    assert harness.check_passed(nonsense_home, "askhint_predictions", "parse_failure_rate") is False


def test_ui_binds_to_loopback_only():
    makefile = (harness.ROOT / "Makefile").read_text()
    recipe = re.search(r"^ui:.*\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert recipe and re.search(r"dagster dev\b.*-h 127\.0\.0\.1\b", recipe[1]), recipe
    for name in ("Makefile", "workspace.yaml", "dagster.yaml"):
        assert "0.0.0.0" not in (harness.ROOT / name).read_text(), name


def test_api_key_is_never_written(fault_home, nonsense_home):
    key = harness.API_KEY
    homes = [h for h in (fault_home, nonsense_home) if h.db.exists()]
    assert len(homes) == 2 and all(h.scalar("SELECT count(*) FROM model_calls WHERE ok") for h in homes)
    for home in homes:
        for path in home.root.rglob("*"):  # database, WAL, Dagster sqlite, logs, reports, cache
            if path.is_file():
                assert key.encode() not in path.read_bytes(), path
        tables = [t for (t,) in home.query("SELECT table_name FROM information_schema.tables")]
        for t in tables:  # DuckDB compresses strings on disk: search the values too
            assert home.scalar(f"SELECT count(*) FROM {t} WHERE contains({t}::VARCHAR, ?)", [key]) == 0, t
        with home.active(), dg.DagsterInstance.from_config(home.env["DAGSTER_HOME"]) as instance:
            for run in instance.get_runs():
                assert key not in dg.serialize_value(run)
                for event in instance.all_logs(run.run_id):
                    assert key not in dg.serialize_value(event), event.message
