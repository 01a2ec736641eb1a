"""The demo through the openai backend against a real ``vllm serve`` (the README's recipe, the committed smoke
model as it is), compared with the transformers backend; a rerun; prefix caching; a server started without
``--trust-request-mm-kwargs``. Problems 1, 2, 5 and 6 of issue 19 fail here if they come back."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from engine.agreement import compare
from engine.demo import DemoHome, make_home
from engine.server import VLLM_SERVE_FLAGS, RunningServer, vllm_server


def test_every_unit_is_answered_from_log_probabilities(openai_home: DemoHome, transformers_home: DemoHome) -> None:
    for template in ("askhint", "abstract"):
        got, ref = openai_home.predictions(template), transformers_home.predictions(template)
        assert got and len(got) == len(ref)
        assert {src for _, _, src in got.values()} == {"logprobs"}


def test_scores_and_answers_agree_with_the_transformers_backend(openai_home: DemoHome,
                                                                 transformers_home: DemoHome) -> None:
    for template in ("askhint", "abstract"):
        agreement = compare(openai_home.predictions(template), transformers_home.predictions(template))
        print(template, agreement.summary())
        assert agreement.within_tolerance(), f"{template}: {agreement}"


def test_the_fingerprint_names_the_server_and_its_timing(openai_home: DemoHome, vllm: RunningServer) -> None:
    version = httpx.get(vllm.root + "/version", timeout=10).json()["version"]
    fingerprints = [json.loads(f) for (f,) in openai_home.query("SELECT DISTINCT fingerprint FROM responses")]
    assert len(fingerprints) == 1
    fp = fingerprints[0]
    assert fp["server_version"] == version  # which vLLM answered
    assert fp["video_mode"] == "video" and "server" not in fp  # video parts, both fields, fps per request


def test_a_rerun_with_nothing_changed_sends_nothing(openai_home: DemoHome, vllm: RunningServer) -> None:
    calls = openai_home.model_calls()
    served = vllm.metrics()["vllm:request_success_total"]
    openai_home.materialize()
    assert openai_home.model_calls() == calls
    assert vllm.metrics()["vllm:request_success_total"] == served  # not even a probe


def test_prefix_cache_serves_part_of_the_prompts(openai_home: DemoHome, vllm: RunningServer) -> None:
    m = vllm.metrics()
    assert m["vllm:prefix_cache_queries_total"] > 0
    share = m["vllm:prefix_cache_hits_total"] / m["vllm:prefix_cache_queries_total"]
    print(f"prefix cache: {share:.1%} of prompt tokens")
    assert share > 0.05  # stage 2 repeats stage 1's video and system text


def test_a_server_without_trust_request_mm_kwargs_stops_the_run(tmp_path: Path, cache: Path, smoke_dir: Path,
                                                               logs: Path) -> None:
    recipe = tuple(f for f in VLLM_SERVE_FLAGS if f != "--trust-request-mm-kwargs")
    with vllm_server(smoke_dir, logs / "vllm-untrusted.log", recipe=recipe) as server:
        model = {"backend": "openai", "path": str(smoke_dir), "base_urls": [server.base_url],
                 "api_key_env": "ASKHINT_NO_KEY"}
        home = make_home(tmp_path / "home", model, cache)
        out = home.materialize("*askhint_predictions", check=False)
        served = server.metrics().get("vllm:request_success_total", 0.0)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert server.base_url in text and "--trust-request-mm-kwargs" in text and "video_timing: server_default" in text
    assert home.model_calls() == 0 and not home.query("SELECT * FROM predictions")
    assert served <= 4  # only the probe's requests that the server answered (text, video without fields)


def test_a_prompt_longer_than_the_served_context_fails_with_the_server_s_reason(vllm: RunningServer,
                                                                              smoke_dir: Path) -> None:
    """The openai backend does not know a served model's context before asking: vLLM refuses the request, and
    the unit fails with the server's reason (never a truncated prompt scored as if whole)."""
    from askhint_assets.vlm.backends.openai_backend import OpenAIBackend
    from askhint_assets.vlm.types import Message, VLMRequest

    backend = OpenAIBackend(str(smoke_dir), [vllm.base_url], api_key_env="ASKHINT_NO_KEY", max_retries=0, probe=False)
    long_text = "Is anyone fighting near the door? " * 800  # several thousand tokens > the model's 4,096
    (out,) = backend.generate([VLMRequest([Message("user", long_text)], None, choices=("Yes", "No"))])
    assert not out.ok and "HTTP 400" in out.error
    print("vLLM's reason:", out.error[:300])
    assert "4096" in out.error or "context" in out.error.lower()
