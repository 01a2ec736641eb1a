"""Does fast sampling change the scores? The demo data set scored with ``exact`` and with
``nearest_keyframe`` sampling, the same model, Q* and templates, in one run.

    PYTHONPATH=. python bench/fast_sampling_scores.py --model askhint_assets/demo/fixtures/smoke-qwen2_5_vl-<recipe> \
        [--max-offset-s 0.5] [--videos 0]

The demo's 36 generated clips at the pipeline's default sampling (16 frames per unit at 112 px, 4 s
windows with a 2 s stride plus one unit per video), scored with the ASK-Hint joint template by the
smoke-test model (``TransformersBackend`` on the CPU; its AUC says nothing about ASK-Hint, only
whether the frames it is shown change its answers). Printed per sampling mode: frame AUC per
granularity, decoding CPU seconds, and the distance between the frames used and the frames wanted
(from each unit's frame-cache entry). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from askhint_assets import paths  # noqa: E402
from askhint_assets.datasets.registry import load_dataset  # noqa: E402
from askhint_assets.demo.datasets import generate_demo  # noqa: E402
from askhint_assets.evaluation.frames import video_frame_scores, window_frame_scores  # noqa: E402
from askhint_assets.evaluation.metrics import evaluate  # noqa: E402
from askhint_assets.inference import predict  # noqa: E402
from askhint_assets.pipeline.runner import CachedRunner  # noqa: E402
from askhint_assets.prompts.loader import load_prompt_set  # noqa: E402
from askhint_assets.store import Store  # noqa: E402
from askhint_assets.video.frame_cache import FrameCache  # noqa: E402
from askhint_assets.video.sampling import SamplingConfig  # noqa: E402
from askhint_assets.video.units import (  # noqa: E402
    Unit,
    extract_units,
    plan_units,
    video_file_key,
)
from bench.feed_gpu import table  # noqa: E402
from bench.throughput import compute_qstar, machine_line, make_subset, pick_subset  # noqa: E402

GRANULARITIES = ("window", "video")


def run_mode(videos, sampling: SamplingConfig, backend, templates, qs, work: Path) -> dict:
    cache = FrameCache(work / "frames")
    planned = {g: [] for g in GRANULARITIES}
    cpu0 = time.process_time()
    offsets = []
    for v in videos:
        key = video_file_key(v.path)
        units = {g: plan_units(v, key, sampling, g, 4.0, 2.0) for g in GRANULARITIES}
        extract_units(v.path, [u for us in units.values() for u in us], cache, sampling.max_side,
                      mode=sampling.mode, max_offset_s=sampling.max_offset_s)
        for g, us in units.items():
            planned[g] += [(v, u) for u in us]
            for u in us:
                offsets += np.abs(np.array(cache.load(u.frames_key)[1]["used"]) - u.indices).tolist()
    decode_cpu = time.process_time() - cpu0
    runner = CachedRunner(backend, Store(work / "db.duckdb"), batch_size=4)
    out = {"decode_cpu_s": decode_cpu, "offsets": np.array(offsets)}
    for g, pairs in planned.items():
        units = [Unit(dataset="demo", plan=g, video_id=v.video_id, unit=u.window.index, start_frame=u.window.start,
                      end_frame=u.window.end, frames_key=u.frames_key, frames_fps=u.frames_fps) for v, u in pairs]
        rows = predict(units, template="askhint", templates=templates, questions=qs, question_set="qs-bench",
                       model="smoke", runner=runner, load_frames=lambda k: cache.load(k)[0])
        by_video: dict[str, list] = {}
        for r in rows:
            by_video.setdefault(r["video_id"], []).append((r["start_frame"], r["end_frame"], r["score"]))
        scores = {
            v.video_id: (window_frame_scores(by_video[v.video_id], v.num_frames) if g == "window"
                         else video_frame_scores(by_video[v.video_id][0][2], v.num_frames))
            for v in videos
        }
        out[g] = {"frame_auc": evaluate(scores, videos).frame_auc, "scores": [r["score"] for r in rows]}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a smoke-test model folder")
    ap.add_argument("--max-offset-s", type=float, default=0.5, help="the fast mode's bound (seconds)")
    ap.add_argument("--videos", type=int, default=0, help="demo videos (0: all 36)")
    args = ap.parse_args(argv)
    print("command:", " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]))
    print("machine at start:", machine_line(), flush=True)
    from askhint_assets.vlm.backends.transformers_backend import TransformersBackend

    with tempfile.TemporaryDirectory(prefix="askhint-fastscores-") as tmp:
        tmp = Path(tmp)
        root = generate_demo(tmp / "demo")
        if args.videos:
            root = make_subset(root, tmp / "subset", pick_subset(root, args.videos))
        videos = load_dataset("ucf_crime", root).videos
        prompt_dir = paths.prompts_store() / "ucf_crime"
        templates, qs = load_prompt_set(prompt_dir).templates, compute_qstar(prompt_dir)
        backend = TransformersBackend(args.model, batch_size=4)
        base = {"max_frames": 16, "fallback_fps": 4.0, "min_frames": 2, "max_side": 112}  # the pipeline's defaults
        modes = {"exact": SamplingConfig(**base),
                 f"nearest_keyframe ±{args.max_offset_s:g} s": SamplingConfig(
                     **base, mode="nearest_keyframe", max_offset_s=args.max_offset_s)}
        res = {name: run_mode(videos, sc, backend, templates, qs, tmp / f"work{i}")
               for i, (name, sc) in enumerate(modes.items())}
    names = list(modes)
    exact = res[names[0]]
    rows = [[f"frame AUC, {g}"] + [f"{res[n][g]['frame_auc'] * 100:.2f}" for n in names] for g in GRANULARITIES]
    for g in GRANULARITIES:
        diffs = np.abs(np.array(res[names[1]][g]["scores"]) - np.array(exact[g]["scores"]))
        rows.append([f"units whose score changed, {g}", "-",
                     f"{int((diffs > 1e-6).sum())} of {len(diffs)} (max change {diffs.max():.3f})"])
    rows.append(["decoding CPU s (all units)"] + [f"{res[n]['decode_cpu_s']:.2f}" for n in names])
    for n in names:
        off = res[n]["offsets"]
        res[n]["offset_text"] = f"mean {off.mean():.2f}, max {int(off.max())}, {int((off == 0).mean() * 100)}% exact"
    rows.append(["distance used to wanted (frames)"] + [res[n]["offset_text"] for n in names])
    print(f"\n{len(videos)} demo videos; smoke-test model (not a result about ASK-Hint); Q* of {len(qs)} questions")
    print(table(["", *names], rows))
    print("\nmachine at end:", machine_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
