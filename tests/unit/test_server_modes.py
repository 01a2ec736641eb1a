"""Servers that are not vLLM: the openai backend probes, sends only what each accepts, scores from the
answer text where no log-probabilities come back (recorded as such), and stops on servers that truncate
videos. Runs the pipeline's scoring code (``inference.predict``, cache, DuckDB) against the stand-in.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest

from askhint_assets.errors import BackendError
from askhint_assets.inference import predict, predict_per_question
from askhint_assets.pipeline.runner import CachedRunner
from askhint_assets.prompts.templates import default_templates
from askhint_assets.store import SCHEMA_VERSION, Store
from askhint_assets.video.units import Unit
from askhint_assets.vlm.backends.openai_backend import OpenAIBackend
from support.standin_server import StandinServer

MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
T = default_templates()
QS = ["Is anyone fighting?", "Is anything on fire?"]
LEVELS = {"v0": 20, "v1": 230, "v2": 40, "v3": 210}  # the stand-in says Abnormal above 128


@pytest.fixture(scope="module")
def server():
    with StandinServer(model=MODEL) as s:
        yield s


@pytest.fixture
def standin(server: StandinServer):
    server.reset()
    yield server
    server.reset()


def units(n_frames: int = 4) -> tuple[list[Unit], dict[str, np.ndarray]]:
    us, frames = [], {}
    for i, (vid, level) in enumerate(LEVELS.items()):
        key = f"{vid}-{n_frames}"
        frames[key] = np.full((n_frames, 48, 64, 3), level, np.uint8)
        us.append(Unit("demo", "p1", vid, 0, 0, 100, key, 2.0))
        assert i == len(us) - 1
    return us, frames


def run(standin: StandinServer, tmp_path: Path, n_frames: int = 4, per_question: bool = False,
        **kw) -> tuple[list[dict], OpenAIBackend, Store]:
    b = OpenAIBackend(MODEL, [standin.base_url], api_key_env="ASKHINT_NO_KEY", max_retries=1, backoff_base_s=0.01,
                      **kw)
    store = Store(tmp_path / "db.duckdb")
    runner = CachedRunner(b, store, run_id="r1")
    us, frames = units(n_frames)
    common = {"templates": T, "questions": QS, "question_set": "q", "model": MODEL, "runner": runner,
              "load_frames": frames.get, "on_rows": lambda rows: store.upsert("predictions", rows)}
    rows = predict_per_question(us, **common) if per_question else predict(us, template="askhint", **common)
    return rows, b, store


def test_vllm_mode_one_video_per_request_scored_from_logprobs(standin: StandinServer, tmp_path: Path) -> None:
    rows, b, store = run(standin, tmp_path)
    assert b.capabilities().as_dict() == {"logprobs": True, "video": True,
                                          "fields": ["media_io_kwargs", "mm_processor_kwargs"], "timing": "request",
                                          "version": "0.32.0+standin", "video_error": None}
    fp = b.fingerprint()
    assert fp["video_mode"] == "video" and "server" not in fp and fp["server_version"] == "0.32.0+standin"
    stage1 = [e for e in standin.log if e["body"]["max_tokens"] == 4]
    assert len(stage1) == len(LEVELS)
    for e in stage1:
        parts = [p["type"] for m in e["body"]["messages"] if isinstance(m["content"], list) for p in m["content"]]
        assert parts == ["video_url", "text"] and e["n_frames"] == 4
        assert e["body"]["media_io_kwargs"] == {"video": {"num_frames": 4, "fps": 2.0}}
        assert e["body"]["mm_processor_kwargs"] == {"fps": 2.0} and e["body"]["logprobs"] is True
    assert [r["score_source"] for r in rows] == ["logprobs"] * 4 and all(r["score_reason"] is None for r in rows)
    assert [r["answer"] for r in rows] == ["Normal", "Abnormal", "Normal", "Abnormal"]
    assert 0 < rows[0]["score"] < 0.5 < rows[1]["score"] < 1
    assert store.scalar("SELECT count(*) FROM predictions WHERE score_source = 'logprobs'") == 4


@pytest.mark.parametrize("mode", ["no_logprobs", "transformers_serve", "no_logprobs_with_media"])
def test_servers_without_logprobs_are_scored_from_the_answer_text(mode: str, standin: StandinServer,
                                                                  tmp_path: Path) -> None:
    standin.set_mode(mode)
    # transformers serve refuses the per-request timing fields: it runs only where the settings accept its timing
    timing = "server_default" if mode == "transformers_serve" else "per_request"
    rows, b, store = run(standin, tmp_path, video_timing=timing)
    caps = b.fingerprint()["server"]
    assert caps["logprobs"] is False and caps["video"] is True
    assert bool(caps["fields"]) is (mode != "transformers_serve")
    assert caps["timing"] == ("server_default" if mode == "transformers_serve" else "unchecked")
    bodies = [e["body"] for e in standin.log]
    assert bodies and all("logprobs" not in body for body in bodies)  # nothing the server ignores or refuses
    if mode == "transformers_serve":
        assert all("media_io_kwargs" not in body and "mm_processor_kwargs" not in body for body in bodies)
    assert [r["score_source"] for r in rows] == ["answer"] * 4
    assert [r["score"] for r in rows] == [0.0, 1.0, 0.0, 1.0]
    got = store.query("SELECT video_id, score_source, score_reason FROM predictions ORDER BY video_id")
    assert got["score_source"].to_list() == ["answer"] * 4
    assert all("no log-probabilities" in r for r in got["score_reason"].to_list())


def test_server_without_video_parts_gets_images(standin: StandinServer, tmp_path: Path) -> None:
    standin.set_mode("no_video")
    rows, b, _ = run(standin, tmp_path)
    assert b.fingerprint()["server"]["video"] is False and b.fingerprint()["video_mode"] == "images"
    for e in standin.log:
        parts = [p["type"] for m in e["body"]["messages"] if isinstance(m["content"], list) for p in m["content"]]
        assert parts == ["image_url"] * 4 + ["text"] and "media_io_kwargs" not in e["body"]
    assert [r["score_source"] for r in rows] == ["logprobs"] * 4


def test_per_question_mode_on_a_server_without_logprobs(tmp_path: Path) -> None:
    from tests.contract.conftest import YesNoStandinServer  # answers the per-question template with Yes/No

    with YesNoStandinServer(model=MODEL) as yes_no:
        yes_no.set_mode("no_logprobs")
        rows, _, _ = run(yes_no, tmp_path, per_question=True)
    assert {r["score_source"] for r in rows} == {"answer"} and all(r["score_reason"] for r in rows)
    assert [r["score"] for r in rows] == [0.0, 1.0, 0.0, 1.0]


def test_server_that_truncates_videos_stops_the_run(standin: StandinServer, tmp_path: Path) -> None:
    standin.set_mode("old_vllm")  # ignores per-request media_io_kwargs: keeps the first 32 frames
    with pytest.raises(BackendError) as e:
        run(standin, tmp_path, n_frames=40)
    msg = str(e.value)
    assert standin.base_url in msg and "about 32 of the 40 frames" in msg and '"num_frames": -1' in msg
    assert standin.request_count == 0  # nothing was scored on a truncated video
    standin.reset()
    rows, _, _ = run(standin, tmp_path / "vllm", n_frames=40)  # current vLLM honours media_io_kwargs
    assert [r["score_source"] for r in rows] == ["logprobs"] * 4
    assert all(e["body"]["media_io_kwargs"]["video"]["num_frames"] == 40 for e in standin.log)


def test_a_server_that_changes_mid_run_loses_and_resends_nothing(standin: StandinServer, tmp_path: Path) -> None:
    rows, b, store = run(standin, tmp_path)
    first = len(standin.log)
    standin.set_mode("transformers_serve")  # restarted as another server: refuses vLLM fields, no logprobs
    b2 = OpenAIBackend(MODEL, [standin.base_url], api_key_env="ASKHINT_NO_KEY", max_retries=1, probe=False)
    fields = b2.build_body(rows_request())
    assert "media_io_kwargs" in fields  # unprobed: sent as for vLLM
    out = b2.generate([rows_request()])[0]
    assert out.ok and out.choice_logprobs is None and "no log-probabilities" in out.extra["no_logprobs"]
    assert out.extra["attempts"] == 2  # the 422 was answered by resending without the vLLM-only fields
    # the same run again with the first backend's fingerprint: everything is a cache hit, nothing is resent
    runner = CachedRunner(b, store, run_id="r2")
    us, frames = units()
    again = predict(us, template="askhint", templates=T, questions=QS, question_set="q", model=MODEL, runner=runner,
                    load_frames=frames.get)
    assert runner.stats.sent == 0 and len(standin.log) == first + 2
    assert [r["score"] for r in again] == [r["score"] for r in rows]


def rows_request():
    from askhint_assets.prompts.templates import STAGE1_CHOICES, stage1_messages
    from askhint_assets.vlm.types import VLMRequest

    return VLMRequest(stage1_messages(T, QS), np.full((4, 48, 64, 3), 30, np.uint8), frames_fps=2.0,
                      choices=STAGE1_CHOICES, max_new_tokens=4)


def test_schema_migration_adds_score_reason(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_info (version INTEGER, applied_at TIMESTAMP)")
    con.execute("INSERT INTO schema_info VALUES (1, now())")
    con.execute("CREATE TABLE predictions (dataset VARCHAR, plan VARCHAR, video_id VARCHAR, unit INTEGER, "
                "start_frame INTEGER, end_frame INTEGER, question_set VARCHAR, model VARCHAR, template VARCHAR, "
                "score DOUBLE, score_source VARCHAR, PRIMARY KEY (dataset, plan, video_id, unit, question_set, "
                "model, template))")
    con.execute("INSERT INTO predictions VALUES ('d', 'p', 'v', 0, 0, 1, 'q', 'm', 'askhint', 0.5, 'logprobs')")
    con.close()
    store = Store(db)
    assert store.scalar("SELECT max(version) FROM schema_info") == SCHEMA_VERSION == 4
    assert store.query("SELECT score_reason FROM predictions")["score_reason"].to_list() == [None]
    assert store.scalar("SELECT count(*) FROM server_probes") == 0
    assert store.query("SELECT score_path FROM predictions")["score_path"].to_list() == [None]  # version 4
    assert json.loads(json.dumps(store.query("SELECT version FROM schema_info")["version"].to_list())) == [1, 4]


# -- what a real vLLM 0.32 and transformers serve did (issue 19), replayed on the stand-in -------------------------


def test_untrusted_vllm_stops_before_scoring_naming_the_flag(standin: StandinServer, tmp_path: Path) -> None:
    standin.set_mode("untrusted_vllm")  # vLLM 0.32 without --trust-request-mm-kwargs: 400 to either field
    with pytest.raises(BackendError) as e:
        run(standin, tmp_path)
    assert standin.base_url in str(e.value) and "--trust-request-mm-kwargs" in str(e.value)
    assert "video_timing: server_default" in str(e.value)
    assert standin.request_count == 0  # stopped before any scoring request


def test_server_default_timing_is_accepted_only_by_setting_and_recorded(standin: StandinServer,
                                                                        tmp_path: Path) -> None:
    standin.set_mode("untrusted_vllm")
    rows, b, store = run(standin, tmp_path, video_timing="server_default")
    assert b.fingerprint()["server"]["timing"] == "server_default"
    assert all("media_io_kwargs" not in e["body"] and "mm_processor_kwargs" not in e["body"] for e in standin.log)
    stored = json.loads(store.scalar("SELECT DISTINCT fingerprint FROM responses"))
    assert stored["server"]["timing"] == "server_default"  # every cached answer says how its video was timed
    assert [r["score_source"] for r in rows] == ["logprobs"] * 4


def test_a_rate_that_changes_nothing_stops_the_run(standin: StandinServer, tmp_path: Path) -> None:
    standin.timing_field = "nothing"  # takes both fields, but neither sets the time positions (vLLM before #47736)
    with pytest.raises(BackendError, match="same log-probabilities"):
        run(standin, tmp_path)
    assert standin.request_count == 0


def test_the_probe_retries_like_any_request(standin: StandinServer, tmp_path: Path) -> None:
    standin.fault_probes = True  # a rate-limited endpoint: the first answer to every request is a 429
    seen: set[str] = set()

    def once(body: dict) -> str | None:
        key = json.dumps(body, sort_keys=True)
        if key in seen:
            return None
        seen.add(key)
        return "429"

    standin.fault_rule = once
    rows, b, _ = run(standin, tmp_path)
    assert b.fingerprint()["video_mode"] == "video" and "server" not in b.fingerprint()
    assert [r["score_source"] for r in rows] == ["logprobs"] * 4


def test_a_rerun_with_every_answer_cached_contacts_no_server(standin: StandinServer, tmp_path: Path) -> None:
    run(standin, tmp_path)
    assert standin.probe_count > 0
    probes, requests = standin.probe_count, standin.request_count
    _, _, store = run(standin, tmp_path)  # a new backend and runner on the same store
    assert (standin.probe_count, standin.request_count) == (probes, requests)
    assert store.scalar("SELECT count(*) FROM server_probes") == 1
    standin.set_mode("no_logprobs")  # the server changed; a new question makes the run ask it again
    b2 = OpenAIBackend(MODEL, [standin.base_url], api_key_env="ASKHINT_NO_KEY", max_retries=1)
    runner = CachedRunner(b2, store, run_id="r3")
    us, frames = units()
    predict(us, template="askhint", templates=T, questions=[*QS, "Is anyone running?"], question_set="q2",
            model=MODEL, runner=runner, load_frames=frames.get)
    assert standin.probe_count > probes  # probed before sending: the new fingerprint says no log-probabilities
    assert runner.fingerprint["server"]["logprobs"] is False and runner.stats.sent > 0


def test_a_server_that_fails_on_video_gets_images(standin: StandinServer, tmp_path: Path) -> None:
    standin.set_mode("no_video_decoder")  # transformers serve whose video decoder cannot load: 500 to every video
    rows, b, _ = run(standin, tmp_path)
    fp = b.fingerprint()
    assert fp["video_mode"] == "images" and fp["server"]["video"] is False and fp["server"]["timing"] == "none"
    assert standin.log and all(
        {p["type"] for m in e["body"]["messages"] if isinstance(m["content"], list) for p in m["content"]}
        == {"image_url", "text"} for e in standin.log)
    assert all(r["score_source"] == "answer" for r in rows)  # no log-probabilities there


def test_a_field_refused_mid_run_is_not_sent_again(standin: StandinServer, tmp_path: Path) -> None:
    b = OpenAIBackend(MODEL, [standin.base_url], api_key_env="ASKHINT_NO_KEY", max_retries=1, max_concurrency=1)
    assert b.capabilities().fields == ("media_io_kwargs", "mm_processor_kwargs")
    standin.set_mode("strict")  # restarted with a schema that refuses both fields
    out = b.generate([rows_request(), rows_request(), rows_request()])
    assert all(r.ok for r in out)
    refused = [e for e in standin.log if "mm_processor_kwargs" in e["body"]]
    assert len(refused) == 1  # the first request met the 422; the next ones were built without the fields


def test_a_busy_version_endpoint_does_not_change_the_fingerprint(standin: StandinServer, tmp_path: Path) -> None:
    """Seen under load: a /version that failed once made a rerun's fingerprint differ, re-sending everything."""
    standin.version_busy = 1  # the backend here retries once
    _, b, _ = run(standin, tmp_path)
    assert b.fingerprint()["server_version"] == "0.32.0+standin" and standin.version_busy == 0
