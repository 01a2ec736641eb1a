"""Synthetic clips show their event exactly in its span; the demo data set loads as UCF-Crime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from askhint_assets.datasets import ucf_crime
from askhint_assets.demo import datasets as demo
from askhint_assets.demo.synth import EVENT_KINDS, render_clip

T, SPAN = 24, (8, 18)


@pytest.fixture(scope="module")
def normal() -> np.ndarray:
    return render_clip(None, T, seed=5)


def test_normal_clip_shape_and_determinism(normal: np.ndarray) -> None:
    assert normal.shape == (T, 96, 128, 3) and normal.dtype == np.uint8
    np.testing.assert_array_equal(normal, render_clip(None, T, seed=5))
    assert not np.array_equal(normal[0], render_clip(None, 1, seed=6)[0])  # backgrounds vary by seed
    motion = np.abs(np.diff(normal.astype(np.int16), axis=0)).mean()
    assert motion < 5  # calm: noise plus slow small movers


@pytest.mark.parametrize("event", EVENT_KINDS)
def test_event_visible_only_in_its_span(event: str, normal: np.ndarray) -> None:
    clip = render_clip(event, T, event_span=SPAN, seed=5)
    diff = np.abs(clip.astype(np.int16) - normal).max(axis=-1)
    s, e = SPAN
    np.testing.assert_array_equal(clip[:s], normal[:s])
    np.testing.assert_array_equal(clip[e:], normal[e:])
    changed = (diff[s:e] > 30).mean(axis=(1, 2))
    assert changed.min() >= 0.12, changed  # large in every event frame
    assert changed.mean() >= 0.18, changed


def test_events_differ_from_each_other(normal: np.ndarray) -> None:
    """Each event's mean colour change is distinct: a tiny model can tell them apart."""
    sig = []
    for event in EVENT_KINDS:
        clip = render_clip(event, T, event_span=SPAN, seed=5)
        d = clip[SPAN[0] : SPAN[1]].astype(np.float32) - normal[SPAN[0] : SPAN[1]]
        sig.append(d.mean(axis=(0, 1, 2)))
    sig_arr = np.array(sig)
    dist = np.linalg.norm(sig_arr[:, None] - sig_arr[None], axis=-1)
    assert dist[~np.eye(len(EVENT_KINDS), dtype=bool)].min() > 3


def test_render_options() -> None:
    clip = render_clip("Explosion", 6, size=(56, 72), seed=1)  # no span: the whole clip
    assert clip.shape == (6, 56, 72, 3)
    assert render_clip(None, 0).shape == (0, 96, 128, 3)
    with pytest.raises(ValueError, match="unknown event"):
        render_clip("Dancing", 4)


SMALL = dict(n_anomalous_per_class=1, n_normal=2, seconds=(2, 3), fps=10, size=(48, 64))


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.generate_demo(tmp_path_factory.mktemp("demo"), **SMALL)  # type: ignore[arg-type]


def test_demo_layout_and_format(demo_root: Path) -> None:
    ann = (demo_root / ucf_crime.ANNOTATION_FILE).read_text().splitlines()
    assert len(ann) == len(EVENT_KINDS) + 2
    assert ann[0].startswith("Fighting001_x264.mp4  Fighting  ")
    assert ann[-1] == "Normal_Videos_002_x264.mp4  Normal  -1  -1  -1  -1"
    assert sum("-1" not in line for line in ann) == 2  # two videos with two intervals
    assert (demo_root / "Anomaly-Videos" / "Explosion" / "Explosion001_x264.mp4").is_file()
    assert (demo_root / "Testing_Normal_Videos_Anomaly" / "Normal_Videos_001_x264.mp4").is_file()
    assert set(demo.DEMO_CLASSES) <= set(ucf_crime.CLASSES)


def test_demo_loads_and_intervals_fit(demo_root: Path) -> None:
    ds = ucf_crime.load(demo_root)
    assert len(ds.videos) == len(EVENT_KINDS) + 2 and not ds.skipped
    for v in ds.videos:
        assert v.fps == 10.0 and 20 <= v.num_frames <= 30
        for s, e in v.intervals:
            assert 0.2 <= (e - s) / v.num_frames <= 0.46
        if len(v.intervals) == 2:
            assert v.intervals[0][1] < v.intervals[1][0]


def test_demo_event_is_in_the_annotated_frames(demo_root: Path) -> None:
    from askhint_assets.video.decode import decode_frames

    v = ucf_crime.load(demo_root).by_id()["Explosion001_x264"]
    (s, e), = v.intervals
    frames, _ = decode_frames(v.path, [max(0, s - 1), (s + e) // 2, e % v.num_frames])
    inside = frames[1].astype(np.int16)
    assert inside[..., 0].mean() > 150  # bright orange fills the frame
    assert frames[0][..., 0].mean() < inside[..., 0].mean() - 40


def test_demo_is_idempotent_and_rebuilds(demo_root: Path) -> None:
    manifest = demo_root / demo.MANIFEST
    video = demo_root / "Anomaly-Videos" / "Fighting" / "Fighting001_x264.mp4"
    stamp = (manifest.stat().st_mtime_ns, video.stat().st_mtime_ns)
    demo.generate_demo(demo_root, **SMALL)  # type: ignore[arg-type]
    assert (manifest.stat().st_mtime_ns, video.stat().st_mtime_ns) == stamp
    video.unlink()  # an interrupted or damaged run
    demo.generate_demo(demo_root, **SMALL)  # type: ignore[arg-type]
    assert video.is_file() and len(ucf_crime.load(demo_root).videos) == len(EVENT_KINDS) + 2
    ann = demo_root / ucf_crime.ANNOTATION_FILE
    before = ann.read_text()
    manifest.unlink()  # interrupted before the manifest was written: rebuilt, same content
    demo.generate_demo(demo_root, **SMALL)  # type: ignore[arg-type]
    assert ann.read_text() == before and manifest.is_file()
    demo.generate_demo(demo_root, **{**SMALL, "seed": 1})  # type: ignore[arg-type]
    assert ann.read_text() != before


def test_demo_seeds_are_disjoint_from_training() -> None:
    assert demo.DEMO_SEED_OFFSET == 1_000_000
    plan = demo._plan(1, 1, (1, 1), 10, seed=0)
    assert min(p["seed"] for p in plan) >= demo.DEMO_SEED_OFFSET
