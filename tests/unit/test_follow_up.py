"""``scoring.follow_up: uncertain``: per-question requests only for units whose joint answer is uncertain."""

from __future__ import annotations

import numpy as np

from askhint_assets.inference import predict, predict_per_question
from askhint_assets.pipeline.follow_up import follow_up_rows
from askhint_assets.pipeline.runner import CachedRunner
from askhint_assets.prompts.templates import default_templates
from askhint_assets.store import Store
from askhint_assets.video.units import Unit
from tests.fakes import IntervalBackend

QS = ["Is it bright?", "Is it loud?", "Is it fast?"]


def _units() -> tuple[list[Unit], dict[str, np.ndarray]]:
    """Three units whose frames make the interval backend answer 0.05, 0.5 and 0.95."""
    frames = {"dark": np.zeros((2, 2, 2, 3), np.uint8), "grey": np.full((2, 2, 2, 3), 100, np.uint8),
              "bright": np.full((2, 2, 2, 3), 255, np.uint8)}
    units = [Unit("d", "pl", f"v{i}", 0, 0, 10, key, 1.0) for i, key in enumerate(frames)]
    return units, frames


class _GreyIsUncertain(IntervalBackend):
    def generate(self, requests):
        out = super().generate(requests)
        for r, o in zip(requests, out, strict=True):  # mid-grey frames: P = 0.5
            if r.choices and r.frames is not None and 50 < r.frames.max() <= 128:
                o.choice_logprobs = {c: float(np.log(0.5)) for c in o.choice_logprobs}
        return out


def test_only_uncertain_units_get_per_question_requests(tmp_path) -> None:
    units, frames = _units()
    backend = _GreyIsUncertain()
    runner = CachedRunner(backend, Store(tmp_path / "db.duckdb"))
    common = dict(templates=default_templates(), questions=QS, question_set="qs", model="m", runner=runner,
                  load_frames=frames.get, prefetch=False)
    joint = predict(units, template="askhint", **common)
    assert [round(r["score"], 2) for r in joint] == [0.05, 0.5, 0.95]
    before = len(backend.sent)
    asked: list[Unit] = []

    def ask(some: list[Unit]) -> list[dict]:
        asked.extend(some)
        return predict_per_question(some, **common)

    rows = follow_up_rows(joint, {(u.plan, u.video_id, u.unit): u for u in units}, (0.2, 0.8), ask)
    assert [u.video_id for u in asked] == ["v1"]
    assert len(backend.sent) - before == len(QS)  # one request per question, for the uncertain unit only
    assert [(r["video_id"], r["template"], r["score_path"]) for r in rows] == [
        ("v0", "follow_up", "joint"), ("v1", "follow_up", "per_question"), ("v2", "follow_up", "joint")]
    assert rows[0]["score"] == joint[0]["score"] and rows[2]["score"] == joint[2]["score"]
