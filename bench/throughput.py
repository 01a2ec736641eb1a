"""Throughput of the model backends and where the time goes (issue "Model backends at production speed").

    python bench/throughput.py [--videos 12] [--model PATH] [--home DIR] [--json OUT]

One process, one run, every figure printed beside its baseline measured in the same run:

* per backend available here (``transformers`` with the smoke-test model; ``openai`` against the
  stand-in server of ``support/standin_server.py`` on 127.0.0.1, i.e. client overhead only, no model;
  ``vllm`` only if it imports): videos/s and seconds per video for decode + the ASK-Hint joint
  template (stage 1 + stage 2 for abnormal units) over the demo data set, cold caches;
* the share of that wall time spent decoding frames (PyAV, ``units.extract_units``), in the model
  (``backend.generate``), in DuckDB, in frame-cache file I/O, and elsewhere (planning, prompt
  building, hashing, parsing); frame-cache reads that ``predict`` prefetches on its background thread
  overlap the model and are reported beside the shares, not in them;
* the joint template's scoring wall (frames cached, empty response cache, model warm) with that prefetch
  against without it (``prefetch=False``), alternating, best of two each;
* the cache-hit rerun (the same scoring again: requests_sent should be 0) against the first run;
* model requests per video: joint ASK-Hint template vs per-question mode vs the abstract baseline;
* one full Dagster materialization of the pipeline (transformers backend, fresh home) timed per
  asset from the run's step events: time in Dagster = run wall time - sum of the assets' own work.

Nothing is asserted: this is a measuring script, not a test. The smoke-test model is tiny, so its
"model" share says little about a 7B model (see bench/gpu_qwen7b.py for that).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import select
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import defaultdict
from datetime import UTC
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from askhint_assets import paths  # noqa: E402
from askhint_assets.datasets.base import VideoRecord  # noqa: E402
from askhint_assets.datasets.registry import load_dataset  # noqa: E402
from askhint_assets.datasets.ucf_crime import ANNOTATION_FILE  # noqa: E402
from askhint_assets.demo.datasets import MANIFEST, generate_demo  # noqa: E402
from askhint_assets.hashing import hash_obj  # noqa: E402
from askhint_assets.inference import predict, predict_per_question  # noqa: E402
from askhint_assets.pipeline.runner import CachedRunner  # noqa: E402
from askhint_assets.prompts.loader import load_prompt_set, question_table  # noqa: E402
from askhint_assets.prompts.templates import STAGE1_CHOICES, Templates, stage1_messages  # noqa: E402
from askhint_assets.settings import (  # noqa: E402
    DatasetSettings,
    ModelSettings,
    PipelineSettings,
    SamplingSettings,
    ScoringSettings,
)
from askhint_assets.store import Store  # noqa: E402
from askhint_assets.video.frame_cache import FrameCache  # noqa: E402
from askhint_assets.video.sampling import SamplingConfig  # noqa: E402
from askhint_assets.video.units import (  # noqa: E402
    Unit,
    extract_units,
    plan_units,
    video_file_key,
)
from askhint_assets.vlm.types import VLMRequest  # noqa: E402
from support.environ import environ  # noqa: E402

STANDIN_LABEL = "openai client + stand-in server (no model): client overhead only"
BACKENDS = ("transformers", "openai", "vllm")
NO_KEY_ENV = "ASKHINT_BENCH_NO_API_KEY"  # never set: the stand-in needs no key


# ---------------------------------------------------------------------------------------- timing


class Clock:
    """Named wall-time accumulators (``with clock("model"): ...``)."""

    def __init__(self) -> None:
        self.t: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.t[name] += time.perf_counter() - t0

    def get(self, name: str) -> float:
        return self.t.get(name, 0.0)

    def reset(self) -> None:
        self.t.clear()


class TimedBackend:
    """A backend whose ``generate`` calls are timed as "model"."""

    def __init__(self, inner, clock: Clock) -> None:
        self.inner, self.clock = inner, clock
        self.backend_name, self.model_name = inner.backend_name, inner.model_name

    def fingerprint(self) -> dict:
        return self.inner.fingerprint()

    def generate(self, requests):
        with self.clock("model"):
            return self.inner.generate(requests)


class TimedStore(Store):
    """The DuckDB store with every read and write timed as "duckdb"."""

    def __init__(self, path: Path, clock: Clock) -> None:
        super().__init__(path)
        self.clock = clock

    def query(self, *a, **k):
        with self.clock("duckdb"):
            return super().query(*a, **k)

    def scalar(self, *a, **k):
        with self.clock("duckdb"):
            return super().scalar(*a, **k)

    def upsert(self, *a, **k):
        with self.clock("duckdb"):
            return super().upsert(*a, **k)

    def replace_where(self, *a, **k):
        with self.clock("duckdb"):
            return super().replace_where(*a, **k)

    def cached_responses(self, *a, **k):
        with self.clock("duckdb"):
            return super().cached_responses(*a, **k)

    def record_calls(self, *a, **k):
        with self.clock("duckdb"):
            return super().record_calls(*a, **k)


class TimedFrameCache(FrameCache):
    """The frame cache with its file I/O (npz write, read, existence check) timed as "frame_io".

    Reads on another thread than the main one (``predict``'s prefetch, overlapping the model) are timed
    as "frame_io_prefetch" instead: they are off the critical path.
    """

    def __init__(self, root: Path, clock: Clock) -> None:
        super().__init__(root)
        self.clock = clock

    def has(self, key):
        with self.clock("frame_io"):
            return super().has(key)

    def save(self, *a, **k):
        with self.clock("frame_io"):
            return super().save(*a, **k)

    def get(self, key):
        on_main = threading.current_thread() is threading.main_thread()
        with self.clock("frame_io" if on_main else "frame_io_prefetch"):
            return super().get(key)


# ---------------------------------------------------------------------------------------- setup


def machine_line() -> str:
    la = os.getloadavg()
    return (f"{os.cpu_count()} CPU cores; load average {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} (1/5/15 min); "
            "the machine is shared with other people's processes, so every figure is noisy: compare "
            "figures within this run only")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "dagster", "duckdb", "av", "numpy", "httpx", "vllm"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def pick_subset(full_root: Path, n: int) -> list[str]:
    """``n`` demo videos (relative paths): half anomalous, one class after another, half normal."""
    files = [f for f in json.loads((full_root / MANIFEST).read_text())["files"] if f.endswith(".mp4")]
    classes = {}
    for line in (full_root / ANNOTATION_FILE).read_text().splitlines():
        if line.strip():
            name, cls = line.split()[:2]
            classes[name] = cls
    normal = sorted(f for f in files if classes[Path(f).name] == "Normal")
    by_class: dict[str, list[str]] = defaultdict(list)
    for f in sorted(files):
        if classes[Path(f).name] != "Normal":
            by_class[classes[Path(f).name]].append(f)
    round_robin = [f for tier in zip(*(by_class[c] for c in sorted(by_class)), strict=False) for f in tier]
    anomalous = round_robin[: (n + 1) // 2]
    return anomalous + normal[: n - len(anomalous)]


def make_subset(full_root: Path, dest: Path, rels: list[str]) -> Path:
    """A UCF-Crime-layout folder holding only ``rels`` (hard links where possible) and their annotations."""
    shutil.rmtree(dest, ignore_errors=True)
    names = {Path(r).name for r in rels}
    for rel in rels:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(full_root / rel, dest / rel)
        except OSError:
            shutil.copy2(full_root / rel, dest / rel)
    lines = [ln for ln in (full_root / ANNOTATION_FILE).read_text().splitlines() if ln.split()[:1]
             and ln.split()[0] in names]
    (dest / ANNOTATION_FILE).write_text("\n".join(lines) + "\n")
    return dest


def resolve_model(arg: str | None, home: Path) -> tuple[Path, str]:
    """The smoke model folder to use and how it was found (an explicit path, or the shared smoke model)."""
    if arg:
        p = Path(arg).expanduser().resolve()
        if not (p / "config.json").is_file():
            sys.exit(f"--model {p}: no config.json there, not a model folder")
        return p, "given with --model"
    from askhint_assets.demo.smoke_model import ensure_smoke_model

    t0 = time.perf_counter()
    p = ensure_smoke_model()  # the committed fixture (or the shared model cache): what the demo and tests use
    return p, f"ensure_smoke_model() ({p.name}) in {time.perf_counter() - t0:.0f} s"


def compute_qstar(prompt_dir: Path) -> list[str]:
    """Q* exactly as the prompt assets compute it (embed, HDBSCAN, compress), without Dagster."""
    from askhint_assets.questions.cluster import ClusterConfig, cluster_questions
    from askhint_assets.questions.compress import compress
    from askhint_assets.questions.embed import Embedder

    ps = load_prompt_set(prompt_dir)
    rows = sorted(question_table(ps), key=lambda r: r["question_id"])  # the order the assets read them in
    questions = [r["question"] for r in rows]
    emb = Embedder().embed(questions)
    result = cluster_questions(emb, ClusterConfig.from_dict(ps.settings.get("clustering")))
    selected = compress(
        questions, emb, result.labels, target_size=int(ps.settings.get("target_size", 6)),
        per_cluster=tuple(ps.settings.get("per_cluster", (2, 3))),
        dedup_threshold=float(ps.settings.get("dedup_threshold", 0.95)),
        ids=[r["question_id"] for r in rows], linkage=ps.settings.get("merge_linkage", "ward"),
    )
    return [s.question for s in selected]


@contextlib.contextmanager
def standin_server(log_path: Path):
    """``support/standin_server.py`` as a child process on 127.0.0.1; yields ``(base_url, model)``."""
    model = "Qwen/Qwen2.5-VL-7B-Instruct"
    with open(log_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "support" / "standin_server.py"), "--port", "0", "--model", model],
            stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT,
        )
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            line = proc.stdout.readline() if ready else ""
            if "http://127.0.0.1:" not in line:
                raise RuntimeError(f"stand-in server did not start (see {log_path}): {line!r}")
            yield line.split(" on ", 1)[1].strip(), model
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------------------------------- scoring


class Bench:
    """What every backend run shares: videos, sampling, templates, Q*."""

    def __init__(self, args, videos: list[VideoRecord], templates: Templates, qs: list[str], home: Path) -> None:
        self.args = args
        self.videos = videos
        self.templates = templates
        self.qs = qs
        self.qset = "qs-" + hash_obj(qs)
        self.home = home
        d = SamplingSettings()
        self.sampling = SamplingConfig(max_frames=args.max_frames, fallback_fps=d.fallback_fps,
                                       min_frames=d.min_frames, max_side=args.max_side)
        self.scoring = ScoringSettings(granularities=tuple(args.granularity))

    def plan_and_decode(self, cache: FrameCache, clock: Clock) -> list[Unit]:
        """Plan every video's units and decode the uncached ones (one PyAV pass per video)."""
        units: list[Unit] = []
        sc = self.scoring
        for v in self.videos:
            with clock("plan"):
                key = video_file_key(v.path)
                planned = {g: plan_units(v, key, self.sampling, g, sc.window_s, sc.stride_s) for g in sc.granularities}
            io_before = clock.get("frame_io")
            t0 = time.perf_counter()
            extract_units(v.path, [u for us in planned.values() for u in us], cache, self.sampling.max_side)
            clock.t["decode"] += time.perf_counter() - t0 - (clock.get("frame_io") - io_before)
            units += [
                Unit(dataset="bench", plan=f"bench-{g}", video_id=v.video_id, unit=u.window.index,
                     start_frame=u.window.start, end_frame=u.window.end, frames_key=u.frames_key,
                     frames_fps=u.frames_fps)
                for g, us in planned.items()
                for u in us
            ]
        return units

    def score(self, mode: str, units: list[Unit], backend, store: Store, cache: FrameCache, clock: Clock,
              run_id: str, prefetch: bool = True) -> tuple[list[dict], CachedRunner]:
        runner = CachedRunner(TimedBackend(backend, clock), store, run_id=run_id, batch_size=self.args.batch_size)

        def keep(rows: list[dict]) -> None:
            for r in rows:
                r["templates_version"] = "bench"
            store.upsert("predictions", rows)

        common = dict(templates=self.templates, model=backend.model_name, runner=runner,
                      load_frames=lambda key: cache.load(key)[0], on_rows=keep, prefetch=prefetch)
        if mode == "askhint":
            rows = predict(units, template="askhint", questions=self.qs, question_set=self.qset, **common)
        elif mode == "abstract":
            rows = predict(units, template="abstract", questions=[], question_set="abstract", **common)
        else:
            rows = predict_per_question(units, questions=self.qs, question_set=self.qset, **common)
        return rows, runner

    def warm_up(self, backend) -> float:
        """One request outside the timed runs (loads the model, opens the connection); its seconds."""
        h, w = 96, 128
        frames = np.random.default_rng(0).integers(0, 255, (self.args.max_frames, h, w, 3), dtype=np.uint8)
        req = VLMRequest(messages=stage1_messages(self.templates, self.qs), frames=frames, frames_fps=4.0,
                         frames_key="warm-up", choices=STAGE1_CHOICES, max_new_tokens=4)
        t0 = time.perf_counter()
        resp = backend.generate([req])[0]
        if not resp.ok:
            raise RuntimeError(f"warm-up request failed: {resp.error}")
        return time.perf_counter() - t0

    def run_backend(self, name: str, backend) -> dict:
        """Cold run (decode + ASK-Hint joint), cache-hit rerun, then abstract and per-question modes."""
        out: dict = {"backend": name, "status": "ok", "model": backend.model_name,
                     "load_average_1min_at_start": os.getloadavg()[0]}
        out["warm_up_s"] = self.warm_up(backend)
        bhome = self.home / "direct" / name
        shutil.rmtree(bhome, ignore_errors=True)
        clock = Clock()
        store = TimedStore(bhome / "askhint.duckdb", clock)
        cache = TimedFrameCache(bhome / "frames", clock)
        with store.connect():  # schema created outside the timing
            pass
        n = len(self.videos)

        # first run: cold frame cache, empty response cache
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        units = self.plan_and_decode(cache, clock)
        t_score = time.perf_counter()
        rows, runner = self.score("askhint", units, backend, store, cache, clock, f"bench-{name}-first")
        scoring_wall = time.perf_counter() - t_score
        wall = time.perf_counter() - t0
        out["cpu_s_per_wall_s"] = (time.process_time() - cpu0) / wall
        parts = {k: clock.get(k) for k in ("decode", "model", "duckdb", "frame_io")}
        parts["other"] = wall - sum(parts.values())
        stage2 = sum(r["stage2_request"] is not None for r in rows)
        out.update(
            videos=n, units=len(units), wall_s=wall, videos_per_s=n / wall, s_per_video=wall / n,
            seconds=parts, shares={k: v / wall for k, v in parts.items()},
            frame_io_prefetch_s=clock.get("frame_io_prefetch"),
            requests_sent=runner.stats.sent, failed=runner.stats.failed, stage1_requests=len(rows),
            stage2_requests=stage2,
            model_s_per_request=parts["model"] / runner.stats.sent if runner.stats.sent else None,
        )

        # cache-hit rerun: the same scoring again, same store and frame cache
        clock.reset()
        t0 = time.perf_counter()
        units2 = self.plan_and_decode(cache, clock)
        _, rerun = self.score("askhint", units2, backend, store, cache, clock, f"bench-{name}-rerun")
        out["rerun"] = {"wall_s": time.perf_counter() - t0, "requests_sent": rerun.stats.sent,
                        "cache_hits": rerun.stats.cache_hits, "requests": rerun.stats.requests,
                        "decode_s": clock.get("decode"), "model_s": clock.get("model")}

        # the other two modes on the same (now cached) frames; their requests are all new
        out["modes"] = {"askhint": {"requests_sent": runner.stats.sent, "wall_s": scoring_wall,
                                    "model_s": parts["model"]}}
        for mode in ("per_question", "abstract"):
            clock.reset()
            t0 = time.perf_counter()
            _, r = self.score(mode, units, backend, store, cache, clock, f"bench-{name}-{mode}")
            out["modes"][mode] = {"requests_sent": r.stats.sent, "wall_s": time.perf_counter() - t0,
                                  "model_s": clock.get("model"), "failed": r.stats.failed}
        for m in out["modes"].values():
            m["per_video"] = m["requests_sent"] / n

        out["prefetch"] = self.prefetch_ab(name, units, backend, cache, bhome)
        return out

    def prefetch_ab(self, name: str, units: list[Unit], backend, cache: FrameCache, bhome: Path,
                    rounds: int = 2) -> dict:
        """The joint template with frame prefetch off and on, alternating, each with an empty response
        cache (fresh store) and the frames cached; best wall of ``rounds`` per setting (the model is warm
        by now, unlike in the first run)."""
        runs: dict[str, list[dict]] = {"off": [], "on": []}
        for k in range(rounds):
            for setting in ("off", "on"):
                clock = Clock()
                store = TimedStore(bhome / f"prefetch-{setting}-{k}.duckdb", clock)
                with store.connect():
                    pass
                frames = TimedFrameCache(cache.root, clock)  # the same cached frames, read on this clock
                t0 = time.perf_counter()
                _, r = self.score("askhint", units, backend, store, frames, clock,
                                  f"bench-{name}-prefetch-{setting}-{k}", prefetch=setting == "on")
                runs[setting].append({"wall_s": time.perf_counter() - t0, "requests_sent": r.stats.sent,
                                      "model_s": clock.get("model"), "frame_io_s": clock.get("frame_io"),
                                      "frame_io_prefetch_s": clock.get("frame_io_prefetch")})
        return {s: {"best_wall_s": min(x["wall_s"] for x in v), "runs": v} for s, v in runs.items()}


# ---------------------------------------------------------------------------------------- Dagster


def dagster_run(args, sub_home: Path, data_root: Path, model_path: Path) -> dict:
    """One full materialization in a fresh home, timed per step from the run's event log."""
    import dagster as dg

    with warnings.catch_warnings():  # Dagster's beta/preview warnings about the project's own code
        warnings.simplefilter("ignore")
        from askhint_assets.definitions import build_defs

    shutil.rmtree(sub_home, ignore_errors=True)  # always a fresh home: nothing cached from an earlier run
    sub_home.mkdir(parents=True)
    dhome = sub_home / "dagster"
    dhome.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", dhome / "dagster.yaml")
    with environ({"ASKHINT_HOME": str(sub_home), "DAGSTER_HOME": str(dhome)}):
        d = SamplingSettings()
        s = PipelineSettings(
            dataset=DatasetSettings(name="demo", kind="ucf_crime", root=str(data_root)),
            sampling=SamplingSettings(max_frames=args.max_frames, fallback_fps=d.fallback_fps,
                                      min_frames=d.min_frames, max_side=args.max_side),
            scoring=ScoringSettings(granularities=tuple(args.granularity)),
            model=ModelSettings(backend="transformers", path=str(model_path), batch_size=args.batch_size),
            source="bench/throughput.py",
        )
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            defs = build_defs(s)
            job = defs.resolve_implicit_global_asset_job_def()
            graph = defs.resolve_asset_graph()
            keys = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable]
        build_s = time.perf_counter() - t0
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # events are still stored
        with dg.DagsterInstance.from_config(str(dhome)) as instance, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load = os.getloadavg()[0]
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            result = job.execute_in_process(instance=instance, asset_selection=keys, raise_on_error=False,
                                            run_config=quiet)
            wall = time.perf_counter() - t0
            cpu = (time.process_time() - cpu0) / wall
            logs = instance.all_logs(result.run_id)
        steps = step_times(logs)
        st = Store(sub_home / "askhint.duckdb")
        calls = st.query("SELECT created_at, latency_s FROM model_calls")
        t = [c.replace(tzinfo=UTC).timestamp() for c in calls["created_at"].to_list()]
        for info in steps.values():  # a call is logged when its batch is stored, inside the step that sent it
            inside = [lat for ts, lat in zip(t, calls["latency_s"].to_list(), strict=True)
                      if info["start"] <= ts <= info["end"]]
            info["model_s"] = float(sum(inside)) if inside else None
            info["requests_sent"] = len(inside)
        sent = calls.height
        qs = st.scalar("SELECT questions FROM question_sets ORDER BY created_at DESC LIMIT 1")
    run_ts = {e.dagster_event.event_type_value.replace("PIPELINE_", "RUN_"): e.timestamp for e in logs
              if e.dagster_event is not None and e.dagster_event.step_key is None}
    core = sum(st["compute_s"] for st in steps.values())
    in_steps = sum(st["step_s"] for st in steps.values())
    out = {
        "success": result.success,
        "run_id": result.run_id,
        "build_defs_s": build_s,
        "load_average_1min_at_start": load,
        "cpu_s_per_wall_s": cpu,
        "run_wall_s": wall,
        "run_start_to_success_s": (run_ts["RUN_SUCCESS"] - run_ts["RUN_START"])
        if {"RUN_SUCCESS", "RUN_START"} <= set(run_ts) else None,
        "steps": steps,
        "sum_step_s": in_steps,
        "sum_core_s": core,
        "dagster_overhead_s": wall - core,
        "overhead_inside_steps_s": in_steps - core,
        "overhead_outside_steps_s": wall - in_steps,
        "requests_sent": sent,
        "qstar": list(qs) if qs is not None else None,
    }
    if not result.success:
        from askhint_assets.orchestration.update import failure_message

        out["error"] = failure_message(result)
    return out


_BEFORE_COMPUTE = {"STEP_START", "STEP_INPUT", "LOADED_INPUT", "RESOURCE_INIT_SUCCESS"}
_COMPUTE_DONE = {"STEP_OUTPUT", "ASSET_CHECK_EVALUATION", "ASSET_MATERIALIZATION", "STEP_FAILURE"}


def step_times(logs) -> dict[str, dict]:
    """Per step: wall time (STEP_START → STEP_SUCCESS/FAILURE) and the asset's own work (the last
    pre-compute event → its first output/check result), with the asset-reported ``seconds``."""
    events: dict[str, list] = defaultdict(list)
    for e in logs:
        de = e.dagster_event
        if de is not None and de.step_key:
            events[de.step_key].append((e.timestamp, de.event_type_value, de))
    out = {}
    for key, evs in events.items():
        evs.sort(key=lambda x: x[0])
        start = next((t for t, k, _ in evs if k == "STEP_START"), evs[0][0])
        end = next((t for t, k, _ in evs if k in ("STEP_SUCCESS", "STEP_FAILURE")), evs[-1][0])
        done = next((t for t, k, _ in evs if k in _COMPUTE_DONE), end)
        began = max((t for t, k, _ in evs if k in _BEFORE_COMPUTE and t <= done), default=start)
        reported = None
        for _, k, de in evs:
            if k == "ASSET_MATERIALIZATION":
                md = de.event_specific_data.materialization.metadata
                if "seconds" in md:
                    reported = float(md["seconds"].value)
        out[key] = {"step_s": end - start, "compute_s": done - began, "reported_s": reported,
                    "ok": any(k == "STEP_SUCCESS" for _, k, _ in evs), "start": start, "end": end}
    return dict(sorted(out.items(), key=lambda kv: kv[1]["start"]))


# ---------------------------------------------------------------------------------------- output


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in
                         enumerate(zip(cells, widths, strict=True)))

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def fmt(x, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if math.isnan(x):
            return "-"
        return f"{x:.{digits}f}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def main_table(results: dict[str, dict]) -> str:
    names = list(results)
    ok = {n: r for n, r in results.items() if r.get("status") == "ok"}

    def row(label: str, f) -> list[str]:
        return [label, *[(f(results[n]) if n in ok else results[n]["status"]) for n in names]]

    def rerun(r):
        rr = r["rerun"]
        return f"{rr['wall_s']:.2f} s (first {r['wall_s']:.2f} s; {r['wall_s'] / rr['wall_s']:.1f}x faster)"

    def mode(m):
        def f(r):
            j = r["modes"]["askhint"]["per_video"]
            v = r["modes"][m]["per_video"]
            return f"{v:.2f} ({v / j:.2f}x joint)" if j else f"{v:.2f}"
        return f

    def prefetched(r):
        s = r["frame_io_prefetch_s"]
        return f"{'yes' if s > 0 else 'no'}: {s:.2f} s off the critical path"

    def prefetch_wall(r, setting: str):
        ab = r["prefetch"]
        w = ab[setting]["best_wall_s"]
        io = min(x["frame_io_s"] + x["frame_io_prefetch_s"] for x in ab[setting]["runs"])
        rel = f"; {w / ab['on']['best_wall_s']:.2f}x on" if setting == "off" else ""
        return f"{w:.2f} s (frame reads {io:.3f} s{rel})"

    def mode_wall(m):
        def f(r):
            base = r["modes"]["askhint"]["wall_s"]
            w = r["modes"][m]["wall_s"]
            return f"{w:.2f} s ({w / base:.2f}x joint)" if base else f"{w:.2f} s"
        return f

    rows = [
        row("load average (1 min) when this column started", lambda r: fmt(r["load_average_1min_at_start"])),
        row("CPU s this process got per wall s (first run)", lambda r: fmt(r["cpu_s_per_wall_s"])),
        row("videos / scoring units", lambda r: f"{r['videos']} / {r['units']}"),
        row("first run wall s (decode + joint template)", lambda r: fmt(r["wall_s"])),
        row("videos/s", lambda r: fmt(r["videos_per_s"], 3)),
        row("s per video", lambda r: fmt(r["s_per_video"], 3)),
        row("  share: decode frames (PyAV)", lambda r: pct(r["shares"]["decode"])),
        row("  share: model (backend.generate)", lambda r: pct(r["shares"]["model"])),
        row("  share: DuckDB (cache look-ups, call log, rows)", lambda r: pct(r["shares"]["duckdb"])),
        row("  share: frame-cache file I/O", lambda r: pct(r["shares"]["frame_io"])),
        row("  frame-cache reads overlapped with model (prefetch)", prefetched),
        row("  share: other (plan, prompts, hashing, parsing)", lambda r: pct(r["shares"]["other"])),
        row("requests sent (stage 1 + stage 2)",
            lambda r: f"{r['requests_sent']} ({r['stage1_requests']} + {r['stage2_requests']})"),
        row("model s per request", lambda r: fmt(r["model_s_per_request"], 4)),
        row("model load / warm-up request s (not in wall)", lambda r: fmt(r["warm_up_s"])),
        row("cache-hit rerun wall (vs first run)", rerun),
        row("cache-hit rerun requests_sent (cache hits)",
            lambda r: f"{r['rerun']['requests_sent']} ({r['rerun']['cache_hits']} hits)"),
        row("requests/video: ASK-Hint joint (stage 1 + 2)", lambda r: fmt(r["modes"]["askhint"]["per_video"])),
        row("requests/video: per-question mode", mode("per_question")),
        row("requests/video: abstract baseline", mode("abstract")),
        row("scoring wall, frames cached: joint", lambda r: f"{r['modes']['askhint']['wall_s']:.2f} s"),
        row("scoring wall, frames cached: per-question", mode_wall("per_question")),
        row("scoring wall, frames cached: abstract", mode_wall("abstract")),
        row("joint scoring wall, warm model, prefetch on (best of 2)", lambda r: prefetch_wall(r, "on")),
        row("joint scoring wall, warm model, prefetch off (best of 2)", lambda r: prefetch_wall(r, "off")),
    ]
    return table(["", *names], rows)


def dagster_table(d: dict) -> str:
    rows = []
    for key, st in d["steps"].items():
        rows.append([key, fmt(st["step_s"]), fmt(st["compute_s"]), fmt(st["model_s"]),
                     str(st["requests_sent"] or "-"), fmt(st["reported_s"]),
                     fmt(st["step_s"] - st["compute_s"]), "ok" if st["ok"] else "FAILED"])
    model = sum(st["model_s"] or 0.0 for st in d["steps"].values())
    rows.append(["(sum over steps)", fmt(d["sum_step_s"]), fmt(d["sum_core_s"]), fmt(model),
                 str(d["requests_sent"]), "", fmt(d["overhead_inside_steps_s"]), ""])
    return table(["step (asset or check)", "step wall s", "asset's own work s", "  of which model s",
                  "requests", "asset-reported s", "Dagster in step s", ""], rows)


# ---------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=12, help="demo videos to score (half anomalous); 0: all 36")
    ap.add_argument("--home", type=Path, default=None, help="bench home (default: a temporary folder, removed)")
    ap.add_argument("--model", default=None, help="smoke model folder to reuse (default: build one in the home)")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="comma list of transformers,openai,vllm")
    ap.add_argument("--granularity", default="window,video", help="scoring units: window, video or both")
    ap.add_argument("--max-frames", type=int, default=SamplingSettings().max_frames, help="frames per unit")
    ap.add_argument("--max-side", type=int, default=SamplingSettings().max_side, help="longer side of frames, px")
    ap.add_argument("--batch-size", type=int, default=ModelSettings().batch_size, help="requests per batch")
    ap.add_argument("--skip-dagster", action="store_true", help="leave out the Dagster materialization")
    ap.add_argument("--json", type=Path, default=None, help="also write every number to this JSON file")
    a = ap.parse_args(argv)
    a.granularity = [g.strip() for g in a.granularity.split(",") if g.strip()]
    a.backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    bad = set(a.granularity) - {"window", "video"} or set(a.backends) - set(BACKENDS)
    if bad:
        ap.error(f"unknown value(s) {sorted(bad)}")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    print("askhint throughput benchmark (bench/throughput.py)")
    print("command: " + shlex.join([sys.executable, *sys.argv]))
    print("machine: " + machine_line())
    vers = versions()
    print("versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    own_home = args.home is None
    home = Path(tempfile.mkdtemp(prefix="askhint-bench-")) if own_home else args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    print(f"bench home: {home}{' (temporary, removed at the end)' if own_home else ''}")
    report: dict = {"command": shlex.join([sys.executable, *sys.argv]), "cpu_count": os.cpu_count(),
                    "load_average_start": os.getloadavg(), "versions": vers, "home": str(home)}
    try:
        return run(args, home, report, t_start)
    finally:
        if own_home:
            shutil.rmtree(home, ignore_errors=True)


def run(args, home: Path, report: dict, t_start: float) -> int:
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # weight-loading bars of the embedder and the smoke model

    os.environ["ASKHINT_HOME"] = str(home)
    model_path, how = resolve_model(args.model, home)
    marker = model_path / "askhint_smoke.json"
    steps = json.loads(marker.read_text()).get("train", {}).get("steps") if marker.is_file() else None
    print(f"model: {model_path} ({how}; smoke-test model{f', trained {steps} steps' if steps else ''}: "
          "throughput only, its answers mean nothing)")

    t0 = time.perf_counter()
    full_root = generate_demo(home / "data" / "demo_ucf")
    gen_s = time.perf_counter() - t0
    total = sum(1 for f in json.loads((full_root / MANIFEST).read_text())["files"] if f.endswith(".mp4"))
    n = total if args.videos <= 0 else min(args.videos, total)
    data_root = full_root
    if n < total:
        data_root = make_subset(full_root, home / "data" / f"demo_{n}", pick_subset(full_root, n))
    t0 = time.perf_counter()
    ds = load_dataset("ucf_crime", data_root, on_error="raise")
    probe_s = time.perf_counter() - t0
    videos = ds.videos
    n_anom = sum(v.is_anomalous for v in videos)
    frames_total = sum(v.num_frames for v in videos)
    print(f"data: {len(videos)} of the {total} demo videos ({n_anom} anomalous, {len(videos) - n_anom} normal; "
          f"{frames_total} frames, {videos[0].fps:g} fps, 96x128 px) in {data_root}; demo generated/checked in "
          f"{gen_s:.1f} s, indexed (PyAV probe) in {probe_s:.2f} s")

    s = ScoringSettings(granularities=tuple(args.granularity))
    window = f"window {s.window_s:g} s, stride {s.stride_s:g} s" if "window" in args.granularity else ""
    settings_line = {
        "frames_per_unit_max": args.max_frames,
        "fallback_fps": SamplingSettings().fallback_fps,
        "max_side_px": args.max_side,
        "granularity": "+".join(args.granularity) + (f" ({window})" if window else ""),
        "batch_size": args.batch_size,
        "torch_threads": torch.get_num_threads(),
        "transformers": "cpu float32, greedy, max_new_tokens 64 (stage 1 asks 4)",
        "openai": "video_mode=images (one JPEG per frame), max_concurrency 8, stand-in in a child process",
    }
    print("settings: " + "; ".join(f"{k} = {v}" for k, v in settings_line.items()))
    report.update(settings=settings_line, model=str(model_path), data_root=str(data_root), videos=len(videos),
                  demo_generate_s=gen_s, probe_s=probe_s)

    t0 = time.perf_counter()
    prompt_dir = paths.prompts_store() / "ucf_crime"
    templates = load_prompt_set(prompt_dir).templates
    qs = compute_qstar(prompt_dir)
    print(f"Q* ({len(qs)} questions, computed as the prompt assets do, {time.perf_counter() - t0:.1f} s, "
          "not timed below): " + " | ".join(qs))
    report["qstar"] = qs
    bench = Bench(args, videos, templates, qs, home)

    results: dict[str, dict] = {}
    for name in BACKENDS:
        if name not in args.backends:
            continue
        print(f"\n-- {name}: running ...", flush=True)
        try:
            if name == "transformers":
                from askhint_assets.vlm.backends.transformers_backend import TransformersBackend


                backend = TransformersBackend(str(model_path), batch_size=args.batch_size)
                results[name] = bench.run_backend(name, backend)
            elif name == "openai":
                from askhint_assets.vlm.backends.openai_backend import OpenAIBackend

                with standin_server(home / "standin.log") as (url, served):
                    print(f"   stand-in server at {url} (child process of this run)")
                    backend = OpenAIBackend(model=served, base_urls=[url], api_key_env=NO_KEY_ENV,
                                            max_concurrency=8, max_new_tokens=64)
                    results[name] = bench.run_backend(name, backend)
                results[name]["label"] = STANDIN_LABEL
            elif importlib.util.find_spec("vllm") is None:
                results[name] = {"backend": name, "status": "not installed"}
            else:
                from askhint_assets.vlm.backends.vllm_backend import VLLMBackend

                results[name] = bench.run_backend(name, VLLMBackend(str(model_path), max_new_tokens=64))
        except Exception as e:  # a backend that cannot run here is a row saying why, not a crash
            results[name] = {"backend": name, "status": f"failed: {type(e).__name__}: {e}"[:80]}
        r = results[name]
        if r.get("status") == "ok":
            print(f"   done: {r['wall_s']:.2f} s first run, {r['rerun']['wall_s']:.2f} s rerun", flush=True)
        else:
            print(f"   {r['status']}")
    report["backends"] = results

    dag = None
    if not args.skip_dagster:
        print("\n-- Dagster: one full materialization (fresh home, transformers backend) ...", flush=True)
        dag = dagster_run(args, home / "dagster_run", data_root, model_path)
        report["dagster"] = dag
        print(f"   done: {'success' if dag['success'] else 'FAILED: ' + dag.get('error', '')}")

    # ------------------------------------------------------------------------ the report
    print("\n" + "=" * 100)
    print("command: " + report["command"])
    print("machine at start: " + f"{report['cpu_count']} CPU cores, load average "
          + " / ".join(f"{x:.2f}" for x in report["load_average_start"]) + "; now: " + machine_line())
    print("settings: " + "; ".join(f"{k} = {v}" for k, v in settings_line.items()))
    print(f"data: {len(videos)} demo videos, {frames_total} frames; model: {model_path.name} (smoke-test model)")
    print("\nBackends side by side (same videos, same units, same Q*; first run = cold frame cache and empty "
          "response cache):")
    legend = {"transformers": "transformers: TransformersBackend + the smoke-test model on this CPU",
              "openai": "openai: " + STANDIN_LABEL,
              "vllm": "vllm: VLLMBackend (offline engine)"}
    for name in results:
        print("  " + legend[name])
    print(main_table(results))
    print("(the per-question and abstract runs reuse the decoded frames: their walls compare with the joint "
          "template's scoring wall, i.e. the first run without planning and decoding; the prefetch on/off rows "
          "repeat that scoring with an empty response cache after everything else, model warm, alternating "
          "off/on: with prefetch the frame reads overlap the model, without it they are in line)")

    if dag is not None:
        print(f"\nDagster: one full materialization, {len(videos)} videos, transformers backend, fresh home "
              f"({'success' if dag['success'] else 'FAILED'}; {dag['requests_sent']} model requests sent, "
              f"prompt-count ablation included; load average (1 min) at its start "
              f"{dag['load_average_1min_at_start']:.2f}, CPU s this process got per wall s "
              f"{dag['cpu_s_per_wall_s']:.2f})")
        print("  asset's own work = the last input loaded -> its output (or check result); model s = the "
              "latency of the model_calls logged during the step; steps share the response cache, so a "
              "request an earlier step sent (the ablation's Q* of the main size) is not sent again")
        print(dagster_table(dag))
        core, wall = dag["sum_core_s"], dag["run_wall_s"]
        print(f"run wall time (execute_in_process) {wall:.2f} s; sum of the assets' own work {core:.2f} s; "
              f"time in Dagster = {wall - core:.2f} s ({100 * (wall - core) / wall:.1f}% of the run): "
              f"{dag['overhead_inside_steps_s']:.2f} s inside steps (inputs, outputs, events, resources) + "
              f"{dag['overhead_outside_steps_s']:.2f} s outside steps (run start/end, planning); building the "
              f"Definitions took {dag['build_defs_s']:.2f} s more")
        tr = results.get("transformers")
        if tr and tr.get("status") == "ok":
            st = dag["steps"]
            direct = probe_s + tr["wall_s"] + tr["modes"]["abstract"]["wall_s"]
            dag_same = sum(st[k]["step_s"] for k in ("dataset_index", "sampled_frames", "askhint_predictions",
                                                     "abstract_predictions") if k in st)
            d_req = tr["requests_sent"] + tr["modes"]["abstract"]["requests_sent"]
            d_model = tr["seconds"]["model"] + tr["modes"]["abstract"]["model_s"]
            g = [st[k] for k in ("askhint_predictions", "abstract_predictions") if k in st]
            g_req = sum(x["requests_sent"] for x in g)
            g_model = sum(x["model_s"] or 0.0 for x in g)
            print(f"same work without Dagster (index + decode + joint + abstract, direct calls above, model "
                  f"already loaded): {direct:.2f} s vs those four Dagster steps {dag_same:.2f} s (which include "
                  f"loading the model). Model time per request: direct {d_model / max(d_req, 1):.3f} s "
                  f"({d_req} requests), Dagster steps {g_model / max(g_req, 1):.3f} s ({g_req}): a gap beyond "
                  "the 'Dagster in step' column is the machine's load changing between the two, not Dagster")
        if dag["qstar"] is not None and dag["qstar"] != qs:
            print("note: the Dagster run's Q* differs from the one used above")
    print(f"\ntotal bench time {time.perf_counter() - t_start:.0f} s; load average at the end "
          + " / ".join(f"{x:.2f}" for x in os.getloadavg()))
    report["load_average_end"] = os.getloadavg()
    report["total_s"] = time.perf_counter() - t_start
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"numbers written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
