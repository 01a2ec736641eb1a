"""FrameCache: atomic saves, and a corrupt entry is a miss, never a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from askhint_assets.video.frame_cache import FrameCache


@pytest.fixture
def cache(tmp_path: Path) -> FrameCache:
    return FrameCache(tmp_path / "frames")


def _frames() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (4, 6, 8, 3), dtype=np.uint8)


def test_round_trip(cache: FrameCache) -> None:
    assert not cache.has("abc") and cache.get("abc") is None
    meta = {"video": "Abuse028_x264", "indices": [0, 5], "fps": 30.0}
    p = cache.save("abc", _frames(), meta)
    assert p == cache.path_for("abc") and p.name == "abc.npz"
    assert cache.has("abc")
    frames, got = cache.load("abc")
    np.testing.assert_array_equal(frames, _frames())
    assert got == meta
    assert [q.name for q in p.parent.iterdir()] == ["abc.npz"]  # no temp file left


def test_overwrite(cache: FrameCache) -> None:
    cache.save("k", _frames(), {"v": 1})
    cache.save("k", _frames()[:1], {"v": 2})
    frames, meta = cache.load("k")
    assert frames.shape[0] == 1 and meta == {"v": 2}


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, "truncate"])
def test_corrupt_entry_is_a_miss(cache: FrameCache, content: bytes | str) -> None:
    p = cache.save("k", _frames(), {"v": 1})
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2] if content == "truncate" else content)
    assert cache.get("k") is None
    assert not p.exists()
    with pytest.raises(KeyError):
        cache.load("k")


def test_has_removes_corrupt_file(cache: FrameCache) -> None:
    p = cache.save("k", _frames(), {})
    p.write_bytes(b"not a zip")
    assert not cache.has("k") and not p.exists()


def test_missing_key_raises_key_error(cache: FrameCache) -> None:
    with pytest.raises(KeyError):
        cache.load("nothing")


@pytest.mark.parametrize("key", ["", "../x", "a/b", ".hidden", "a b"])
def test_bad_keys(cache: FrameCache, key: str) -> None:
    with pytest.raises(ValueError, match="invalid cache key"):
        cache.path_for(key)
