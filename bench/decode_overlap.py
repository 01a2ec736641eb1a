"""Decoding ahead of the model vs decoding while the model works (``execution.decode``), same run.

The model is the stand-in server (``support/standin_server.py``, a child process) answering every request
after ``--latency`` seconds, the way a GPU server's latency leaves this CPU idle: the question is how
much of the decoding hides behind it. Both modes score the same units with the same Q* through
``inference.predict`` (prefetch on), each on a fresh frame cache and response store, alternating, best
of ``--repeats``:

* upfront: decode every unit (``units.extract_units``, one pass per video), then score;
* overlapped: score at once; ``FrameSource`` decodes the next chunk's videos on the prefetch thread.

    PYTHONPATH=. python bench/decode_overlap.py [--videos 12] [--latency 0.05] [--max-frames 32]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from askhint_assets import paths  # noqa: E402
from askhint_assets.datasets.registry import load_dataset  # noqa: E402
from askhint_assets.demo.datasets import generate_demo  # noqa: E402
from askhint_assets.inference import predict  # noqa: E402
from askhint_assets.pipeline.runner import CachedRunner  # noqa: E402
from askhint_assets.prompts.loader import load_prompt_set  # noqa: E402
from askhint_assets.store import Store  # noqa: E402
from askhint_assets.video.frame_cache import FrameCache  # noqa: E402
from askhint_assets.video.frame_source import FrameSource, UnitFrames  # noqa: E402
from askhint_assets.video.sampling import SamplingConfig  # noqa: E402
from askhint_assets.video.units import (  # noqa: E402
    Unit,
    extract_units,
    plan_units,
    video_file_key,
)
from askhint_assets.vlm.backends.openai_backend import OpenAIBackend  # noqa: E402
from bench.throughput import compute_qstar, machine_line, make_subset, pick_subset, standin_server, table  # noqa: E402


def plan(videos, sampling: SamplingConfig) -> list[tuple[str, str, object]]:
    out = []
    for v in videos:
        key = video_file_key(v.path)
        for g in ("window", "video"):
            out += [(v.video_id, str(v.path), u) for u in plan_units(v, key, sampling, g, 4.0, 2.0)]
    return out


def score(mode: str, planned, sampling, templates, qs, base_url: str, model: str, work: Path) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    cache = FrameCache(work / "frames")
    runner = CachedRunner(OpenAIBackend(model=model, base_urls=[base_url], api_key_env="ASKHINT_BENCH_NO_KEY",
                                        max_concurrency=8), Store(work / "db.duckdb"), batch_size=8)
    units = [Unit(dataset="bench", plan="p", video_id=vid, unit=i, start_frame=u.window.start,
                  end_frame=u.window.end, frames_key=u.frames_key, frames_fps=u.frames_fps)
             for i, (vid, _, u) in enumerate(planned)]
    t0 = time.perf_counter()
    decode_s = 0.0
    if mode == "upfront":
        by_video: dict[str, list] = {}
        for _vid, path, u in planned:
            by_video.setdefault(path, []).append(u)
        for path, us in by_video.items():
            extract_units(path, us, cache, sampling.max_side)
        decode_s = time.perf_counter() - t0
        load = lambda key: cache.load(key)[0]  # noqa: E731
    else:
        source = FrameSource(cache, [UnitFrames(vid, path, u) for vid, path, u in planned], sampling.max_side)
        load = source.load
    rows = predict(units, template="askhint", templates=templates, questions=qs, question_set="qs-bench",
                   model=model, runner=runner, load_frames=load)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "decode_ahead_s": decode_s, "units": len(rows), "requests": runner.stats.sent}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=12, help="demo videos (half anomalous)")
    ap.add_argument("--latency", type=float, default=0.05, help="stand-in model seconds per request")
    ap.add_argument("--max-frames", type=int, default=32, help="frames per unit")
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs per mode (best reported)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)
    print("machine at start:", machine_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="askhint-decode-") as tmp:
        tmp = Path(tmp)
        full = generate_demo(tmp / "demo")
        data = make_subset(full, tmp / "subset", pick_subset(full, args.videos))
        videos = load_dataset("ucf_crime", data).videos
        sampling = SamplingConfig(max_frames=args.max_frames, fallback_fps=4.0, min_frames=2, max_side=None)
        planned = plan(videos, sampling)
        prompt_dir = paths.prompts_store() / "ucf_crime"
        templates, qs = load_prompt_set(prompt_dir).templates, compute_qstar(prompt_dir)
        results: dict[str, list[dict]] = {"upfront": [], "overlapped": []}
        with standin_server(tmp / "standin.log") as (base_url, model):
            ctl = base_url.rsplit("/v1", 1)[0] + "/_standin/config"
            req = urllib.request.Request(ctl, data=json.dumps({"delay_s": args.latency}).encode(), method="POST")
            urllib.request.urlopen(req, timeout=10).read()
            for _ in range(args.repeats):
                for mode in ("upfront", "overlapped"):
                    results[mode].append(score(mode, planned, sampling, templates, qs, base_url, model,
                                               tmp / f"work-{mode}"))
    best = {m: min(r, key=lambda x: x["wall_s"]) for m, r in results.items()}
    up, over = best["upfront"], best["overlapped"]
    print(f"\n{len(videos)} demo videos, {len(planned)} units (4 s windows, stride 2 s, plus whole videos), "
          f"{args.max_frames} frames per unit at full size (96x128), stand-in model {args.latency} s per request")
    print(table(["", "upfront (decode, then score)", "overlapped (decode while scoring)"], [
        [f"wall s, best of {args.repeats}", f"{up['wall_s']:.2f}", f"{over['wall_s']:.2f}"],
        ["  of which decoding before the first request", f"{up['decode_ahead_s']:.2f}", "0 (on the prefetch thread)"],
        ["requests sent", str(up["requests"]), str(over["requests"])],
        ["speed-up", "1.00x", f"{up['wall_s'] / over['wall_s']:.2f}x"],
    ]))
    print("machine at end:", machine_line())
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
