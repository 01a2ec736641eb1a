"""Shards of a data set's videos: a stable assignment, so a shard's work survives adding videos.

A video belongs to shard ``int(sha1(video_id)[:8], 16) % n``: independent of the order or number of
the other videos, so adding a video changes one shard only, and every process computes the same split.
"""

from __future__ import annotations

import hashlib


def shard_of(video_id: str, n_shards: int) -> int:
    """The shard (``0 .. n_shards-1``) of a video."""
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    return int(hashlib.sha1(video_id.encode("utf-8")).hexdigest()[:8], 16) % n_shards


def shard_name(asset: str, index: int) -> str:
    """The asset name of one shard of a prediction asset (``askhint_predictions_shard_0``)."""
    return f"{asset}_shard_{index}"


def urls_for_shard(urls: list[str], index: int, n_shards: int) -> list[str]:
    """The servers a shard sends to: every ``n_shards``-th URL from its index (one URL, round-robin, when
    there are fewer servers than shards). Pinning keeps each server's prefix cache warm for its videos,
    and a dead server stops only its shards, which resume when run again."""
    if not urls:
        return []
    if n_shards >= len(urls):
        return [urls[index % len(urls)]]
    return urls[index::n_shards]
