"""Shared by the reliability tests and ``bench/fault_injection.py``: small demo homes, runs, counts.

A :class:`Home` is a fresh ``ASKHINT_HOME`` holding a copy of a few demo videos (with the demo's
annotation file trimmed to them), a private prompt store, a Dagster instance folder and a settings
YAML that points the ``openai`` backend at a stand-in server. Scoring uses the ``video`` granularity
only and skips the ablation asset, so one full materialization takes seconds, not minutes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from support.environ import environ
from support.standin_server import StandinServer

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODEL = "standin-vlm"
KEY_ENV = "ASKHINT_TEST_API_KEY"
API_KEY = "sk-askhint-" + secrets.token_hex(16)  # distinctive: grepped for in every file a run leaves
ANNOTATION = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
# one video per demo class plus as many normal ones: 12 videos, 12 units per template
SUBSET = (
    *(f"{c}001_x264" for c in ("Fighting", "Shooting", "Vandalism", "Stealing", "Explosion", "RoadAccidents")),
    *(f"Normal_Videos_{i:03d}_x264" for i in range(1, 7)),
)
NONSENSE = "Purple elephants compute forty-two bananas."


def demo_source() -> Path:
    """The generated demo data set, from the tests' shared cache (:func:`support.demo_data.cached_demo_data`)."""
    from support.demo_data import cached_demo_data

    return cached_demo_data("ucf_crime")


class FaultServer(StandinServer):
    """The stand-in server plus one fault it lacks: ``nonsense`` answers ignore the template but keep
    the first-token log-probabilities (what a model drifting off the template does)."""

    nonsense = False

    def completion(self, body: dict) -> dict:
        out = super().completion(body)
        if self.nonsense:
            out["choices"][0]["message"]["content"] = NONSENSE
        return out

    def reset(self) -> None:
        super().reset()
        self.nonsense = False


@dataclass
class Home:
    """One ASKHINT_HOME with its settings file and the environment that selects it."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "settings.yaml"

    @property
    def data(self) -> Path:
        return self.root / "data" / "demo_ucf"

    @property
    def db(self) -> Path:
        return self.root / "askhint.duckdb"

    def video(self, video_id: str) -> Path:
        return next(self.data.rglob(f"{video_id}.mp4"))

    def settings(self) -> dict:
        return yaml.safe_load(self.config.read_text())

    def write_settings(self, data: dict) -> None:
        self.config.write_text(yaml.safe_dump(data, sort_keys=False))

    def update_settings(self, section: str, **values) -> None:
        data = self.settings()
        data.setdefault(section, {}).update(values)
        self.write_settings(data)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """``os.environ`` selects this home while inside (restored after)."""
        with environ(self.env):
            yield

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        """Rows of a read-only query (fails, as it should, if the file is unreadable)."""
        import duckdb

        with duckdb.connect(str(self.db), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def scalar(self, sql: str, params: list | None = None):
        rows = self.query(sql, params)
        return rows[0][0] if rows else None


def make_home(
    root: Path,
    base_url: str,
    *,
    videos: tuple[str, ...] | None = SUBSET,
    granularities: tuple[str, ...] | None = ("video",),
    api_key: str = API_KEY,
    model: dict | None = None,
    dataset: dict | None = None,
) -> Home:
    """A fresh home under ``root`` with ``videos`` copied from the demo (None: all 36) and settings for
    ``base_url``; ``granularities=None`` scores as the defaults do (windows and whole videos)."""
    src = demo_source()
    root.mkdir(parents=True, exist_ok=True)
    home = Home(root)
    wanted = set(videos) if videos is not None else {p.stem for p in src.rglob("*.mp4")}
    for p in sorted(src.rglob("*.mp4")):
        if p.stem in wanted:
            dst = home.data / p.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, dst)
    lines = [ln for ln in (src / ANNOTATION).read_text().splitlines() if ln.split()[0].removesuffix(".mp4") in wanted]
    (home.data / ANNOTATION).write_text("\n".join(lines) + "\n")
    shutil.copytree(ROOT / "prompts_store", root / "prompts_store")
    (root / "dagster").mkdir()
    shutil.copy(ROOT / "dagster.yaml", root / "dagster" / "dagster.yaml")
    home.write_settings(
        {
            "dataset": {"name": "demo", "kind": "ucf_crime", "root": str(home.data), **(dataset or {})},
            "scoring": {"granularities": list(granularities)} if granularities else {},
            "questions": {"ablation_sizes": []},
            "model": {
                "backend": "openai", "path": MODEL, "base_urls": [base_url], "api_key_env": KEY_ENV,
                "max_retries": 2, "batch_size": 4, "max_concurrency": 4, "timeout_s": 10, **(model or {}),
            },
        }
    )  # fmt: skip
    home.env = {
        "ASKHINT_HOME": str(root),
        "DAGSTER_HOME": str(root / "dagster"),
        "ASKHINT_CONFIG": str(home.config),
        "ASKHINT_PROMPTS_STORE": str(root / "prompts_store"),
        KEY_ENV: api_key,
    }
    return home


def start_server(api_key: str | None = None) -> FaultServer:
    """A fault-injecting stand-in server on a free port of 127.0.0.1 (serving :data:`MODEL`)."""
    return FaultServer(model=MODEL, api_key=api_key, brightness_threshold=100.0).start()


# -- broken videos -------------------------------------------------------------------------------

# video id -> (how it is broken, status, what the recorded reason must say)
BROKEN = {
    "Shooting001_x264": ("corrupt", "skipped", "cannot open as media"),
    "Vandalism001_x264": ("truncated", "skipped", "cannot open as media"),
    "Normal_Videos_002_x264": ("empty", "skipped", "file is empty (0 bytes)"),
    "Normal_Videos_003_x264": ("audio_only", "skipped", "no video stream (streams: audio)"),
    "Normal_Videos_004_x264": ("unreadable", "skipped", "a symlink to a missing file"),
    "Stealing001_x264": ("undecodable", "failed", "corrupt or truncated video data"),
}


def _audio_only(path: Path) -> None:
    import av
    import numpy as np

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=44100)
        for _ in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 44100
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def faststart_bytes(path: Path) -> bytes:
    """``path``'s video remuxed with its header (moov) first, as bytes (the file itself is left as it is)."""
    import av

    tmp = path.with_name("faststart.mp4")
    with av.open(str(path)) as src, av.open(str(tmp), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    data = tmp.read_bytes()
    tmp.unlink()
    return data


def _undecodable(path: Path) -> None:
    """Header (moov) first, then the media data cut short: probes fine, decodes no frame."""
    data = faststart_bytes(path)
    path.write_bytes(data[: data.index(b"mdat") + 16])


def break_video(path: Path, how: str) -> None:
    """Replace a video file in place by a broken one of the given kind (see :data:`BROKEN`)."""
    import numpy as np

    data = path.read_bytes()
    if how == "corrupt":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes())
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "audio_only":
        _audio_only(path)
    elif how == "unreadable":
        path.unlink()
        os.symlink(path.with_name("gone.mp4"), path)
    elif how == "undecodable":
        _undecodable(path)


def break_videos(home: Home) -> None:
    """Break, in place, every video of :data:`BROKEN` that ``home`` holds."""
    for vid, (how, _, _) in BROKEN.items():
        if any(home.data.rglob(f"{vid}.mp4")):
            break_video(home.video(vid), how)


# -- running ------------------------------------------------------------------------------------


@dataclass
class RunOutcome:
    ok: bool
    message: str
    seconds: float


UPSTREAM = ("class_prompts", "inference_templates", "question_embeddings", "question_clusters",
            "guiding_questions", "dataset_index", "sampled_frames")
"""Everything before the model: what :func:`prepare` materializes."""


def materialize(home: Home, select: tuple[str, ...] | None = None) -> RunOutcome:
    r"""``askhint update`` in this process (stale or missing assets), or just the ``select``\ed assets;
    a failed run comes back as ``ok=False`` with Dagster's message, never as an exception."""
    import dagster as dg

    from askhint_assets.definitions import build_defs
    from askhint_assets.orchestration.update import failure_message, observe_sources, update
    from askhint_assets.settings_file import load_settings

    t0 = time.perf_counter()
    with home.active():
        defs = build_defs(load_settings(home.config))
        with dg.DagsterInstance.from_config(home.env["DAGSTER_HOME"]) as instance:
            if select:
                observe_sources(instance, defs)
                job = defs.resolve_implicit_global_asset_job_def()
                run = job.execute_in_process(
                    instance=instance, asset_selection=[dg.AssetKey(k) for k in select], raise_on_error=False
                )
                message = "" if run.success else failure_message(run)
                return RunOutcome(run.success, message, time.perf_counter() - t0)
            try:
                update(defs, instance, log=lambda _m: None)
            except dg.Failure as e:
                return RunOutcome(False, e.description or str(e), time.perf_counter() - t0)
    return RunOutcome(True, "", time.perf_counter() - t0)


def prepare(home: Home) -> Home:
    """Materialize everything before the model (prompt chain, index, frames) in this process."""
    out = materialize(home, UPSTREAM)
    assert out.ok, out.message
    return home


def clone(home: Home, root: Path, api_key: str | None = None) -> Home:
    """A copy of ``home`` at ``root`` (database, Dagster instance, frame cache, prompt store); its
    settings still read the original's videos, so nothing upstream of the model is stale in the copy."""
    shutil.copytree(home.root, root)
    env = {
        **home.env,
        "ASKHINT_HOME": str(root),
        "DAGSTER_HOME": str(root / "dagster"),
        "ASKHINT_CONFIG": str(root / "settings.yaml"),
        "ASKHINT_PROMPTS_STORE": str(root / "prompts_store"),
    }
    if api_key is not None:
        env[KEY_ENV] = api_key
    return Home(root, env)


def cli(*args: str) -> list[str]:
    """The command line of ``askhint <args>`` (default ``update``)."""
    return [str(BIN / "askhint"), *(args or ("update",))]


def spawn(home: Home, log: Path, *args: str) -> subprocess.Popen:
    """Start ``askhint <args>`` for ``home`` in its own process group, output to ``log``."""
    env = {**os.environ, **home.env}
    with open(log, "ab") as f:
        return subprocess.Popen(cli(*args), cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_for(what: str, ok: Callable[[], object], timeout: float, logs: tuple[Path, ...] = (),
             poll_s: float = 0.2) -> None:
    """Poll ``ok()`` every ``poll_s`` until true; on timeout fail with ``what`` and the tails of ``logs``."""
    end = time.monotonic() + timeout
    while not ok():
        if time.monotonic() >= end:
            tails = "\n".join(f"--- {p}:\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")
        time.sleep(poll_s)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the process group that :func:`spawn` started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


# -- what a run left behind -----------------------------------------------------------------------


def ok_hashes(home: Home) -> set[str]:
    """Request hashes answered successfully so far."""
    if not home.db.exists():
        return set()
    return {h for (h,) in home.query("SELECT DISTINCT request_hash FROM model_calls WHERE ok")}


def duplicates(home: Home) -> int:
    """Rows that should not exist twice: prediction keys, stored responses, and successful sends of
    one request (a finished request is never sent again)."""
    return int(
        home.scalar(
            "SELECT (SELECT count(*) - count(DISTINCT (dataset, plan, video_id, unit, question_set, model, template))"
            " FROM predictions)"
            " + (SELECT count(*) - count(DISTINCT request_hash) FROM responses)"
            " + (SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM model_calls WHERE ok"
            " GROUP BY request_hash))"
        )
    )


def current_plans(home: Home) -> list[str]:
    """The scoring plans of the latest ``sampled_frames`` materialization."""
    return sorted(latest_metadata(home, "sampled_frames")["plans"].values())


_MISSING = """
    FROM scoring_units u JOIN videos v USING (dataset, video_id)
    CROSS JOIN (VALUES ('askhint'), ('abstract')) t(template)
    WHERE v.status = 'ok' AND list_contains(?, u.plan) AND NOT EXISTS (
        SELECT 1 FROM predictions p WHERE p.dataset = u.dataset AND p.plan = u.plan AND p.video_id = u.video_id
        AND p.unit = u.unit AND p.template = t.template AND p.score_source <> 'failed')"""


def lost(home: Home) -> int:
    """(unit, template) pairs of the ok videos under the current plans without a stored prediction."""
    return int(home.scalar("SELECT count(*)" + _MISSING, [current_plans(home)]))


def videos_scored(home: Home) -> int:
    """Ok videos with every unit scored by both templates under the current plans."""
    ok = {v for (v,) in home.query("SELECT video_id FROM videos WHERE status = 'ok'")}
    missing = {v for (v,) in home.query("SELECT DISTINCT u.video_id" + _MISSING, [current_plans(home)])}
    return len(ok - missing)




# -- what Dagster recorded ------------------------------------------------------------------------


def latest_metadata(home: Home, asset: str) -> dict:
    """Metadata values of ``asset``'s latest materialization."""
    import dagster as dg

    with home.active(), dg.DagsterInstance.from_config(home.env["DAGSTER_HOME"]) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
        assert event is not None, f"{asset} never materialized"
        return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def check_passed(home: Home, asset: str, check: str) -> bool | None:
    """Whether the latest evaluation of asset check ``asset:check`` passed (None: never evaluated)."""
    import dagster as dg

    with home.active(), dg.DagsterInstance.from_config(home.env["DAGSTER_HOME"]) as instance:
        record = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(dg.AssetKey(asset), check))
        return None if record is None or record.evaluation is None else bool(record.evaluation.passed)


def first_image(body: dict) -> str | None:
    """The base64 JPEG of a chat request's first frame (what tells the stand-in server which video)."""
    for m in body.get("messages") or []:
        for part in m.get("content") if isinstance(m.get("content"), list) else []:
            if part.get("type") == "image_url":
                return part["image_url"]["url"].split(",", 1)[1]
            if part.get("type") == "video_url":  # data:video/jpeg;base64,<f1>,<f2>,...: the first frame
                return part["video_url"]["url"].split(",", 2)[1]
    return None


def first_images(home: Home) -> dict[str, set[str]]:
    """Video id -> the base64 JPEGs its requests start with (one per unit, as the openai backend encodes)."""
    from askhint_assets.video.frame_cache import FrameCache
    from askhint_assets.vlm.backends.openai_payload import encode_jpeg_b64

    cache = FrameCache(home.root / "cache" / "frames")
    out: dict[str, set[str]] = {}
    for v, k in home.query("SELECT DISTINCT video_id, frames_key FROM scoring_units"):
        out.setdefault(v, set()).add(encode_jpeg_b64(cache.load(k)[0][0]))
    return out


def fault_by_video(home: Home, faults: dict[str, str]):
    """A stand-in ``fault_rule`` failing every request about the given videos with their fault kind."""
    images = first_images(home)
    kinds = {img: kind for v, kind in faults.items() for img in images[v]}
    return lambda body: kinds.get(first_image(body))
