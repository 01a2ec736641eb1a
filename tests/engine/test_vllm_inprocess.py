"""The in-process ``vllm`` backend with a real vLLM engine: the demo completes and agrees with the transformers
backend; a run whose step fails after the engine started still exits (problem 3 of issue 19)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from engine.agreement import compare
from engine.demo import DemoHome, make_home
from engine.server import CPU_ENV


@pytest.fixture(scope="module")
def vllm_home(tmp_path_factory, cache: Path) -> DemoHome:
    home = make_home(tmp_path_factory.mktemp("home-vllm"), {"backend": "vllm", "path": "smoke"}, cache)
    home.env.update(CPU_ENV)
    home.materialize()
    return home


def test_the_demo_through_the_in_process_engine(vllm_home: DemoHome, transformers_home: DemoHome) -> None:
    for template in ("askhint", "abstract"):
        got = vllm_home.predictions(template)
        assert {src for _, _, src in got.values()} == {"logprobs"}
        agreement = compare(got, transformers_home.predictions(template))
        print(template, agreement.summary())
        assert agreement.within_tolerance(), f"{template}: {agreement}"
    (fp,) = {json.loads(f)["vllm_version"] for (f,) in vllm_home.query("SELECT DISTINCT fingerprint FROM responses")}
    assert fp  # which vLLM answered


def test_a_failing_in_process_run_exits(tmp_path: Path, cache: Path) -> None:
    # a context too short for any demo request: the engine starts, every request fails, the step fails
    model = {"backend": "vllm", "path": "smoke", "max_model_len": 64}
    home = make_home(tmp_path / "home", model, cache)
    home.env.update(CPU_ENV)
    home.run("askhint", "observe")
    t0 = time.monotonic()
    try:
        out = home.run("dagster", "asset", "materialize", "-m", "askhint_assets.definitions", "--select",
                       "*askhint_predictions", check=False, timeout_s=900)
    except subprocess.TimeoutExpired:
        pytest.fail("the failed run did not exit within 900 s (an engine process left running?)")
    assert out.returncode != 0, out.stdout[-2000:]
    print(f"failed run exited after {time.monotonic() - t0:.0f} s")
    assert "model request(s) failed" in out.stdout + out.stderr
    errors = {e for (e,) in home.query("SELECT DISTINCT error FROM model_calls WHERE NOT ok")}
    assert errors and all(e.startswith("vllm engine:") for e in errors), errors  # the engine ran and refused them
    left = subprocess.run(["pgrep", "-f", "EngineCore"], capture_output=True, text=True).stdout.split()
    assert not left, f"engine processes left running: {left}"
