"""The demo through the stand-in server behaving like different OpenAI-compatible servers (Dagster runs).

vLLM: one video part per request (with its media-IO fields), scores from log-probabilities.
``transformers serve`` (no log-probabilities, 422 to vLLM-only fields): scores from the answer text,
recorded as such with the reason, counted in the report and flagged by the WARN check.
No video parts: the frames go as images.
"""

from __future__ import annotations

import pytest

from support import fault_harness as harness


@pytest.fixture
def home(prepared, tmp_path):
    return harness.clone(prepared, tmp_path / "home")


def _parts(body: dict) -> list[str]:
    return [p["type"] for m in body["messages"] if isinstance(m["content"], list) for p in m["content"]]


def test_vllm_one_video_per_request_scored_from_logprobs(home, standin):
    out = harness.materialize(home)
    assert out.ok, out.message
    assert standin.log and all(_parts(e["body"]) == ["video_url", "text"] for e in standin.log)
    assert all(e["body"]["media_io_kwargs"]["video"]["num_frames"] == e["n_frames"] for e in standin.log)
    assert home.query("SELECT DISTINCT score_source FROM predictions") == [("logprobs",)]
    assert harness.check_passed(home, "askhint_predictions", "scored_from_logprobs") is True


@pytest.mark.parametrize("mode", ["transformers_serve", "no_logprobs"])
def test_servers_without_logprobs_score_from_the_answer_text(home, standin, mode):
    standin.set_mode(mode)
    if mode == "transformers_serve":  # it refuses the per-request timing fields: accepted by setting only
        home.update_settings("model", video_timing="server_default")
    out = harness.materialize(home)
    assert out.ok, out.message  # the check warns, it does not block
    assert standin.log and all("logprobs" not in e["body"] for e in standin.log)
    if mode == "transformers_serve":
        assert all("media_io_kwargs" not in e["body"] and "mm_processor_kwargs" not in e["body"]
                   for e in standin.log)
    rows = home.query("SELECT DISTINCT score_source, score_reason, score FROM predictions")
    assert {r[0] for r in rows} == {"answer"} and {r[2] for r in rows} <= {0.0, 1.0}
    assert all("no log-probabilities" in r[1] for r in rows)
    assert harness.check_passed(home, "askhint_predictions", "scored_from_logprobs") is False
    report = harness.latest_metadata(home, "evaluation_report")
    n = home.scalar("SELECT count(*) FROM predictions")
    assert report["units_scored_from_answer_text"] == n
    if mode == "transformers_serve":  # its answers were timed at the server's own rate: the report says so
        assert report["answers_by_video_input"]["askhint"] == {"video/server_default": n // 2}
        text = (home.root / "reports" / "demo.md").read_text()
        assert "video/server_default" in text and "model.video_timing: server_default" in text


def test_server_without_video_parts_gets_images(home, standin):
    standin.set_mode("no_video")
    out = harness.materialize(home)
    assert out.ok, out.message
    assert all(set(_parts(e["body"])) == {"image_url", "text"} for e in standin.log)
    assert home.query("SELECT DISTINCT score_source FROM predictions") == [("logprobs",)]
