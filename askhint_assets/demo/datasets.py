"""Small synthetic data sets in the exact UCF-Crime and XD-Violence layouts and annotation formats.

UCF-Crime (:func:`generate_demo`): ``root/Anomaly-Videos/<Class>/<Class>0NN_x264.mp4``,
``root/Testing_Normal_Videos_Anomaly/Normal_Videos_0NN_x264.mp4`` and
``root/Temporal_Anomaly_Annotation_for_Testing_Videos.txt``; load it with ``ucf_crime.load``.
XD-Violence (:func:`generate_demo_xd`): ``root/<name>_label_<codes>.mp4`` (24 fps, one multi-label
video whose two intervals show two kinds, one video with three intervals) and ``root/annotations.txt``;
load it with ``xd_violence.load``. Written intervals are half-open ``[s, e)`` (the loaders' default
reading). Clip seeds start at ``DEMO_SEED_OFFSET`` so they never meet the smoke-model trainer's seeds
(< 1_000_000).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from askhint_assets.datasets.ucf_crime import ANNOTATION_FILE
from askhint_assets.datasets.xd_violence import ANNOTATION_FILE as XD_ANNOTATIONS
from askhint_assets.datasets.xd_violence import LABEL_CODES
from askhint_assets.demo.synth import EVENT_KINDS, render_clip
from askhint_assets.hashing import hash_obj
from askhint_assets.video.decode import write_video

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
    """The clip of a plan item: its event kind (``kinds``: one per interval) drawn in each interval."""
    if not item["intervals"]:
        return render_clip(None, item["frames"], size, seed=item["seed"])
    kinds = item.get("kinds") or [item["cls"]] * len(item["intervals"])
    (s, e), *rest = item["intervals"]
    clip = render_clip(kinds[0], item["frames"], size, (s, e), seed=item["seed"])
    for kind, (s2, e2) in zip(kinds[1:], rest, strict=True):  # outside its span a clip is the normal scene
        clip[s2:e2] = render_clip(kind, item["frames"], size, (s2, e2), seed=item["seed"])[s2:e2]
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
    """Write the UCF-Crime-layout demo data set under ``root`` and return ``root``.

    Idempotent: ``root/demo_manifest.json`` records a hash of the parameters and is written last;
    when it matches and every listed file exists, nothing is done. Otherwise (new parameters or an
    interrupted run) the demo folders are removed and rebuilt.
    """
    params = dict(version=_VERSION, n_anomalous_per_class=n_anomalous_per_class, n_normal=n_normal,
                  seconds=list(seconds), fps=fps, size=list(size), seed=seed)

    def build() -> tuple[list[dict], str, str]:
        plan = _plan(n_anomalous_per_class, n_normal, seconds, fps, seed)
        return plan, ANNOTATION_FILE, "".join(_annotation_line(it) + "\n" for it in plan)

    return _write_once(Path(root), params, (_ANOMALY_DIR, _NORMAL_DIR), build, fps, size)


# XD-Violence label codes of the synthetic event kinds that have an XD class
XD_CODES: dict[str, str] = {"Fighting": "B1", "Shooting": "B2", "RoadAccidents": "B6", "Explosion": "G"}
_XD_DIR = "videos"


def _plan_xd(n_per_kind: int, n_normal: int, seconds: tuple[float, float], fps: float, seed: int) -> list[dict]:
    """Violent clips per kind (the first of them with three intervals), one two-kind clip, normal clips."""
    rng = np.random.default_rng([DEMO_SEED_OFFSET, 7, seed])
    plan: list[dict] = []

    def add(name: str, kinds: list[str], intervals: list[tuple[int, int]], n: int) -> None:
        plan.append(dict(rel=f"{_XD_DIR}/{name}.mp4", kinds=kinds, frames=n, intervals=intervals,
                         seed=DEMO_SEED_OFFSET + 500_000 + seed * 10_000 + len(plan)))

    for kind, code in XD_CODES.items():
        for i in range(1, n_per_kind + 1):
            n = round(rng.uniform(*seconds) * fps)
            if not plan:  # three short intervals
                third = n // 3
                ivs = [(k * third + third // 4, k * third + third // 4 + max(1, third // 2)) for k in range(3)]
            else:
                ivs = _intervals(rng, n, two=False)
            add(f"Demo.XD.{LABEL_CODES[code].replace(' ', '')}.{i:02d}__label_{code}-0-0", [kind] * len(ivs), ivs, n)
    n = round(seconds[1] * fps)
    add("Demo.XD.Mixed.01__label_B2-G-0", ["Shooting", "Explosion"], _intervals(rng, n, two=True), n)
    for i in range(1, n_normal + 1):
        add(f"Demo.XD.Normal.{i:02d}__label_A", [], [], round(rng.uniform(*seconds) * fps))
    return plan


def generate_demo_xd(
    root: str | Path,
    *,
    n_per_kind: int = 2,
    n_normal: int = 8,
    seconds: tuple[float, float] = (8, 12),
    fps: int = 24,
    size: tuple[int, int] = (96, 128),
    seed: int = 0,
) -> Path:
    """Write the XD-Violence-layout demo data set under ``root`` (idempotent, like :func:`generate_demo`)."""
    params = dict(version=_VERSION, layout="xd_violence", n_per_kind=n_per_kind, n_normal=n_normal,
                  seconds=list(seconds), fps=fps, size=list(size), seed=seed)

    def build() -> tuple[list[dict], str, str]:
        plan = _plan_xd(n_per_kind, n_normal, seconds, fps, seed)
        lines = [
            " ".join([Path(it["rel"]).stem, *(str(v) for iv in it["intervals"] for v in iv)])
            for it in plan if it["intervals"]
        ]
        return plan, XD_ANNOTATIONS, "".join(line + "\n" for line in lines)

    return _write_once(Path(root), params, (_XD_DIR,), build, fps, size)


def _write_once(root: Path, params: dict, folders: tuple[str, ...], build, fps: int,
                size: tuple[int, int]) -> Path:
    """Render ``build()``'s plan under ``root`` unless the manifest says it is already there."""
    key = hash_obj(params)
    manifest = root / MANIFEST
    try:
        old = json.loads(manifest.read_text())
        if old.get("params_hash") == key and all((root / f).is_file() for f in old["files"]):
            return root
    except (OSError, ValueError, KeyError, TypeError):
        pass
    manifest.unlink(missing_ok=True)
    for d in folders:
        shutil.rmtree(root / d, ignore_errors=True)
    plan, ann_name, ann_text = build()
    for item in plan:
        write_video(root / item["rel"], _render(item, size), fps)
    (root / ann_name).write_text(ann_text)
    files = [it["rel"] for it in plan] + [ann_name]
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(json.dumps({"params": params, "params_hash": key, "files": files}, indent=1))
    os.replace(tmp, manifest)
    return root


DEMO_GENERATORS = {"ucf_crime": generate_demo, "xd_violence": generate_demo_xd}
"""The generated demo of each data set kind that has one (a data set without ``root``)."""
