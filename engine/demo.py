"""The demo as a user runs it (``askhint observe``, ``dagster asset materialize``), in a fresh ASKHINT_HOME per
backend, for the real-engine tier and ``bench/prefix_cache.py``.

The demo's settings, with the prompt-count ablation off (its extra Q* sizes ask the same kind of requests
again and would triple the tier's time on two cores); everything else is the demo's default. The generated
demo videos are rendered once per ``cache`` folder and copied into each home.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEMO_SETTINGS: dict = {"questions": {"ablation_sizes": []}}


@dataclass
class DemoHome:
    root: Path
    env: dict[str, str]

    @property
    def db(self) -> Path:
        return self.root / "askhint.duckdb"

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def run(self, *args: str, timeout_s: float = 1800, check: bool = True) -> subprocess.CompletedProcess:
        """One command of the project's CLI in this home (``askhint ...`` or ``dagster ...``), output captured."""
        exe = str(BIN / args[0])
        proc = subprocess.run([exe, *args[1:]], env=self.env, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout_s)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n"
                               f"{proc.stderr[-8000:]}")
        return proc

    def materialize(self, select: str = "*", **kw) -> subprocess.CompletedProcess:
        """``askhint observe`` then ``dagster asset materialize --select SELECT`` (what ``make demo`` runs)."""
        self.run("askhint", "observe")
        return self.run("dagster", "asset", "materialize", "-m", "askhint_assets.definitions", "--select", select,
                        **kw)

    def predictions(self, template: str = "askhint") -> dict[tuple[str, int], tuple[float, str | None, str]]:
        """``(video, unit) -> (score, answer, score_source)`` of one template (the askhint rows: stage 1)."""
        rows = self.query("SELECT video_id, unit, plan, score, answer, score_source FROM predictions "
                          "WHERE template = ? ORDER BY video_id, plan, unit", [template])
        return {(v, u, p): (s, a, src) for v, u, p, s, a, src in rows}

    def model_calls(self) -> int:
        return int(self.query("SELECT count(*) FROM model_calls")[0][0])


def demo_videos(cache: Path) -> Path:
    """The generated UCF-layout demo data set, rendered once into ``cache``."""
    from askhint_assets.demo.datasets import DEMO_GENERATORS

    return DEMO_GENERATORS["ucf_crime"](cache / "demo_ucf")  # idempotent: its manifest says when it is done


def make_home(root: Path, model: dict, cache: Path, extra: dict | None = None) -> DemoHome:
    """A fresh home at ``root``: the demo's data and prompt store, settings = demo + ``model`` (+ ``extra``)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dagster").mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", root / "dagster" / "dagster.yaml")
    shutil.copytree(demo_videos(cache), root / "data" / "demo_ucf", dirs_exist_ok=True)
    shutil.copytree(ROOT / "prompts_store", root / "prompts_store", dirs_exist_ok=True)
    settings = {**DEMO_SETTINGS, **(extra or {}), "model": model}
    (root / "askhint.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    env = {**os.environ, "ASKHINT_HOME": str(root), "DAGSTER_HOME": str(root / "dagster"),
           "ASKHINT_PROMPTS_STORE": str(root / "prompts_store"), "ASKHINT_CONFIG": str(root / "askhint.yaml"),
           "PYTHONUNBUFFERED": "1"}
    return DemoHome(root, env)


def timed(fn, *args, **kw) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0
