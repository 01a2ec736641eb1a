"""Test doubles shared by the tests: a deterministic fake VLM backend, and a way to plug one in."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

from askhint_assets.vlm.backends import registry
from askhint_assets.vlm.backends.registry import register_backend
from askhint_assets.vlm.types import VLMBackend, VLMRequest, VLMResponse


@contextmanager
def registered_backend(name: str, backend: VLMBackend) -> Iterator[str]:
    """``backend`` in the backend registry under ``name`` while the block runs: select it with
    ``model: {backend: <name>}`` in the settings or ``VLMResource(backend=<name>)`` in the resources. The
    registration lives in this process only (an in-process executor sees it, a multiprocess one does not)."""
    register_backend(name, lambda model, **_: backend, local_model=False, replace=True)
    try:
        yield name
    finally:
        forget_backend(name)


def forget_backend(name: str) -> None:
    """Take a backend a test registered out of the registry again (the package has no unregistering)."""
    registry._BACKENDS.pop(name, None)


class FakeBackend:
    """Answers from the frames' brightness: bright frames are 'Abnormal'. Counts what it is sent."""

    backend_name = "fake"

    def __init__(self, model_name: str = "fake-vlm", threshold: float = 128.0, fail_keys: set[str] | None = None):
        self.model_name = model_name
        self.threshold = threshold
        self.fail_keys = fail_keys or set()
        self.sent: list[VLMRequest] = []

    def fingerprint(self) -> dict:
        return {"backend": "fake", "model": self.model_name, "threshold": self.threshold}

    def generate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
        out = []
        for r in requests:
            self.sent.append(r)
            if r.frames_key in self.fail_keys:
                out.append(VLMResponse(text="", ok=False, error="injected failure"))
                continue
            bright = float(r.frames.mean()) if r.frames is not None else 0.0
            p = 1 / (1 + math.exp(-(bright - self.threshold) / 10))
            if r.choices:  # the positive answer is "Abnormal" of (Normal, Abnormal) and "Yes" of (Yes, No)
                pos, neg = (r.choices[1], r.choices[0]) if "Abnormal" in r.choices else r.choices[:2]
                lp = {neg: math.log(max(1 - p, 1e-9)), pos: math.log(max(p, 1e-9))}
                text = pos if p >= 0.5 else neg
                out.append(VLMResponse(text=text, choice_logprobs=lp, latency_s=0.001))
            else:
                out.append(VLMResponse(text="Group: Public Safety Incidents\nReason: a bright flash.", latency_s=0.001))
        return out


class IntervalBackend:
    """Answers from a known anomalous interval: a request whose frames include a bright one (any pixel above
    128; tests render the interval's frames bright) is Abnormal with P = ``high``, else Normal with P(Abnormal)
    = ``low``. Counts what it is sent; raises ``Killed`` once it has answered ``kill_after`` requests."""

    backend_name = "interval"

    class Killed(Exception):
        pass

    def __init__(self, model_name: str = "interval-vlm", high: float = 0.95, low: float = 0.05,
                 kill_after: int | None = None):
        self.model_name = model_name
        self.high, self.low = high, low
        self.kill_after = kill_after
        self.sent: list[VLMRequest] = []

    def fingerprint(self) -> dict:
        return {"backend": "interval", "model": self.model_name, "high": self.high, "low": self.low}

    def generate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
        out = []
        for r in requests:
            if self.kill_after is not None and len(self.sent) >= self.kill_after:
                raise IntervalBackend.Killed(f"killed after {len(self.sent)} requests")
            self.sent.append(r)
            p = self.high if r.frames is not None and r.frames.max() > 128 else self.low
            if r.choices:
                pos, neg = (r.choices[1], r.choices[0]) if "Abnormal" in r.choices else r.choices[:2]
                lp = {neg: math.log(1 - p), pos: math.log(p)}
                out.append(VLMResponse(text=pos if p >= 0.5 else neg, choice_logprobs=lp, latency_s=0.001))
            else:
                out.append(VLMResponse(text="Group: Public Safety Incidents\nReason: a bright flash.", latency_s=0.001))
        return out
