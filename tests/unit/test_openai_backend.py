"""OpenAIBackend against the stand-in vLLM-format server: answers, scale-out, retries, failures, secrecy."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from askhint_assets.vlm.backends.openai_backend import OpenAIBackend
from askhint_assets.vlm.score import match_choice_logprobs
from askhint_assets.vlm.types import Message, VLMBackend, VLMRequest
from support.standin_server import ANSWER_MASS, StandinServer

MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
SECRET = "sk-test-SECRET-0123456789"
CHOICES = ("Normal", "Abnormal")


@pytest.fixture
def server():
    with StandinServer(model=MODEL) as s:
        yield s


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("ASKHINT_TEST_KEY", SECRET)


def backend(urls, **kw) -> OpenAIBackend:
    kw.setdefault("backoff_base_s", 0.01)
    kw.setdefault("backoff_max_s", 0.05)
    kw.setdefault("timeout_s", 10.0)
    return OpenAIBackend(MODEL, urls if isinstance(urls, list) else [urls], api_key_env="ASKHINT_TEST_KEY", **kw)


def req(brightness: int = 30, text: str = "Normal or Abnormal?", frames: int = 4, choices=CHOICES) -> VLMRequest:
    arr = np.full((frames, 24, 32, 3), brightness, np.uint8)
    return VLMRequest([Message("system", "You watch CCTV."), Message("user", text)], arr, choices=choices)


def test_batch_with_frames_in_order(server):
    b = backend(server.base_url, video_mode="images")
    assert isinstance(b, VLMBackend)
    levels = [20, 220, 30, 240, 10, 250]
    out = b.generate([req(v) for v in levels])
    assert [r.ok for r in out] == [True] * 6
    assert [r.text for r in out] == ["Abnormal" if v > 128 else "Normal" for v in levels]
    for r, v in zip(out, levels, strict=True):
        assert set(r.choice_logprobs) == set(CHOICES)
        winner = "Abnormal" if v > 128 else "Normal"
        assert r.choice_logprobs[winner] == pytest.approx(math.log(0.99 * ANSWER_MASS))
        assert r.choice_logprobs[winner] > r.choice_logprobs[next(c for c in CHOICES if c != winner)]
    entry = server.log[0]
    assert entry["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert entry["n_frames"] == 4
    body = entry["body"]
    assert body["temperature"] == 0 and body["logprobs"] is True and body["top_logprobs"] == 20
    user = body["messages"][1]["content"]
    assert [p["type"] for p in user] == ["image_url"] * 4 + ["text"]
    assert user[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert body["messages"][0] == {"role": "system", "content": "You watch CCTV."}
    assert b.stats == {"requests": 6, "attempts": 6, "retries": 0, "failures": 0}


def test_video_mode_sends_one_video_part(server):
    b = backend(server.base_url, video_mode="video")
    r = req(200, frames=5)
    r.frames_fps = 2.0
    (out,) = b.generate([r])
    assert out.ok and out.text == "Abnormal"
    body = server.log[0]["body"]
    parts = body["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["video_url", "text"]
    assert parts[0]["video_url"]["url"].startswith("data:video/jpeg;base64,")
    assert server.log[0]["n_frames"] == 5
    assert body["mm_processor_kwargs"] == {"fps": 2.0}


def test_text_only_request(server):
    b = backend(server.base_url)
    msgs = [Message("user", "Group these questions into themes.")]
    (out,) = b.generate([VLMRequest(msgs, None, max_new_tokens=200)])
    assert out.ok and out.text.startswith("Group: ") and "\nReason: " in out.text
    assert out.choice_logprobs is None
    body = server.log[0]["body"]
    assert body["messages"] == [{"role": "user", "content": "Group these questions into themes."}]
    assert "logprobs" not in body and body["max_tokens"] == 200


def test_concurrency_is_bounded(server):
    """Events, not timing: the server holds every request until the test opens a gate. The client must get
    three requests in flight at once (each arrival is counted; fewer would never arrive and the wait
    fails), and while those three are held no fourth may arrive; then all twelve finish."""
    arrived, gate = threading.Semaphore(0), threading.Event()

    def hold(body: dict) -> None:
        arrived.release()
        gate.wait(60)
        return None

    server.fault_rule = hold
    b = backend(server.base_url, max_concurrency=3, timeout_s=120.0)
    out: list = []
    worker = threading.Thread(target=lambda: out.extend(b.generate([req(v) for v in range(12)])))
    worker.start()
    try:
        for k in range(3):
            assert arrived.acquire(timeout=60), f"only {k} requests in flight at once; max_concurrency is 3"
        assert not arrived.acquire(timeout=0.5), "a fourth request arrived while three were in flight"
        assert server.max_in_flight == 3
    finally:
        gate.set()
        worker.join(120)
    assert len(out) == 12 and all(r.ok for r in out)
    assert server.max_in_flight == 3 and server.request_count == 12


def test_round_robin_over_two_servers():
    with StandinServer(model=MODEL) as s1, StandinServer(model=MODEL) as s2:
        b = backend([s1.base_url, s2.base_url])
        out = b.generate([req(v) for v in range(8)])
        assert all(r.ok for r in out)
        assert s1.request_count == 4 and s2.request_count == 4


def test_retries_transient_errors_then_succeeds(server):
    for kind in ("429", "500", "503", "close"):
        server.inject(kind)
    b = backend(server.base_url, max_retries=4)
    (out,) = b.generate([req(220)])
    assert out.ok and out.text == "Abnormal"
    assert out.extra["attempts"] == 5 and server.request_count == 5
    assert b.stats == {"requests": 1, "attempts": 5, "retries": 4, "failures": 0}


def test_honours_retry_after(server, monkeypatch):
    """The wait chosen before the retry is the server's Retry-After (read from the backoff, not a clock)."""
    server.retry_after = 0.3
    server.inject("429")
    b = backend(server.base_url, backoff_base_s=0.01, backoff_max_s=5.0)  # its own backoff: <= 0.01 s
    chosen: list[tuple[float, float]] = []
    real = b._backoff

    def spy(attempt: int, retry_after: float | None) -> float:
        delay = real(attempt, retry_after)
        chosen.append((retry_after, delay))
        return delay

    monkeypatch.setattr(b, "_backoff", spy)
    (out,) = b.generate([req()])
    assert out.ok and len(chosen) == 1
    hint, delay = chosen[0]
    assert hint == 0.3 and delay >= 0.3


def test_timeout_is_retried(server):
    """The first attempt hangs until the test releases it (an event, after the client is done), so the
    client can only answer by giving up on it (``timeout_s``) and sending a second, answered at once;
    the timeout is generous for that second answer on a busy machine."""
    server.hang_s = 600.0
    server.inject("hang")
    b = backend(server.base_url, timeout_s=2.0, max_retries=1)
    try:
        (out,) = b.generate([req()])
    finally:
        server.hang_release.set()
    assert out.ok and out.extra["attempts"] == 2 and server.request_count == 2
    assert [e["fault"] for e in server.log] == ["hang", None]
    assert b.stats["retries"] == 1


def test_exhausted_retries_fail_only_that_request(server):
    server.fault_rule = lambda body: "503" if "FAILME" in str(body["messages"]) else None
    b = backend(server.base_url, max_retries=2)
    out = b.generate([req(30), req(30, text="FAILME Normal or Abnormal?"), req(220)])
    assert [r.ok for r in out] == [True, False, True]
    assert out[0].text == "Normal" and out[2].text == "Abnormal"
    assert "503" in out[1].error and "gave up after 3 attempts" in out[1].error
    assert out[1].text == "" and out[1].choice_logprobs is None
    assert server.request_count == 5
    assert b.stats["failures"] == 1 and b.stats["retries"] == 2


def test_garbage_body_fails_clearly_without_retry(server):
    server.inject("garbage")
    b = backend(server.base_url)
    (out,) = b.generate([req()])
    assert not out.ok and "invalid JSON" in out.error
    assert server.request_count == 1


@pytest.mark.parametrize("fault", ["400", "wrong-model"])
def test_no_retry_on_client_errors(server, fault):
    if fault == "400":
        server.inject("400")
        b = backend(server.base_url)
    else:
        b = OpenAIBackend("no-such-model", [server.base_url], backoff_base_s=0.01)
    (out,) = b.generate([req()])
    assert not out.ok and ("HTTP 400" in out.error or "HTTP 404" in out.error)
    assert server.request_count == 1 and b.stats["retries"] == 0


def test_missing_logprobs_leave_the_answer_text_to_score():
    data = {"choices": [{"message": {"content": "Normal"}, "logprobs": None}]}
    text, lps, extra = OpenAIBackend.parse_response(data, CHOICES)
    assert (text, lps) == ("Normal", None) and "no log-probabilities" in extra["no_logprobs"]
    assert OpenAIBackend.parse_response(data, None)[0] == "Normal"


def test_bad_frames_fail_before_sending(server):
    r = req()
    r.frames = r.frames.astype(np.float32)
    (out,) = backend(server.base_url).generate([r])
    assert not out.ok and "uint8" in out.error and server.request_count == 0


def test_api_key_never_leaks(caplog):
    with StandinServer(model=MODEL, api_key="a-different-key") as s:
        b = backend(s.base_url, max_retries=1)
        s.inject("500")
        with caplog.at_level(logging.DEBUG):
            (out,) = b.generate([req()])
    assert not out.ok and "401" in out.error
    assert s.log[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
    for text in (repr(b), str(b.fingerprint()), str(b.stats), out.error, str(out.extra), caplog.text):
        assert SECRET not in text
    assert b.fingerprint() == {
        "backend": "openai", "model": MODEL, "family": "qwen2_5_vl", "video_mode": "video",
        "jpeg_quality": 90, "top_logprobs": 20, "max_new_tokens": 64, "temperature": 0,
    }  # fmt: skip


def test_split_first_token_counts_as_prefix(server):
    server.abnormal_token = "Ab"  # a tokenizer that splits "Abnormal" into "Ab" + "normal"
    (out,) = backend(server.base_url).generate([req(230)])
    assert out.text == "Abnormal" and out.choice_logprobs["Abnormal"] == pytest.approx(math.log(0.99 * ANSWER_MASS))


def test_match_choice_logprobs_rules():
    top = [("Normal", -0.5), (" Normal", -1.0), ("abnormal", -2.0), ("The", -3.0)]
    got = match_choice_logprobs(top, CHOICES)
    assert got["Normal"] == pytest.approx(math.log(math.exp(-0.5) + math.exp(-1.0)))
    assert got["Abnormal"] == pytest.approx(-2.0)  # case-insensitive fallback
    assert match_choice_logprobs([("The", -1.0), ("A", -2.0)], CHOICES) == {}  # absent: no entry
    assert match_choice_logprobs([("Yes", -0.1), ("yes", -9.0)], ("Yes", "No")) == {"Yes": -0.1}


def test_generate_from_thread_and_inside_running_loop(server):
    b = backend(server.base_url)
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(b.generate, [[req(30)], [req(220)]]))
    assert [o[0].text for o in outs] == ["Normal", "Abnormal"]

    async def inside_loop():
        return b.generate([req(220)])

    assert asyncio.run(inside_loop())[0].text == "Abnormal"
