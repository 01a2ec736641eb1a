"""Queries of the data chain: the videos of a data set, scoring plans and scoring units."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from askhint_assets.datasets.base import VideoRecord
from askhint_assets.store.db import Store, now
from askhint_assets.video.units import Unit


def replace_videos(st: Store, dataset: str, rows: list[dict[str, Any]]) -> None:
    """The data set's rows of ``videos``, replaced as one transaction."""
    st.replace_where("videos", "dataset = ?", [dataset], rows)


def load_videos(st: Store, dataset: str, only_ok: bool = True) -> list[VideoRecord]:
    """The data set's videos as stored by ``dataset_index`` (ordered by id)."""
    where = "dataset = ?" + (" AND status = 'ok'" if only_ok else "")
    df = st.query(f"SELECT * FROM videos WHERE {where} ORDER BY video_id", [dataset])
    return [
        VideoRecord(
            video_id=r["video_id"],
            label=r["label"],
            classes=tuple(r["classes"] or ()),
            intervals=tuple(tuple(x) for x in json.loads(r["intervals"] or "[]")),
            path=r["path"],
            num_frames=r["num_frames"],
            fps=r["fps"],
        )
        for r in df.iter_rows(named=True)
    ]


def ok_video_ids(st: Store, dataset: str) -> set[str]:
    return set(st.query("SELECT video_id FROM videos WHERE dataset = ? AND status = 'ok'", [dataset])["video_id"])


def mark_videos_failed(st: Store, dataset: str, reasons: dict[str, str]) -> None:
    """Record videos that could not be decoded (``video id -> reason``): excluded from scoring and evaluation."""
    if not reasons:
        return
    with st.connect() as con:
        con.executemany(
            "UPDATE videos SET status = 'failed', reason = ? WHERE dataset = ? AND video_id = ?",
            [[reason, dataset, vid] for vid, reason in sorted(reasons.items())],
        )


def store_plans(st: Store, plans: dict[str, str], settings_of: dict[str, dict]) -> None:
    """Scoring plans (granularity → plan id) with the settings that determine them."""
    st.upsert("plans", [
        {"plan": p, "granularity": g, "settings": json.dumps(settings_of[g]), "created_at": now()}
        for g, p in plans.items()
    ])


def replace_units(st: Store, dataset: str, plan: str, rows: list[dict[str, Any]]) -> None:
    st.replace_where("scoring_units", "dataset = ? AND plan = ?", [dataset, plan], rows)


def load_units(st: Store, dataset: str, plans: list[str]) -> list[Unit]:
    """Scoring units of the videos that decoded, for the given plans, in (video, plan, unit) order."""
    df = st.query(
        "SELECT u.* FROM scoring_units u JOIN videos v ON u.dataset = v.dataset AND u.video_id = v.video_id "
        "WHERE u.dataset = ? AND list_contains(?, u.plan) AND v.status = 'ok' ORDER BY u.video_id, u.plan, u.unit",
        [dataset, plans],
    )
    return [
        Unit(
            dataset=r["dataset"],
            plan=r["plan"],
            video_id=r["video_id"],
            unit=r["unit"],
            start_frame=r["start_frame"],
            end_frame=r["end_frame"],
            frames_key=r["frames_key"],
            frames_fps=r["frames_fps"],
        )
        for r in df.iter_rows(named=True)
    ]


def unit_frame_rows(st: Store, dataset: str, plans: list[str], videos: list[str]) -> Iterator[dict[str, Any]]:
    """What decoding the units of ``videos`` needs: frame indices, cache key and the video's path."""
    return st.query(
        "SELECT u.video_id, u.unit, u.start_frame, u.end_frame, u.frames_key, u.frame_indices, u.frames_fps, v.path "
        "FROM scoring_units u JOIN videos v ON u.dataset = v.dataset AND u.video_id = v.video_id "
        "WHERE u.dataset = ? AND list_contains(?, u.plan) AND list_contains(?, u.video_id) "
        "ORDER BY u.video_id, u.plan, u.unit",  # the order the units are scored in: decoding ahead follows it
        [dataset, plans, videos],
    ).iter_rows(named=True)
