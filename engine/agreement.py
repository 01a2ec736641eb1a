"""How two backends' answers on the same demo units are compared (tier tests and bench/prefix_cache.py).

Tolerance, from a measurement (vLLM 0.32 CPU build vs the transformers backend, float32, the whole demo:
386 stage-1 answers, all equal; largest score difference 0.080, mean 0.0012). The server path sends each
frame as a JPEG (quality 90) and the transformers backend the decoded pixels, so the engines see slightly
different frames: scores may differ by up to ``MAX_DIFF`` (twice the largest seen), ``MEAN_DIFF`` on average,
and an answer may flip only where the reference score is within ``BOUNDARY`` of 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_DIFF = 0.16
MEAN_DIFF = 0.01
BOUNDARY = 0.1


@dataclass(frozen=True)
class Agreement:
    units: int
    answers_equal: int
    max_diff: float
    mean_diff: float
    flips_away_from_boundary: int

    def summary(self) -> str:
        return (f"{self.answers_equal}/{self.units} answers equal, score difference max {self.max_diff:.3f} "
                f"mean {self.mean_diff:.4f}")

    def within_tolerance(self) -> bool:
        return (self.max_diff <= MAX_DIFF and self.mean_diff <= MEAN_DIFF and self.flips_away_from_boundary == 0)


def compare(got: dict, ref: dict) -> Agreement:
    """``got``/``ref``: ``(video, unit, plan) -> (score, answer, source)``; both must cover the same units."""
    assert set(got) == set(ref), f"different units: {sorted(set(got) ^ set(ref))[:5]}"
    diffs = [abs(got[k][0] - ref[k][0]) for k in ref]
    flips = [k for k in ref if got[k][1] != ref[k][1] and abs(ref[k][0] - 0.5) > BOUNDARY]
    return Agreement(len(ref), sum(got[k][1] == ref[k][1] for k in ref), max(diffs), sum(diffs) / len(diffs),
                     len(flips))
