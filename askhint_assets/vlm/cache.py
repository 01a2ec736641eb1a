"""Content-addressed model requests: a rerun with nothing changed sends nothing.

The key of a request is a hash of everything that determines the answer: the frames' content key,
the full message text, the answer choices, the decoding settings and the backend's fingerprint
(model identity + generation settings). Only greedy (deterministic) answers are cached, so a hit is
exactly what the model would say again. Every request actually sent is logged in ``model_calls``;
responses are stored batch by batch, so a run killed midway resumes where it stopped. Batches are
sent under per-request locks (striped by hash), so two runs against one home never send the same request,
while runs or shards asking different requests proceed in parallel.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from askhint_assets.hashing import hash_obj
from askhint_assets.store import Store, now
from askhint_assets.vlm.types import VLMBackend, VLMRequest, VLMResponse


def request_hash(request: VLMRequest, fingerprint: dict) -> str:
    """The content address of a request under a backend fingerprint."""
    return hash_obj(
        {
            "frames": request.frames_key if request.frames is not None else None,
            "fps": round(request.frames_fps, 6) if request.frames is not None else None,
            "messages": [[m.role, m.text] for m in request.messages],
            "choices": list(request.choices) if request.choices else None,
            "max_new_tokens": request.max_new_tokens,
            "backend": fingerprint,
        },
        length=32,
    )


@dataclass
class RunStats:
    requests: int = 0
    cache_hits: int = 0
    sent: int = 0
    failed: int = 0


class CachedRunner:
    """Answers requests from the DuckDB cache, sending only the misses, in batches."""

    def __init__(
        self,
        backend: VLMBackend,
        store: Store,
        run_id: str = "",
        batch_size: int = 8,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.backend = backend
        self.store = store
        self.run_id = run_id
        self.batch_size = max(1, batch_size)
        self.on_batch = on_batch
        self.fingerprint = backend.fingerprint()
        self.stats = RunStats()

    def hash(self, request: VLMRequest) -> str:
        return request_hash(request, self.fingerprint)

    def run(self, requests: Sequence[VLMRequest]) -> list[tuple[str, VLMResponse]]:
        """Return ``(request_hash, response)`` per request, in order."""
        hashes = [self.hash(r) for r in requests]
        cached = self.store.cached_responses(sorted(set(hashes)))
        out: dict[str, VLMResponse] = {
            h: VLMResponse(text=c["text"], choice_logprobs=c["choice_logprobs"], extra={"cached": True})
            for h, c in cached.items()
        }
        self.stats.requests += len(requests)
        todo: list[tuple[str, VLMRequest]] = []
        seen: set[str] = set()
        for h, r in zip(hashes, requests, strict=True):
            if h in out:
                self.stats.cache_hits += 1
            elif h not in seen:
                seen.add(h)
                todo.append((h, r))
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            with self.store.request_locks([h for h, _ in batch]):  # another run may have answered some
                for h, c in self.store.cached_responses([h for h, _ in batch]).items():
                    out[h] = VLMResponse(text=c["text"], choice_logprobs=c["choice_logprobs"], extra={"cached": True})
                    self.stats.cache_hits += hashes.count(h)
                batch = [(h, r) for h, r in batch if h not in out]
                responses = self.backend.generate([r for _, r in batch]) if batch else []
                if batch:
                    self._record(batch, responses)
            for (h, _), resp in zip(batch, responses, strict=True):
                out[h] = resp
            if self.on_batch:
                self.on_batch(min(start + self.batch_size, len(todo)), len(todo))
        return [(h, out[h]) for h in hashes]

    def _record(self, batch: list[tuple[str, VLMRequest]], responses: list[VLMResponse]) -> None:
        ts = now()
        fingerprint = json.dumps(self.fingerprint, sort_keys=True)
        stored, calls = [], []
        for (h, _), resp in zip(batch, responses, strict=True):
            self.stats.sent += 1
            if resp.ok:
                stored.append(
                    {
                        "request_hash": h,
                        "backend": self.backend.backend_name,
                        "model": self.backend.model_name,
                        "text": resp.text,
                        "choice_logprobs": json.dumps(resp.choice_logprobs)
                        if resp.choice_logprobs is not None
                        else None,
                        "fingerprint": fingerprint,
                        "created_at": ts,
                    }
                )
            else:
                self.stats.failed += 1
            calls.append(
                {
                    "call_id": uuid.uuid4().hex,
                    "request_hash": h,
                    "backend": self.backend.backend_name,
                    "model": self.backend.model_name,
                    "latency_s": float(resp.latency_s),
                    "ok": bool(resp.ok),
                    "error": resp.error,
                    "run_id": self.run_id,
                    "fingerprint": fingerprint,
                    "created_at": ts,
                }
            )
        self.store.record_calls(stored, calls)
