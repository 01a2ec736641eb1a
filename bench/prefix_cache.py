"""Prefix caching on a real vLLM, measured from vLLM's own counters: the demo through the openai backend against
``vllm serve`` with the README's recipe, beside the same server started without ``--enable-prefix-caching``.

Two workloads, each in a fresh home against a freshly started server (so no run warms another's cache):
``default`` (ASK-Hint stage 1, stage 2 for units judged abnormal, the abstract prompt) and ``per_question``
(the same plus each Q* question asked on its own). For each: requests and prompt tokens per video, and the
share of prompt tokens served from the prefix cache (``vllm:prefix_cache_hits_total`` over
``vllm:prefix_cache_queries_total``), with the wall time of the run. The baseline server is started with
``--no-enable-prefix-caching``: vLLM 0.32 caches prefixes by default, so leaving the flag out changes nothing
(a first run of this script did that and measured the same share both ways). Runs in the real-engine side environment:

    make bench-prefix-cache            # = .venv-vllm/bin/python bench/prefix_cache.py
    .venv-vllm/bin/python bench/prefix_cache.py --json out.json

On this 2-core CPU machine with the smoke-test model the four runs take about 15 minutes. The smoke model is
tiny and its video is short (16 frames at most, 112-pixel side), so the shares say how much of each prompt is
a repeated prefix, not how much GPU time the cache saves with a 7B model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from askhint_assets.demo.smoke_model import fixture_dir
from engine.demo import make_home
from engine.server import VLLM_SERVE_FLAGS, vllm_server

COUNTERS = ("vllm:request_success_total", "vllm:prompt_tokens_total", "vllm:prefix_cache_queries_total",
            "vllm:prefix_cache_hits_total")
WORKLOADS = {"default": {}, "per_question": {"scoring": {"per_question": True}}}


def measure(work: Path, workload: str, caching: bool) -> dict:
    # vLLM 0.32 caches prefixes by default: leaving --enable-prefix-caching out does not switch it off
    recipe = VLLM_SERVE_FLAGS if caching else tuple(
        "--no-enable-prefix-caching" if f == "--enable-prefix-caching" else f for f in VLLM_SERVE_FLAGS)
    name = f"{workload}-{'cache' if caching else 'nocache'}"
    model_dir = fixture_dir()
    with vllm_server(model_dir, work / f"{name}.log", recipe=recipe) as server:
        model = {"backend": "openai", "path": str(model_dir), "base_urls": [server.base_url],
                 "api_key_env": "ASKHINT_NO_KEY"}
        home = make_home(work / name, model, work / "cache", extra=WORKLOADS[workload])
        before = server.metrics()
        t0 = time.perf_counter()
        home.materialize()
        wall = time.perf_counter() - t0
        after = server.metrics()
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in COUNTERS}
    videos = int(home.query("SELECT count(*) FROM videos WHERE status = 'ok'")[0][0])
    per_template = dict(home.query("SELECT template, count(*) FROM predictions GROUP BY template"))
    queries = delta["vllm:prefix_cache_queries_total"]
    return {
        "workload": workload, "prefix_caching": caching, "videos": videos,
        "requests": int(delta["vllm:request_success_total"]), "model_calls": home.model_calls(),
        "requests_per_video": delta["vllm:request_success_total"] / videos,
        "prompt_tokens_per_video": delta["vllm:prompt_tokens_total"] / videos,
        "prefix_cache_share": (delta["vllm:prefix_cache_hits_total"] / queries) if queries else 0.0,
        "units_per_template": per_template, "wall_s": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the rows here too")
    ap.add_argument("--workdir", type=Path, help="keep homes and server logs here (default: a temporary folder)")
    a = ap.parse_args(argv)
    import vllm

    work = a.workdir or Path(tempfile.mkdtemp(prefix="askhint-prefix-"))
    print(f"vLLM {vllm.__version__} (CPU build), smoke-test model {fixture_dir().name}; recipe: "
          f"{' '.join(VLLM_SERVE_FLAGS)}; load average {os.getloadavg()[0]:.1f}")
    rows = [measure(work, w, c) for w in WORKLOADS for c in (True, False)]
    print(f"\n{'workload':<14}{'prefix cache':<14}{'scoring req':>12}{'all req':>9}{'req/video':>11}"
          f"{'prompt tok/video':>18}{'from cache':>12}{'wall s':>9}")
    for r in rows:
        print(f"{r['workload']:<14}{'on' if r['prefix_caching'] else 'off':<14}{r['model_calls']:>12}{r['requests']:>9}"
              f"{r['requests_per_video']:>11.1f}{r['prompt_tokens_per_video']:>18,.0f}"
              f"{r['prefix_cache_share']:>11.1%}{r['wall_s']:>9.1f}")
    print("(all req: what vLLM served, the probe's one-token requests included; req/video and prompt tok/video "
          "count those too)")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
