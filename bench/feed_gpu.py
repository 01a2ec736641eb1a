"""How many client cores keep one GPU busy: frame preparation for a GPU-like server, measured here.

    PYTHONPATH=. python bench/feed_gpu.py [--ucf 12] [--xd 4] [--service-s 1.0] [--slots 1] [--json OUT]

One process, one run; every figure beside its baseline from the same run (the machine is shared, so
the load average is printed with each section):

1. **Decoding one video** (UCF-shaped: 320x240, 30 fps, 2 min; XD-shaped: 1280x720, 24 fps, 1 min;
   H.264 from x264 with its defaults, ``bench/shaped_videos.py``), the ASK-Hint sample (up to 128
   uniform frames, 1 fps for shorter videos) at ``max_side`` 448: a plain PyAV loop decoding every frame
   (the baseline), ``exact`` sampling, and ``nearest_keyframe`` unbounded and within ``--fast-offset``
   seconds; best of ``--repeats`` alternating runs, wall and CPU seconds, with the largest distance
   between a used frame and the wanted one.
2. **Feeding the model**: ``--ucf``/``--xd`` distinct videos of those shapes scored with the ASK-Hint
   joint template through the ``openai`` backend against ``support/standin_server.py`` (a child process)
   made to answer like a GPU: each request holds one of ``--slots`` slots for ``--service-s`` seconds
   (default: one 128-frame request per second, the issue's estimate for a 7B model on one H100/H200);
   the client keeps ``max(4, 2 x slots)`` requests in flight.
   Frames come through :class:`FrameSource` with 1 and with 2 decoding processes, for exact and fast
   sampling, each on a fresh frame cache and response store. Printed: wall time against the
   server-bound ideal (requests x service time / slots), the client's CPU seconds per video (this
   process plus its decoding processes), and from them the client cores one GPU needs; and the decoding
   alone (``FrameSource.prepare_all``, no model) with 1 and 2 processes.

Nothing is asserted: a measuring script, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from askhint_assets import paths  # noqa: E402
from askhint_assets.datasets.base import VideoRecord  # noqa: E402
from askhint_assets.inference import predict  # noqa: E402
from askhint_assets.pipeline.runner import CachedRunner  # noqa: E402
from askhint_assets.prompts.loader import load_prompt_set  # noqa: E402
from askhint_assets.store import Store  # noqa: E402
from askhint_assets.video.decode import decode_sampled, probe  # noqa: E402
from askhint_assets.video.frame_cache import FrameCache  # noqa: E402
from askhint_assets.video.frame_source import DecodeOptions, FrameSource, UnitFrames  # noqa: E402
from askhint_assets.video.sampling import SamplingConfig, sample_indices  # noqa: E402
from askhint_assets.video.units import (  # noqa: E402
    Unit,
    plan_units,
    video_file_key,
)
from askhint_assets.vlm.backends.openai_backend import OpenAIBackend  # noqa: E402
from bench.shaped_videos import shaped_video  # noqa: E402
from bench.throughput import machine_line  # noqa: E402

SHAPES = {"ucf": "UCF-shaped 320x240 30 fps", "xd": "XD-shaped 1280x720 24 fps"}
MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (pasted into the README as printed)."""
    return "\n".join("| " + " | ".join(r) + " |" for r in [headers, ["---"] * len(headers), *rows])


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(fn) -> tuple[float, float, object]:
    """(wall s, this process's CPU s, result)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def decode_all(path: Path, threads: str | None) -> int:
    with av.open(str(path)) as c:
        if threads:
            c.streams.video[0].thread_type = threads
        return sum(1 for _ in c.decode(video=0))


# ------------------------------------------------------------------------------------------- 1. decode


def decode_section(videos: dict[str, Path], args) -> tuple[str, dict]:
    out, report = [], {}
    for shape, path in videos.items():
        info = probe(path)
        wanted = sample_indices(info.num_frames, info.fps, SamplingConfig(max_frames=128, fallback_fps=1.0))
        cases = {
            "decode every frame, PyAV defaults (baseline)": lambda p=path: decode_all(p, None),
            "decode every frame, 1 thread": lambda p=path: decode_all(p, "NONE"),
            "exact (decode_frames)": lambda p=path, i=wanted: decode_sampled(p, i, 448),
            "exact, 1 thread (as in a decoding process)": lambda p=path, i=wanted: decode_sampled(p, i, 448, threads=1),
            "nearest_keyframe, unbounded": lambda p=path, i=wanted: decode_sampled(p, i, 448, "nearest_keyframe"),
            f"nearest_keyframe, max_offset_s {args.fast_offset:g}":
                lambda p=path, i=wanted: decode_sampled(p, i, 448, "nearest_keyframe", args.fast_offset),
            f"nearest_keyframe, max_offset_s {args.fast_offset / 2:g}":
                lambda p=path, i=wanted: decode_sampled(p, i, 448, "nearest_keyframe", args.fast_offset / 2),
        }
        load = os.getloadavg()[0]
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
        results: dict[str, object] = {}
        for _ in range(args.repeats):
            for name, fn in cases.items():
                wall, cpu, res = timed(fn)
                runs[name].append((wall, cpu))
                results[name] = res
        base_wall = min(w for w, _ in runs[next(iter(cases))])
        base_cpu = min(c for _, c in runs[next(iter(cases))])
        rows = []
        for name in cases:
            wall, cpu = min(w for w, _ in runs[name]), min(c for _, c in runs[name])
            res = results[name]
            if isinstance(res, int):
                off, distinct = "-", f"{res} (all)"
            else:
                off = str(int(np.abs(res.used - wanted).max()))
                distinct = str(len(set(res.used.tolist())))
            rows.append([name, f"{wall:.3f}", f"{cpu:.3f}", f"{base_wall / wall:.2f}x", f"{base_cpu / cpu:.2f}x",
                         off, distinct])
            report[f"{shape}/{name}"] = {"wall_s": runs[name], "cpu_s": [c for _, c in runs[name]]}
        out.append(f"\n{SHAPES[shape]}, {info.num_frames} frames ({info.duration_s:.0f} s), {len(wanted)} wanted "
                   f"frames, {len(keyframes(path))} keyframes; best of {args.repeats}; 1-min load average at "
                   f"start {load:.2f}")
        out.append(table(["", "wall s", "CPU s", "wall speed-up", "CPU speed-up", "max offset (frames)",
                          "distinct frames"], rows))
    return "\n".join(out), report


def keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [p.pts for p in c.demux(video=0) if p.size and p.is_keyframe]


# ------------------------------------------------------------------------------------------- 2. feed


def distinct_copies(src: Path, folder: Path, n: int) -> list[Path]:
    """``n`` remuxes of ``src`` differing in a metadata tag: the same decoding work, distinct files
    (and so distinct frame-cache keys)."""
    out = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        dst = folder / f"{src.stem}_copy{i}.mp4"
        if not dst.exists():
            with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as o:
                o.metadata["title"] = f"copy {i}"
                s = o.add_stream_from_template(inp.streams.video[0])
                for p in inp.demux(video=0):
                    if p.dts is not None:
                        p.stream = s
                        o.mux(p)
        out.append(dst)
    return out


def plan(paths_: list[Path], sampling: SamplingConfig) -> list[UnitFrames]:
    out = []
    for p in paths_:
        info = probe(p)
        rec = VideoRecord(p.stem, "Normal", (), (), path=p, num_frames=info.num_frames, fps=info.fps)
        out += [UnitFrames(p.stem, str(p), u) for u in plan_units(rec, video_file_key(p), sampling, "video", 4.0, None)]
    return out


def feed(planned: list[UnitFrames], sampling: SamplingConfig, workers: int, base_url: str, work: Path,
         templates, qs: list[str], chunk: int, model_on: bool) -> dict:
    """Score (or with ``model_on`` False only decode) ``planned`` on a fresh cache and store."""
    shutil.rmtree(work, ignore_errors=True)
    cache = FrameCache(work / "frames")
    units = [Unit(dataset="bench", plan="p", video_id=u.video_id, unit=u.unit.window.index,
                  start_frame=u.unit.window.start, end_frame=u.unit.window.end, frames_key=u.unit.frames_key,
                  frames_fps=u.unit.frames_fps) for u in planned]
    children0 = cpu_children()
    c0, w0 = time.process_time(), time.perf_counter()
    sent = 0
    with FrameSource(cache, planned, DecodeOptions.for_plan(sampling, workers=workers)) as source:
        if model_on:
            runner = CachedRunner(OpenAIBackend(model=MODEL, base_urls=[base_url], api_key_env="ASKHINT_BENCH_NO_KEY",
                                                max_concurrency=chunk), Store(work / "db.duckdb"), batch_size=chunk)
            predict(units, template="askhint", templates=templates, questions=qs, question_set="qs-bench",
                    model=MODEL, runner=runner, load_frames=source.load, chunk_size=chunk)
            sent = runner.stats.sent
        else:
            source.prepare_all()
        failed = dict(source.failed)
    wall = time.perf_counter() - w0
    cpu_main = time.process_time() - c0
    cpu_workers = cpu_children() - children0
    shutil.rmtree(work, ignore_errors=True)
    return {"wall_s": wall, "cpu_main_s": cpu_main, "cpu_workers_s": cpu_workers, "requests": sent,
            "videos": len({u.video_id for u in planned}), "failed": failed}


def standin(args, log: Path):
    with open(log, "w") as err:  # the child keeps its own copy of the file
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "support" / "standin_server.py"), "--port", "0", "--model", MODEL,
             "--service-s", str(args.service_s), "--slots", str(args.slots)],
            stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT,
        )
    line = proc.stdout.readline()
    if "http://127.0.0.1:" not in line:
        proc.kill()
        raise RuntimeError(f"stand-in server did not start (see {log}): {line!r}")
    return proc, line.split(" on ", 1)[1].strip()


def feed_section(sources: dict[str, Path], args, tmp: Path) -> tuple[str, dict]:
    prompt_set = load_prompt_set(paths.prompts_store() / "ucf_crime")
    # six questions of the prompt set (one per class) stand for Q*: only their length matters here
    qs = [qq[0] for qq in list(prompt_set.class_questions.values())[:6]]
    counts = {"ucf": args.ucf, "xd": args.xd}
    modes = {"exact": {}, f"nearest_keyframe ±{args.fast_offset:g} s":
             {"mode": "nearest_keyframe", "max_offset_s": args.fast_offset}}
    proc, base_url = standin(args, tmp / "standin.log")
    out, report = [], {}
    try:
        for shape, src in sources.items():
            if not counts[shape]:
                continue
            copies = distinct_copies(src, tmp / "copies", counts[shape])
            out.append(ceiling(shape, copies, args.workers))
            for mode, kw in modes.items():
                sampling = SamplingConfig(max_frames=128, fallback_fps=1.0, max_side=448, **kw)
                planned = plan(copies, sampling)
                load = os.getloadavg()[0]
                res = {}
                for model_on in (False, True):
                    for w in args.workers:
                        res[(model_on, w)] = feed(planned, sampling, w, base_url, tmp / "work", prompt_set.templates,
                                                  qs, max(4, 2 * args.slots), model_on)
                report[f"{shape}/{mode}"] = {f"{'model' if m else 'decode only'}/{w} workers": r
                                             for (m, w), r in res.items()}
                out.append(feed_table(shape, mode, len(copies), res, args, load))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return "\n".join(out), report


def ceiling(shape: str, copies: list[Path], workers: list[int]) -> str:
    """What more processes can gain on this machine now: the same videos decoded whole by a plain PyAV
    loop (no askhint code) in pools of each size (started before the clock)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    walls = {}
    load = os.getloadavg()[0]
    for w in workers:
        with ProcessPoolExecutor(w, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(abs, range(w)))  # started
            t = time.perf_counter()
            list(pool.map(decode_all, copies, ["NONE"] * len(copies)))
            walls[w] = time.perf_counter() - t
    rows = [["plain PyAV loop, every frame of the same videos: wall s"] + [f"{walls[w]:.2f}" for w in workers],
            ["  speed-up over 1 process (this machine's ceiling now)"]
            + [f"{walls[workers[0]] / walls[w]:.2f}x" for w in workers]]
    head = (f"\n{SHAPES[shape]}: {len(copies)} videos, baseline for the processes' speed-up; 1-min load average at "
            f"start {load:.2f}")
    return head + "\n" + table(["", *[f"{w} process{'es' if w > 1 else ''}" for w in workers]], rows)


def feed_table(shape: str, mode: str, n: int, res: dict, args, load: float) -> str:
    ws = args.workers
    rows = []
    dec = {w: res[(False, w)] for w in ws}
    rows.append(["decoding alone: wall s (videos/s)"] + [f"{dec[w]['wall_s']:.2f} ({n / dec[w]['wall_s']:.2f})"
                                                       for w in ws])
    rows.append([f"  speed-up over {ws[0]} worker"] + [f"{dec[ws[0]]['wall_s'] / dec[w]['wall_s']:.2f}x" for w in ws])
    mod = {w: res[(True, w)] for w in ws}
    ideal = {w: mod[w]["requests"] * args.service_s / args.slots for w in ws}
    rows.append(["scoring: wall s"] + [f"{mod[w]['wall_s']:.2f}" for w in ws])
    rows.append(["  server-bound ideal s (requests x service / slots)"]
                + [f"{ideal[w]:.2f} ({mod[w]['requests']} requests)" for w in ws])
    rows.append(["  wall / ideal"] + [f"{mod[w]['wall_s'] / ideal[w]:.2f}" for w in ws])
    cpu = {w: (mod[w]["cpu_main_s"] + mod[w]["cpu_workers_s"]) / n for w in ws}
    rows.append(["  client CPU s per video (this process + decoders)"]
                + [f"{cpu[w]:.2f} ({mod[w]['cpu_main_s'] / n:.2f} + {mod[w]['cpu_workers_s'] / n:.2f})" for w in ws])
    per_video_gpu = {w: ideal[w] / n for w in ws}
    rows.append(["  client cores per GPU (CPU s per video / GPU s per video)"]
                + [f"{cpu[w] / per_video_gpu[w]:.1f}" for w in ws])
    failed = {w: len(mod[w]["failed"]) for w in ws}
    if any(failed.values()):
        rows.append(["  failed videos"] + [str(failed[w]) for w in ws])
    head = (f"\n{SHAPES[shape]}: {n} videos, sampling {mode}; GPU stand-in {args.service_s:g} s per request, "
            f"{args.slots} at once; 1-min load average at start {load:.2f}")
    return head + "\n" + table([""] + [f"{w} decoding process{'es' if w > 1 else ''}" for w in ws], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos-dir", type=Path, default=Path(tempfile.gettempdir()) / "askhint-shaped-videos",
                    help="where the generated source videos are kept between runs")
    ap.add_argument("--ucf-seconds", type=float, default=120)
    ap.add_argument("--xd-seconds", type=float, default=60)
    ap.add_argument("--ucf", type=int, default=12, help="UCF-shaped videos to score (0: skip)")
    ap.add_argument("--xd", type=int, default=4, help="XD-shaped videos to score (0: skip)")
    ap.add_argument("--service-s", type=float, default=1.0, help="stand-in GPU seconds per request")
    ap.add_argument("--slots", type=int, default=1, help="requests the stand-in GPU serves at once")
    ap.add_argument("--fast-offset", type=float, default=1.0, help="max_offset_s of the fast mode")
    ap.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-decode", action="store_true", help="only section 2")
    ap.add_argument("--skip-feed", action="store_true", help="only section 1")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    print("command:", " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]))
    print("machine at start:", machine_line(), flush=True)
    sources = {"ucf": shaped_video(args.videos_dir, "ucf", args.ucf_seconds),
               "xd": shaped_video(args.videos_dir, "xd", args.xd_seconds)}
    report: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    if not args.skip_decode:
        text, report["decode"] = decode_section(sources, args)
        print("\n## 1. Decoding one video" + text, flush=True)
    if not args.skip_feed:
        with tempfile.TemporaryDirectory(prefix="askhint-feed-") as tmp:
            text, report["feed"] = feed_section(sources, args, Path(tmp))
        print("\n## 2. Feeding the model" + text)
    print("\nmachine at end:", machine_line())
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
