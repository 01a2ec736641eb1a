"""Frames decoded in a pool of worker processes (``execution.decode_workers``): the same arrays as in
one process, the next videos decoded ahead in order with at most ``ahead`` in flight, an undecodable
video failing alone; the sampling mode's settings reach the plan, the frames key and the cache."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from askhint_assets.datasets.base import VideoRecord
from askhint_assets.demo.synth import render_clip
from askhint_assets.errors import InputError
from askhint_assets.pipeline.data import plan_id
from askhint_assets.pipeline.scoring import decode_options
from askhint_assets.settings import PipelineSettings, SamplingSettings
from askhint_assets.settings_file import load_settings
from askhint_assets.video import frame_source
from askhint_assets.video.decode import write_video
from askhint_assets.video.frame_cache import FrameCache
from askhint_assets.video.frame_source import DecodeOptions, FrameSource, UnitFrames, default_workers
from askhint_assets.video.sampling import SamplingConfig
from askhint_assets.video.units import extract_units, plan_units, video_file_key

SAMPLING = SamplingConfig(max_frames=6, fallback_fps=4.0, min_frames=2, max_side=64)


def _video(tmp_path, name: str, seed: int, sampling: SamplingConfig = SAMPLING):
    path = write_video(tmp_path / f"{name}.mp4", render_clip("Explosion", 60, (48, 64), (20, 40), seed=seed), 10)
    rec = VideoRecord(name, "Explosion", ("Explosion",), ((20, 40),), path=path, num_frames=60, fps=10.0)
    return path, plan_units(rec, video_file_key(path), sampling, "window", 2.0, 1.0)


def _units(videos: dict) -> list[UnitFrames]:
    return [UnitFrames(vid, str(path), u) for vid, (path, us) in videos.items() for u in us]


def test_two_workers_give_the_frames_of_one_process_and_stay_within_ahead(tmp_path):
    videos = {f"v{i}": _video(tmp_path, f"v{i}", i) for i in range(6)}
    bad_path = videos["v2"][0]
    bad_path.write_bytes(b"\x00" * 4096)  # planned while it was fine, garbage now
    here = FrameSource(FrameCache(tmp_path / "here"), _units(videos), SAMPLING.max_side)
    in_flight = []
    with FrameSource(FrameCache(tmp_path / "pool"), _units(videos), DecodeOptions(64, workers=2, ahead=3)) as pool:
        for vid, (_, units) in videos.items():
            for u in units:
                got, want = pool.load(u.frames_key), here.load(u.frames_key)
                in_flight.append(len(pool._jobs))
                if vid == "v2":
                    assert got is None and want is None
                else:
                    np.testing.assert_array_equal(got, want)
        assert set(pool.failed) == {"v2"} and pool.failed["v2"] == here.failed["v2"]
        assert pool.decoded_units == here.decoded_units == sum(len(us) for v, (_, us) in videos.items() if v != "v2")
    assert max(in_flight) <= 3 and pool._pool is None  # closed
    assert default_workers() >= 1


_DECODE = frame_source._decode_video


def _crash_on_bad(path: str, *args):
    """Run in a worker process: kills it (as a crashing decoder would) for a video named ``crash``."""
    if "crash" in path:
        os._exit(11)
    return _DECODE(path, *args)


def test_a_video_that_kills_its_worker_fails_alone(tmp_path, monkeypatch):
    videos = {name: _video(tmp_path, name, i) for i, name in enumerate(["a", "crash", "b", "c"])}
    monkeypatch.setattr(frame_source, "_decode_video", _crash_on_bad)  # pickled by name: workers run it too
    cache = FrameCache(tmp_path / "c")
    with FrameSource(cache, _units(videos), DecodeOptions(64, workers=2, ahead=4)) as pool:
        failed = pool.prepare_all()
    assert list(failed) == ["crash"] and "decoding process died" in failed["crash"]
    for vid in ("a", "b", "c"):  # decoded though the crash broke the pool they were queued in
        assert all(cache.has(u.frames_key) for u in videos[vid][1])


def _decode_after_next_started(path: str, units, cache_root: str, options, *rest):
    """Run in a worker process: mark this video's decoding as started (a file beside the cache); for the
    first video, wait for the second one's mark before decoding, and record whether it came."""
    marks = Path(cache_root).parent / "started"
    marks.mkdir(exist_ok=True)
    (marks / Path(path).stem).touch()
    if Path(path).stem == "v0":
        seen = _wait_for_file(marks / "v1", 60.0)
        (marks / "v0-saw-v1").write_text(str(seen))
    return _DECODE(path, units, cache_root, options, *rest)


def _wait_for_file(path: Path, limit_s: float) -> bool:
    """Whether ``path`` appears within ``limit_s`` (a safety bound: passing never waits it out)."""
    deadline = time.monotonic() + limit_s
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_the_next_video_starts_decoding_before_the_current_one_is_read(tmp_path, monkeypatch):
    """Decoding ahead, observed through files: v0's decoding (in a worker) cannot finish until v1's has
    started in another worker, so the first frames of v0 come back only if the pool started v1 unasked."""
    videos = {f"v{i}": _video(tmp_path, f"v{i}", i) for i in range(3)}
    monkeypatch.setattr(frame_source, "_decode_video", _decode_after_next_started)
    marks = tmp_path / "started"
    with FrameSource(FrameCache(tmp_path / "c"), _units(videos), DecodeOptions(64, workers=2, ahead=2)) as pool:
        assert pool.load(videos["v0"][1][0].frames_key) is not None  # the first unit of v0 consumed
        assert (marks / "v0-saw-v1").read_text() == "True"  # v1 was decoding before v0 was read
        assert not (marks / "v2").exists()  # ahead=2: v2 waits until v0 has been read
        for u in videos["v1"][1]:
            assert pool.load(u.frames_key) is not None
        assert _wait_for_file(marks / "v2", 60.0)  # reading v1 started v2, before it was asked for


def test_prepare_all_decodes_every_video_through_the_pool(tmp_path):
    videos = {f"v{i}": _video(tmp_path, f"v{i}", i) for i in range(3)}
    cache = FrameCache(tmp_path / "c")
    with FrameSource(cache, _units(videos), DecodeOptions(64, workers=2)) as pool:
        assert pool.prepare_all() == {}
    assert all(cache.has(u.frames_key) for _, us in videos.values() for u in us)


def test_nearest_keyframe_units_record_the_frames_used_and_never_share_exact_keys(tmp_path):
    fast = SamplingConfig(max_frames=6, fallback_fps=4.0, min_frames=2, max_side=64, mode="nearest_keyframe",
                          max_offset_s=0.2)
    path, exact_units = _video(tmp_path, "a", 1)
    _, fast_units = _video(tmp_path, "a", 1, fast)
    assert not {u.frames_key for u in exact_units} & {u.frames_key for u in fast_units}
    assert [u.indices.tolist() for u in exact_units] == [u.indices.tolist() for u in fast_units]
    cache = FrameCache(tmp_path / "c")
    with FrameSource(cache, [UnitFrames("a", str(path), u) for u in fast_units],
                     DecodeOptions.for_plan(fast, workers=1)) as source:
        assert source.load(fast_units[0].frames_key) is not None
    for u in fast_units:
        meta = cache.load(u.frames_key)[1]
        used = np.array(meta["used"])
        assert meta["mode"] == "nearest_keyframe" and meta["indices"] == u.indices.tolist()
        assert np.abs(used - u.indices).max() <= 2  # 0.2 s at 10 fps
    exact = FrameCache(tmp_path / "e")
    extract_units(path, exact_units, exact, 64)
    assert exact.load(exact_units[0].frames_key)[1]["used"] == exact_units[0].indices.tolist()


def _settings(tmp_path, **sections) -> PipelineSettings:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(sections))
    return load_settings(p)


def test_sampling_mode_settings_and_plan_ids(tmp_path):
    base = PipelineSettings()
    assert plan_id(_settings(tmp_path, sampling={"mode": "exact"}), "video") == plan_id(base, "video")
    fast = _settings(tmp_path, sampling={"mode": "nearest_keyframe", "max_offset_s": 0.5},
                     execution={"decode_workers": 3, "decode_ahead": 5})
    assert plan_id(fast, "video") != plan_id(base, "video")
    opts = decode_options(fast)
    assert (opts.mode, opts.max_offset_s, opts.workers, opts.ahead) == ("nearest_keyframe", 0.5, 3, 5)
    assert decode_options(base).workers == default_workers()
    assert SamplingSettings().mode == "exact"
    for sections, fld in [
        ({"sampling": {"mode": "fastest"}}, "sampling.mode"),
        ({"sampling": {"max_offset_s": 1.0}}, "sampling.max_offset_s"),  # only with nearest_keyframe
        ({"sampling": {"mode": "nearest_keyframe", "max_offset_s": -1}}, "sampling.max_offset_s"),
        ({"execution": {"decode_workers": -1}}, "execution.decode_workers"),
        ({"execution": {"decode_ahead": "many"}}, "execution.decode_ahead"),
    ]:
        with pytest.raises(InputError, match=fld.replace(".", r"\.")):
            _settings(tmp_path, **sections)
