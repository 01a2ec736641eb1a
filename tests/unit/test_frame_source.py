"""Frames decoded on demand (``execution.decode: overlapped``): one pass per video, the same arrays as
the upfront path, an undecodable video reported and not raised."""

from __future__ import annotations

import numpy as np
import pytest

from askhint_assets.datasets.base import VideoRecord
from askhint_assets.demo.synth import render_clip
from askhint_assets.video.decode import write_video
from askhint_assets.video.frame_cache import FrameCache
from askhint_assets.video.frame_source import FrameSource, UnitFrames
from askhint_assets.video.sampling import SamplingConfig
from askhint_assets.video.units import extract_units, plan_units, video_file_key

SAMPLING = SamplingConfig(max_frames=6, fallback_fps=4.0, min_frames=2, max_side=64)


def _video(tmp_path, name: str, seed: int):
    path = write_video(tmp_path / f"{name}.mp4", render_clip("Explosion", 60, (48, 64), (20, 40), seed=seed), 10)
    rec = VideoRecord(name, "Explosion", ("Explosion",), ((20, 40),), path=path, num_frames=60, fps=10.0)
    units = plan_units(rec, video_file_key(path), SAMPLING, "window", 2.0, 1.0)
    return path, units


def _source(cache: FrameCache, videos: dict) -> FrameSource:
    return FrameSource(cache, [UnitFrames(vid, str(path), u) for vid, (path, us) in videos.items() for u in us],
                       SAMPLING.max_side)


def test_a_miss_decodes_the_whole_video_once_and_matches_the_upfront_frames(tmp_path):
    videos = {"a": _video(tmp_path, "a", 1), "b": _video(tmp_path, "b", 2)}
    source = _source(FrameCache(tmp_path / "lazy"), videos)
    path, units = videos["a"]
    first = source.load(units[0].frames_key)
    assert source.decoded_units == len(units)  # every unit of video a in one pass, none of b
    for u in units[1:]:
        source.load(u.frames_key)
    assert source.decoded_units == len(units)  # the rest came from the cache
    upfront = FrameCache(tmp_path / "upfront")
    extract_units(path, units, upfront, SAMPLING.max_side)
    np.testing.assert_array_equal(first, upfront.load(units[0].frames_key)[0])
    assert not source.failed


def test_units_added_later_are_decoded_in_one_pass_of_their_own(tmp_path):
    videos = {"a": _video(tmp_path, "a", 1)}
    path, units = videos["a"]
    source = FrameSource(FrameCache(tmp_path / "lazy"), [], SAMPLING.max_side)  # a tree: no units known yet
    source.add([UnitFrames("a", str(path), u) for u in units[:2]])
    source.load(units[0].frames_key)
    assert source.decoded_units == 2
    source.add([UnitFrames("a", str(path), u) for u in units])  # the next level (known units are kept once)
    later = source.load(units[3].frames_key)
    assert source.decoded_units == len(units)  # only the units not yet cached, in one more pass
    upfront = FrameCache(tmp_path / "upfront")
    extract_units(path, units, upfront, SAMPLING.max_side)
    np.testing.assert_array_equal(later, upfront.load(units[3].frames_key)[0])


def test_an_undecodable_video_is_reported_and_the_others_still_load(tmp_path):
    videos = {"a": _video(tmp_path, "a", 1), "bad": _video(tmp_path, "bad", 2)}
    bad_path, bad_units = videos["bad"]
    bad_path.write_bytes(b"\x00" * 2048)  # probed before, garbage now
    source = _source(FrameCache(tmp_path / "cache"), videos)
    assert source.load(bad_units[0].frames_key) is None
    assert source.failed.get("bad")
    assert source.load(bad_units[1].frames_key) is None  # not tried again
    assert source.load(videos["a"][1][0].frames_key) is not None


def test_an_unknown_key_names_the_asset_to_materialize(tmp_path):
    source = _source(FrameCache(tmp_path / "cache"), {})
    with pytest.raises(KeyError, match="sampled_frames"):
        source.load("0123456789abcdef")
