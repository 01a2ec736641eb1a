"""Choosing the uncertain band on a validation split (never on the test annotations).

The band ``[low, high)`` drives the tree's splits (a span scoring ``>= low`` is split) and the follow-ups (scores
in the band get per-question requests). From whole-video scores of a validation set with known labels:

* ``low``: the highest score that still keeps ``recall`` of the anomalous videos at or above it (so a tree
  splits at least that share of them at its root);
* ``high``: the lowest two-decimal score that no more than ``false_alarm`` of the normal videos reach (scores
  at or above it are taken as confidently abnormal); at least ``low``.

``low`` is rounded down to two decimals, so the settings read plainly and the band only widens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def choose_band(anomalous: Sequence[float], normal: Sequence[float], recall: float = 0.95,
                false_alarm: float = 0.05) -> tuple[float, float]:
    """``(low, high)`` from validation scores of anomalous and normal videos (see the module docstring)."""
    if not anomalous or not normal:
        raise ValueError("choosing a band needs scores of both anomalous and normal validation videos")
    if not 0 < recall <= 1 or not 0 <= false_alarm < 1:
        raise ValueError(f"need 0 < recall <= 1 and 0 <= false_alarm < 1, got {recall}, {false_alarm}")
    a = sorted(anomalous, reverse=True)
    keep = max(1, math.ceil(recall * len(a)))  # this many anomalous videos must score >= low
    low = a[keep - 1]
    n = sorted(normal, reverse=True)
    allowed = math.floor(false_alarm * len(n))  # this many normal videos may score >= high
    # the next two-decimal value above the highest normal score that is not allowed to reach the band's top
    high = (math.floor(100 * n[allowed] + 1e-9) + 1) / 100 if allowed < len(n) else 0.0
    low = math.floor(100 * low + 1e-9) / 100
    return low, max(low, min(1.0, high))
