"""The real-engine tier's agreement rule (engine/agreement.py) on made-up scores: what it lets through and what
it stops. The tier itself compares a real vLLM with the transformers backend."""

from __future__ import annotations

import numpy as np

from engine.agreement import compare


def _units(scores: np.ndarray) -> dict:
    return {(f"v{i}", 0, "pl"): (float(s), "Abnormal" if s >= 0.5 else "Normal", "logprobs")
            for i, s in enumerate(scores)}


def _ref() -> np.ndarray:
    return np.random.default_rng(0).uniform(0.0, 1.0, 200)


def test_small_noise_and_two_outliers_agree() -> None:
    ref = _ref()
    got = np.clip(ref + np.random.default_rng(1).normal(0, 0.002, ref.size), 0, 1)
    far = np.flatnonzero(np.abs(ref - 0.5) > 0.3)[:2]
    got[far] += np.where(ref[far] < 0.5, 0.25, -0.25)  # large moves that keep the answer (like the served demo's)
    a = compare(_units(got), _units(ref))
    assert a.large_diffs == 2 and a.within_tolerance(), a


def test_a_shift_of_the_bulk_disagrees() -> None:
    ref = _ref()
    a = compare(_units(np.clip(ref + 0.03, 0, 1)), _units(ref))  # every score moved a little: mean 0.03
    assert not a.within_tolerance(), a


def test_many_large_differences_disagree() -> None:
    ref = _ref()
    got = ref.copy()
    far = np.flatnonzero(np.abs(ref - 0.5) > 0.3)[:6]  # 3% of the units
    got[far] += np.where(ref[far] < 0.5, 0.25, -0.25)
    a = compare(_units(got), _units(ref))
    assert a.mean_diff <= 0.01 and a.large_diffs == 6 and not a.within_tolerance(), a


def test_a_flip_away_from_the_boundary_disagrees() -> None:
    ref = _ref()
    got = ref.copy()
    i = int(np.argmin(ref))  # the most normal unit answered abnormal
    got[i] = 0.9
    assert not compare(_units(got), _units(ref)).within_tolerance()
