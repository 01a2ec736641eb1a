"""A small synthetic data set in the exact UCF-Crime layout and annotation format.

``root/Anomaly-Videos/<Class>/<Class>0NN_x264.mp4``, ``root/Testing_Normal_Videos_Anomaly/
Normal_Videos_0NN_x264.mp4`` and ``root/Temporal_Anomaly_Annotation_for_Testing_Videos.txt``; load it
with ``ucf_crime.load``. Written intervals are half-open ``[s, e)`` (the loader's default reading).
Clip seeds start at ``DEMO_SEED_OFFSET`` so they never meet the smoke-model trainer's seeds
(< 1_000_000).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from askhint_assets.datasets.ucf_crime import ANNOTATION_FILE
from askhint_assets.hashing import hash_obj
from askhint_assets.video.decode import write_video
from askhint_assets.video.synth import EVENT_KINDS, render_clip

DEMO_CLASSES: tuple[str, ...] = EVENT_KINDS
DEMO_SEED_OFFSET = 1_000_000
MANIFEST = "demo_manifest.json"
_VERSION = 1  # bump when the generator's output changes
_ANOMALY_DIR, _NORMAL_DIR = "Anomaly-Videos", "Testing_Normal_Videos_Anomaly"


def _intervals(rng: np.random.Generator, n: int, two: bool) -> list[tuple[int, int]]:
    """One interval of 25-45% of the clip, or two non-overlapping ones of 25-40% each."""
    if not two:
        length = max(1, round(n * rng.uniform(0.25, 0.45)))
        s = int(rng.integers(0, n - length + 1))
        return [(s, s + length)]
    la, lb = (max(1, round(n * rng.uniform(0.25, 0.4))) for _ in range(2))
    gap = max(1, n // 20)
    slack = n - la - lb - gap
    a = int(rng.integers(0, slack + 1))
    b = a + la + gap + int(rng.integers(0, slack - a + 1))
    return [(a, a + la), (b, b + lb)]


def _plan(n_anomalous_per_class: int, n_normal: int, seconds: tuple[float, float], fps: float,
          seed: int) -> list[dict]:
    rng = np.random.default_rng([DEMO_SEED_OFFSET, seed])
    n_anom = n_anomalous_per_class * len(DEMO_CLASSES)
    two = set(rng.choice(n_anom, size=min(2, n_anom), replace=False).tolist()) if n_anom else set()
    plan, k = [], 0
    for cls in DEMO_CLASSES:
        for i in range(1, n_anomalous_per_class + 1):
            n = round(rng.uniform(*seconds) * fps)
            plan.append(dict(rel=f"{_ANOMALY_DIR}/{cls}/{cls}{i:03d}_x264.mp4", cls=cls, frames=n,
                             intervals=_intervals(rng, n, k in two), seed=DEMO_SEED_OFFSET + seed * 10_000 + k))
            k += 1
    for i in range(1, n_normal + 1):
        n = round(rng.uniform(*seconds) * fps)
        plan.append(dict(rel=f"{_NORMAL_DIR}/Normal_Videos_{i:03d}_x264.mp4", cls="Normal", frames=n,
                         intervals=[], seed=DEMO_SEED_OFFSET + seed * 10_000 + k))
        k += 1
    return plan


def _render(item: dict, size: tuple[int, int]) -> np.ndarray:
    if not item["intervals"]:
        return render_clip(None, item["frames"], size, seed=item["seed"])
    (s, e), *rest = item["intervals"]
    clip = render_clip(item["cls"], item["frames"], size, (s, e), seed=item["seed"])
    for s2, e2 in rest:  # outside its span a clip equals the normal scene, so spans can be pasted
        clip[s2:e2] = render_clip(item["cls"], item["frames"], size, (s2, e2), seed=item["seed"])[s2:e2]
    return clip


def _annotation_line(item: dict) -> str:
    pairs = [*item["intervals"], (-1, -1), (-1, -1)][:2]
    nums = [str(v) for p in pairs for v in p]
    return "  ".join([Path(item["rel"]).name, item["cls"], *nums])


def generate_demo(
    root: str | Path,
    *,
    n_anomalous_per_class: int = 3,
    n_normal: int = 18,
    seconds: tuple[float, float] = (8, 12),
    fps: int = 30,
    size: tuple[int, int] = (96, 128),
    seed: int = 0,
) -> Path:
    """Write the demo data set under ``root`` and return ``root``.

    Idempotent: ``root/demo_manifest.json`` records a hash of the parameters and is written last;
    when it matches and every listed file exists, nothing is done. Otherwise (new parameters or an
    interrupted run) the demo folders are removed and rebuilt.
    """
    root = Path(root)
    params = dict(version=_VERSION, n_anomalous_per_class=n_anomalous_per_class, n_normal=n_normal,
                  seconds=list(seconds), fps=fps, size=list(size), seed=seed)
    key = hash_obj(params)
    manifest = root / MANIFEST
    try:
        old = json.loads(manifest.read_text())
        if old.get("params_hash") == key and all((root / f).is_file() for f in old["files"]):
            return root
    except (OSError, ValueError, KeyError, TypeError):
        pass
    manifest.unlink(missing_ok=True)
    for d in (_ANOMALY_DIR, _NORMAL_DIR):
        shutil.rmtree(root / d, ignore_errors=True)
    plan = _plan(n_anomalous_per_class, n_normal, seconds, fps, seed)
    for item in plan:
        write_video(root / item["rel"], _render(item, size), fps)
    ann = root / ANNOTATION_FILE
    ann.write_text("".join(_annotation_line(it) + "\n" for it in plan))
    files = [it["rel"] for it in plan] + [ANNOTATION_FILE]
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(json.dumps({"params": params, "params_hash": key, "files": files}, indent=1))
    os.replace(tmp, manifest)
    return root
