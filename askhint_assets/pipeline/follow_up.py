"""Adaptive follow-ups (``scoring.follow_up: uncertain``): per-question requests only for the units whose joint
Q* answer is uncertain, instead of for every unit (``scoring.per_question``).

A unit whose joint (two-stage template) score lies in the uncertain band ``[low, high)`` is asked each Q*
question on its own (:func:`inference.predict_per_question`, the same cached requests per-question mode sends);
its follow-up score is their aggregate. Every other unit keeps its joint score. The rows are stored under the
template ``follow_up`` with ``score_path`` saying which path produced each score (``joint`` or
``per_question``), so the report evaluates them like any other prediction set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from askhint_assets.prompts.templates import Template
from askhint_assets.video.tree import uncertain
from askhint_assets.video.units import Unit


def follow_up_rows(joint: Sequence[dict], units: dict[tuple[str, str, int], Unit], band: tuple[float, float],
                   ask_per_question: Callable[[list[Unit]], list[dict]]) -> list[dict]:
    """Follow-up rows for the scored ``joint`` rows; ``units`` maps ``(plan, video_id, unit)`` to the unit asked.
    A unit whose per-question requests failed keeps no row (a rerun asks it again)."""
    scored = [r for r in joint if r["score_source"] != "failed"]
    todo = [r for r in scored if uncertain(r["score"], band)]
    asked = ask_per_question([units[(r["plan"], r["video_id"], r["unit"])] for r in todo])
    by_unit = {(r["plan"], r["video_id"], r["unit"]): r for r in asked}
    out = []
    for r in scored:
        key = (r["plan"], r["video_id"], r["unit"])
        if key in by_unit:
            pq = by_unit[key]
            if pq["score_source"] == "failed":
                continue
            out.append({**pq, "template": Template.FOLLOW_UP, "score_path": "per_question"})
        else:
            out.append({**r, "template": Template.FOLLOW_UP, "score_path": "joint"})
    return out
