"""Content-addressed model requests: a rerun with nothing changed sends nothing.

The key of a request is a hash of everything that determines the answer: the frames' content key,
the full message text, the answer choices, the decoding settings and the backend's fingerprint
(model identity + generation settings). Only greedy (deterministic) answers are cached, so a hit is
exactly what the model would say again. Every request actually sent is logged in ``model_calls``;
responses are stored as they come (grouped so that storing stays a small share of the time), so a
run killed midway resumes where it stopped. Requests are sent under per-request locks (striped by
hash), so two runs against one home never send the same request, while runs or shards asking
different requests proceed in parallel.

A backend whose fingerprint depends on what its servers accept (:class:`ProbedBackend`: the openai backend)
starts from the probe results remembered in the store, so a rerun whose answers are all cached contacts no
server; before the first request is sent the servers are probed again, and where that changes the
fingerprint the keys are computed anew.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from askhint_assets.store import Store, now
from askhint_assets.vlm.cache import request_hash
from askhint_assets.vlm.types import ProbedBackend, VLMBackend, VLMRequest, VLMResponse

STORE_SHARE = 0.1
"""At most this share of a runner's time goes to storing answers (a fast model: several batches per store)."""


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
        self._probed = backend if isinstance(backend, ProbedBackend) else None
        self._confirmed = self._probed is None
        remembered: dict[str, dict] = {}
        if self._probed is not None:
            remembered = store.server_probes(list(getattr(backend, "base_urls", [])))
            self._probed.assume_server_state(remembered)
        self.fingerprint = backend.fingerprint()  # probes only servers with no remembered result
        if self._probed is not None and self._probed.server_state() != remembered:
            store.remember_server_probes(self._probed.server_state())  # a server was probed just now
        self.stats = RunStats()
        self._stored_at = time.perf_counter()
        self._store_cost = 0.0  # the first batch is stored at once, which measures the cost

    def hash(self, request: VLMRequest) -> str:
        return request_hash(request, self.fingerprint)

    def run(self, requests: Sequence[VLMRequest]) -> list[tuple[str, VLMResponse]]:
        """Return ``(request_hash, response)`` per request, in order.

        Under the locks of these requests (another run asking any of them waits, then finds them
        cached): one cache read, then the misses in batches of ``batch_size``. Answers are stored as
        they come, but at most as often as keeps the storing below ``STORE_SHARE`` of the time (a
        store is due once ``1/STORE_SHARE`` times its last cost has passed): every batch with a slow
        model, every few batches with a fast one. Pending answers are stored when the call ends, also
        when a batch raises; a killed run loses only what was pending.
        """
        hashes = [self.hash(r) for r in requests]
        if not self._confirmed and len(self.store.cached_responses(list(set(hashes)))) < len(set(hashes)):
            self._confirm_servers()  # something will be sent: ask the servers what they accept now
            hashes = [self.hash(r) for r in requests]
        unique = list(dict.fromkeys(hashes))
        self.stats.requests += len(requests)
        out: dict[str, VLMResponse] = {}
        with self.store.request_locks(unique):
            for h, c in self.store.cached_responses(unique).items():
                out[h] = VLMResponse(text=c["text"], choice_logprobs=c["choice_logprobs"], extra={"cached": True})
            self.stats.cache_hits += sum(h in out for h in hashes)
            first: dict[str, VLMRequest] = {}
            for h, r in zip(hashes, requests, strict=True):
                first.setdefault(h, r)
            todo = [(h, first[h]) for h in unique if h not in out]
            pending: list[tuple[tuple[str, VLMRequest], VLMResponse]] = []
            try:
                for start in range(0, len(todo), self.batch_size):
                    batch = todo[start : start + self.batch_size]
                    responses = self.backend.generate([r for _, r in batch])
                    pending += zip(batch, responses, strict=True)
                    for (h, _), resp in zip(batch, responses, strict=True):
                        out[h] = resp
                    if time.perf_counter() - self._stored_at >= self._store_cost / STORE_SHARE:
                        self._store(pending)
                    if self.on_batch:
                        self.on_batch(min(start + self.batch_size, len(todo)), len(todo))
            finally:
                self._store(pending)
        return [(h, out[h]) for h in hashes]

    def _confirm_servers(self) -> None:
        """Probe the servers whose state was only remembered; new keys if the fingerprint changed."""
        assert self._probed is not None
        if self._probed.confirm_server_state():
            self.fingerprint = self.backend.fingerprint()
        self.store.remember_server_probes(self._probed.server_state())
        self._confirmed = True

    def _store(self, pending: list) -> None:
        """Record the pending answers (and empty the list), timing it for the next decision."""
        if not pending:
            return
        t0 = time.perf_counter()
        self._record([b for b, _ in pending], [r for _, r in pending])
        pending.clear()
        self._stored_at = time.perf_counter()
        self._store_cost = self._stored_at - t0

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
