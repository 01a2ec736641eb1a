"""The request/response types every model backend speaks, and the backend protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Message:
    """One chat turn. The video is attached to the first user message of a request."""

    role: str  # "system" | "user" | "assistant"
    text: str


@dataclass
class VLMRequest:
    """One request to a video VLM.

    ``frames`` is ``(T, H, W, 3)`` uint8 RGB, sampled from the video in time order; ``frames_fps``
    is the effective rate of the sampled frames (for temporal position ids).
    ``choices``: when set, the backend must return the log-probability of each choice as the first
    answer token(s) (``choice_logprobs``), e.g. ``("Normal", "Abnormal")``; text is still generated.
    ``frames_key`` is the content hash of the frames (the cache key uses it instead of the pixels).
    ``frames=None`` makes a text-only request (e.g. an LLM summarising question clusters).
    """

    messages: list[Message]
    frames: np.ndarray | None
    frames_fps: float = 1.0
    frames_key: str = ""
    choices: tuple[str, ...] | None = None
    max_new_tokens: int = 64


@dataclass
class VLMResponse:
    """What came back: generated text, the choices' log-probabilities where the backend gives them."""

    text: str
    choice_logprobs: dict[str, float] | None = None
    latency_s: float = 0.0
    ok: bool = True
    error: str | None = None
    extra: dict = field(default_factory=dict)


@runtime_checkable
class VLMBackend(Protocol):
    """A model backend. ``fingerprint`` identifies model and decoding settings for the cache key."""

    backend_name: str
    model_name: str

    def fingerprint(self) -> dict: ...

    def generate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
        """Answer every request, in order. A failed request gives ``ok=False`` with ``error``."""
        ...


@runtime_checkable
class ProbedBackend(Protocol):
    """A backend whose fingerprint depends on what its servers accept (found by probing them). The caller
    remembers :meth:`server_state` between runs and hands it back, so that a run whose answers are all
    cached contacts no server; :meth:`confirm_server_state` probes again before any request is sent and
    says whether the fingerprint changed."""

    def server_state(self) -> dict[str, dict]: ...

    def assume_server_state(self, state: dict[str, dict]) -> None: ...

    def confirm_server_state(self) -> bool: ...
