"""Backend for any OpenAI-compatible chat-completions server (``vllm serve``, SGLang, LMDeploy, hosted).

Frames travel inside the first user message, before its text (the body is built in :mod:`.openai_payload`),
in one of two ways:

* ``video_mode="video"`` (``"auto"`` picks it for ``qwen2_5_vl``; the paper's setting): one ``video_url``
  part whose URL is ``data:video/jpeg;base64,<f1>,<f2>,...`` (the comma-separated per-frame JPEG list vLLM's
  ``VideoMediaIO`` decodes into a frame array), so Qwen2.5-VL gets temporal patches and time positions; with
  ``media_io_kwargs: {"video": {"num_frames": T, "fps": frames_fps}}`` (keep all T frames, their true rate)
  and ``mm_processor_kwargs: {"fps": frames_fps}`` where the server accepts them.
* ``video_mode="images"`` (``"auto"`` for other families): one ``image_url`` part per frame. Qwen2.5-VL then
  encodes each frame as its own image: about twice the visual tokens and no time positions.

Each server is probed (:mod:`.server_probe`): what it accepts (log-probabilities with media, a video part, each
per-request field, whether the frame rate sent sets the time positions) and its version go into the fingerprint
and decide what is sent; a server that would keep only part of a video's frames, or would time every video at
its own default rate, stops the run with a clear error. A probe is remembered (the caller stores
:meth:`OpenAIBackend.server_state` and hands it back through :meth:`~OpenAIBackend.assume_server_state`), so a
rerun whose answers are all cached contacts no server; :meth:`~OpenAIBackend.confirm_server_state` probes
again before anything is sent. Decoding is greedy
(temperature 0) with ``logprobs`` where accepted; the choices' log-probabilities are read from the first
generated token's ``top_logprobs`` (see :func:`askhint_assets.vlm.score.match_choice_logprobs`). A response
without them is not an error: its ``choice_logprobs`` is None and ``extra["no_logprobs"]`` says why, so the
answer text is scored.
The API key is read from the environment at call time and is never logged, stored, fingerprinted or echoed.

The ``openai`` SDK is not used: its client has its own retries and timeouts (which the failover loop here
would have to switch off), needs ``extra_body`` for every vLLM field, and adds nothing this module needs.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import threading
import time
from dataclasses import replace
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from askhint_assets.errors import BackendError
from askhint_assets.vlm.backends import openai_payload, server_probe
from askhint_assets.vlm.backends.openai_payload import VLLM_FIELDS, resolve_video_mode
from askhint_assets.vlm.backends.server_probe import ProbeError, ProbeUnanswered, ServerCaps
from askhint_assets.vlm.score import match_choice_logprobs
from askhint_assets.vlm.types import VLMRequest, VLMResponse

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 429})  # plus every 5xx
KEPT_SLACK = 1.5  # frames: a kept-frame estimate this far below the frames sent means truncation


class _Permanent(Exception):
    """A failure that retrying will not fix (4xx other than the retryable ones, bad body)."""


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _strip_refused(body: dict, error: str) -> tuple[dict, str] | None:
    """The body without what a 4xx says the server refuses (vLLM-only fields, log-probabilities), else None.

    For a server that changes mid-run (restarted with other options): the request is resent at once, its
    answer scored from the text where no log-probabilities come back.
    """
    if not error.startswith(("HTTP 400", "HTTP 422")):
        return None
    low = error.lower()
    drop = [k for k in VLLM_FIELDS if k in body and ("unexpected field" in low or k in low)]
    if not drop and "logprobs" in body and "logprob" in low:
        drop = ["logprobs", "top_logprobs"]
    if not drop:
        return None
    return {k: v for k, v in body.items() if k not in drop}, ", ".join(drop)


def _retry_after_s(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None when absent/unparsable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class OpenAIBackend:
    """VLM backend over OpenAI-compatible ``/chat/completions`` endpoints, with scale-out and retries.

    ``base_urls`` include the API prefix, as for the OpenAI SDK (``http://127.0.0.1:8000/v1``); each
    attempt goes to the next URL in round-robin order. At most ``max_concurrency`` requests are in flight
    per :meth:`generate` call. ``max_new_tokens`` is the default for requests that do not set their own.
    """

    backend_name = "openai"

    def __init__(
        self,
        model: str,
        base_urls: list[str],
        video_timing: Literal["per_request", "server_default"] = "per_request",
        api_key_env: str = "OPENAI_API_KEY",
        family: str = "qwen2_5_vl",
        video_mode: Literal["auto", "images", "video"] = "auto",
        jpeg_quality: int = 90,
        max_concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 20.0,
        top_logprobs: int = 20,
        max_new_tokens: int = 64,
        probe: bool = True,
        video_input: Literal["auto", "images", "video"] | None = None,
    ) -> None:
        """``video_input`` is ``model.video_input`` of the settings (the registry passes settings by name);
        when given it is the video mode."""
        video_mode = video_input or video_mode
        if isinstance(base_urls, str):
            base_urls = [base_urls]
        if not base_urls:
            raise ValueError("OpenAIBackend needs at least one base URL")
        if max_concurrency < 1 or max_retries < 0:
            raise ValueError("max_concurrency must be >= 1 and max_retries >= 0")
        self.model = self.model_name = model
        self.base_urls = [u.rstrip("/") for u in base_urls]
        bad = [u for u in self.base_urls if not u.startswith(("http://", "https://"))]
        if bad:
            raise ValueError(f"base URLs must start with http:// or https://: {bad}")
        self.api_key_env = api_key_env
        self.family = family
        self.video_mode = resolve_video_mode(video_mode, family)  # what is wanted; the probe may fall back
        self.probe = bool(probe)
        self.jpeg_quality = int(jpeg_quality)
        self.max_concurrency = int(max_concurrency)
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self.top_logprobs = int(top_logprobs)
        self.max_new_tokens = int(max_new_tokens)
        self.stats: dict[str, int] = {"requests": 0, "attempts": 0, "retries": 0, "failures": 0}
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._rr = itertools.count()
        self.video_timing = video_timing
        self._caps: dict[str, ServerCaps] = {}  # per base URL: probed, or remembered (then in _assumed)
        self._assumed: set[str] = set()
        self._probe_error: str | None = None
        self._kept_checked: set[int] = set()  # frame counts whose video truncation check passed

    def __repr__(self) -> str:
        return (
            f"OpenAIBackend(model={self.model!r}, base_urls={self.base_urls!r}, "
            f"api_key_env={self.api_key_env!r}, family={self.family!r}, video_mode={self.video_mode!r})"
        )

    # -- what the servers accept -----------------------------------------------------------------

    def capabilities(self) -> ServerCaps | None:
        """What every server accepts (see :mod:`.server_probe`); None when not probed.

        A server with no probe result (probed or remembered) is probed now. Not probed: ``probe=False``, or a
        server could not be reached (then requests are sent as configured and fail or adapt on their own; the
        next call probes again).
        """
        if not self.probe:
            return None
        with self._probe_lock:
            missing = [u for u in self.base_urls if u not in self._caps]
            if missing and not self._probe(missing):
                return None
            return ServerCaps.intersect([self._caps[u] for u in self.base_urls])

    def _probe(self, urls: list[str]) -> bool:
        """Probe ``urls`` (caller holds the probe lock); False when a server gave no usable answer."""
        found: dict[str, ServerCaps] = {}
        try:
            with httpx.Client(timeout=httpx.Timeout(min(self.timeout_s, 60.0))) as client:
                for url in urls:
                    caps = server_probe.probe_server(
                        self._probe_post(client, url), url, self.model, want_video=self.video_mode == "video",
                        top_logprobs=self.top_logprobs, video_timing=self.video_timing)
                    version = server_probe.server_version(self._probe_get(client, url), url)
                    found[url] = replace(caps, version=version)
        except ProbeUnanswered as e:
            self._probe_error = self._scrub(f"probe: {e}")
            log.warning("%s; sending requests as configured", self._probe_error)
            return False
        except ProbeError as e:
            raise BackendError(self._scrub(str(e))) from None
        for url, c in found.items():
            if c.video_error and self.video_mode == "video":
                log.warning("%s fails on a video part (%s): its frames go as images (no time positions)",
                            url, self._scrub(c.video_error))
            if c.timing == "server_default":
                log.warning("%s: videos are timed at the server's default rate (model.video_timing: server_default)",
                            url)
            log.info("%s accepts: %s", url, c.as_dict())
        self._caps.update(found)
        self._assumed -= set(found)
        return True

    def _probe_post(self, client: httpx.Client, url: str) -> server_probe.Post:
        """Send one probe body to ``url``, retrying 408/429/5xx and connection errors as requests are retried."""
        headers = {**self._headers(), **server_probe.PROBE_HEADER}
        return lambda body: self._retrying(url, lambda: client.post(url + "/chat/completions", json=body,
                                                                     headers=headers))

    def _probe_get(self, client: httpx.Client, url: str):
        """``GET`` a path of the server at ``url`` with the probe's retries."""
        return lambda full: self._retrying(url, lambda: client.get(full, headers=self._headers()))

    def _retrying(self, url: str, send) -> httpx.Response:
        """``send()`` until it is answered with anything but 408/429/5xx, at most ``max_retries`` times again;
        the last answer is returned, a connection that never answers raises :class:`ProbeUnanswered`."""
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                resp = send()
            except httpx.TransportError as e:
                if last:
                    raise ProbeUnanswered(f"{url}: connection error ({type(e).__name__}: {e})") from None
                time.sleep(self._backoff(attempt, None))
                continue
            if last or not (resp.status_code in RETRY_STATUS or resp.status_code >= 500):
                return resp
            time.sleep(self._backoff(attempt, _retry_after_s(resp.headers.get("retry-after"))))
        raise AssertionError("unreachable")

    # -- remembered probes (a rerun with every answer cached contacts no server) ------------------------

    def _probe_settings(self) -> dict:
        """What a probe result depends on besides the server (a remembered one with others is not used)."""
        return {"model": self.model, "video_mode": self.video_mode, "video_timing": self.video_timing,
                "top_logprobs": self.top_logprobs}

    def server_state(self) -> dict[str, dict]:
        """Per base URL, the probe result in hand (probed or remembered) and the settings it was found
        with, as JSON-able dicts."""
        with self._probe_lock:
            return {u: {"settings": self._probe_settings(), "caps": c.as_dict()} for u, c in self._caps.items()}

    def assume_server_state(self, state: dict[str, dict]) -> None:
        """Take remembered probe results (from :meth:`server_state` of an earlier run) without asking the
        servers; :meth:`confirm_server_state` probes them again before any request is sent."""
        with self._probe_lock:
            for url, d in state.items():
                if url in self.base_urls and url not in self._caps:
                    try:
                        if d["settings"] != self._probe_settings():
                            continue  # found with other settings: probe again
                        self._caps[url] = ServerCaps.from_dict(d["caps"])
                    except (KeyError, TypeError, ValueError):
                        continue  # an unreadable record: probe that server
                    self._assumed.add(url)

    def confirm_server_state(self) -> bool:
        """Probe every server whose result was only remembered; True when the fingerprint changed."""
        if not self.probe:
            return False
        before = self.fingerprint()
        with self._probe_lock:
            assumed = [u for u in self.base_urls if u in self._assumed]
            if not assumed:
                return False
            old = {u: self._caps.pop(u) for u in assumed}
            self._assumed -= set(assumed)
            if not self._probe(assumed):
                self._caps.update(old)  # unreachable now: the requests will report it
        return self.fingerprint() != before

    def effective_video_mode(self, caps: ServerCaps | None = None) -> str:
        """``video`` when wanted and every server takes a video part, else ``images``."""
        caps = caps if caps is not None else self.capabilities()
        return "images" if caps is not None and not caps.video else self.video_mode

    def check_frames_kept(self, n_frames: int) -> None:
        """Raise ``BackendError`` when a server would keep fewer than ``n_frames`` frames of a video."""
        caps = self.capabilities()
        if caps is None or self.effective_video_mode(caps) != "video" or n_frames <= 8:
            return
        with self._probe_lock:
            if n_frames in self._kept_checked:
                return
            with httpx.Client(timeout=httpx.Timeout(self.timeout_s)) as client:
                for url in self.base_urls:
                    try:
                        kept = server_probe.frames_kept(self._probe_post(client, url), url, self.model, n_frames,
                                                        caps.fields)
                    except ProbeError as e:
                        raise BackendError(self._scrub(str(e))) from None
                    except ProbeUnanswered:
                        return  # the requests themselves will report the error
                    if kept is None:
                        log.warning("%s reports no prompt-token counts: cannot check that it keeps every frame",
                                    url)
                    elif kept < n_frames - KEPT_SLACK:
                        raise BackendError(server_probe.truncation_message(url, n_frames, kept))
            self._kept_checked.add(n_frames)

    def fingerprint(self) -> dict:
        """Model, decoding settings, what is sent and who answers. ``server`` (the probed capabilities) appears
        only when a server lacks something, i.e. when the bodies differ from the full vLLM ones;
        ``server_version`` is every server's ``/version`` (``unknown`` where none is served)."""
        caps = self.capabilities()
        fp = {
            "backend": "openai",
            "model": self.model,
            "family": self.family,
            "video_mode": self.effective_video_mode(caps),
            "jpeg_quality": self.jpeg_quality,
            "top_logprobs": self.top_logprobs,
            "max_new_tokens": self.max_new_tokens,
            "temperature": 0,
        }
        if caps is not None:
            if not caps.full:
                fp["server"] = {k: v for k, v in caps.as_dict().items() if k not in ("version", "video_error")}
            fp["server_version"] = caps.version
        return fp

    # -- request building -------------------------------------------------------------------------

    def build_body(self, request: VLMRequest, caps: ServerCaps | None = None) -> dict[str, Any]:
        """The JSON body of the chat-completions call for ``request`` (frames JPEG-encoded).

        ``caps``: what the servers accept (None: everything, as for vLLM): fields they refuse are left out.
        """
        return openai_payload.chat_body(
            request, model=self.model, mode=self.effective_video_mode(caps) if caps is not None else self.video_mode,
            jpeg_quality=self.jpeg_quality, max_new_tokens=self.max_new_tokens, top_logprobs=self.top_logprobs,
            logprobs=caps is None or caps.logprobs, fields=VLLM_FIELDS if caps is None else caps.fields)

    # -- response parsing -------------------------------------------------------------------------

    @staticmethod
    def parse_response(data: Any, choices: tuple[str, ...] | None) -> tuple[str, dict[str, float] | None, dict]:
        """``(text, choice_logprobs, extra)`` from a chat-completions JSON body; ValueError if malformed."""
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as e:
            raise ValueError(f"response has no choices[0].message ({type(e).__name__}: {e})") from None
        if not isinstance(text, str):
            raise ValueError(f"message content is {type(text).__name__}, not a string")
        extra = {"finish_reason": choice.get("finish_reason"), "usage": data.get("usage")}
        if not choices:
            return text, None, extra
        try:
            first = choice["logprobs"]["content"][0]
            top = [(t["token"], t["logprob"]) for t in first.get("top_logprobs") or []]
            top.append((first["token"], first["logprob"]))
        except (KeyError, IndexError, TypeError, AttributeError):
            extra["no_logprobs"] = "the server returned no log-probabilities"
            return text, None, extra
        extra["first_token"] = first.get("token")
        return text, match_choice_logprobs(top, choices), extra

    # -- transport --------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _scrub(self, text: str) -> str:
        key = os.environ.get(self.api_key_env)
        return text.replace(key, "***") if key else text

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.stats[name] += n

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_max_s, self.backoff_base_s * 2**attempt) * (0.5 + 0.5 * random.random())
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max_s))
        return delay

    async def _attempt(self, client: httpx.AsyncClient, url: str, body: dict) -> Any:
        try:
            async with asyncio.timeout(self.timeout_s):
                resp = await client.post(url, json=body, headers=self._headers())
        except (httpx.TimeoutException, TimeoutError) as e:
            raise _Transient(f"timeout after {self.timeout_s}s ({type(e).__name__})") from None
        except httpx.TransportError as e:
            raise _Transient(f"connection error ({type(e).__name__}: {e})") from None
        if resp.status_code in RETRY_STATUS or resp.status_code >= 500:
            raise _Transient(
                f"HTTP {resp.status_code}: {resp.text[:200]}", _retry_after_s(resp.headers.get("retry-after"))
            )
        if resp.status_code in (401, 403):
            raise _Permanent(f"HTTP {resp.status_code}: {resp.text[:200]} (is ${self.api_key_env} right?)")
        if resp.status_code != 200:
            raise _Permanent(f"HTTP {resp.status_code}: {resp.text[:300]}")
        try:
            return resp.json()
        except ValueError:
            raise _Permanent(f"invalid JSON in response body: {resp.text[:120]!r}") from None

    async def _one(self, client: httpx.AsyncClient, sem: asyncio.Semaphore, req: VLMRequest) -> VLMResponse:
        t0 = time.perf_counter()
        self._count("requests")
        error = "no attempt made"
        url = ""
        sends = 0
        async with sem:  # encode inside the slot so at most max_concurrency bodies are in memory
            try:
                body = await asyncio.to_thread(self.build_body, req, self._caps_now())
            except Exception as e:
                self._count("failures")
                return VLMResponse(text="", ok=False, error=f"bad request: {e}", latency_s=time.perf_counter() - t0)
            attempt, sends = 0, 0
            while attempt <= self.max_retries:
                url = self.base_urls[next(self._rr) % len(self.base_urls)] + "/chat/completions"
                self._count("attempts")
                sends += 1
                try:
                    data = await self._attempt(client, url, body)
                    text, lps, extra = self.parse_response(data, req.choices)
                    extra.update(base_url=url, attempts=sends)
                    return VLMResponse(text=text, choice_logprobs=lps, latency_s=time.perf_counter() - t0, extra=extra)
                except _Permanent as e:
                    error = f"{url}: {e}"
                    stripped = _strip_refused(body, str(e))
                    if stripped is None:
                        break
                    log.warning("%s refused fields of a request; resending without %s", url, stripped[1])
                    body = stripped[0]  # resent at once; not counted as a retry
                    self._forget_fields(url.removesuffix("/chat/completions"), stripped[1].split(", "))
                    continue
                except ValueError as e:
                    error = f"{url}: {e}"
                    break
                except _Transient as e:
                    error = f"{url}: {e}"
                    if attempt == self.max_retries:
                        error += f" (gave up after {attempt + 1} attempts)"
                        break
                    self._count("retries")
                    delay = self._backoff(attempt, e.retry_after)
                    log.debug("retrying in %.2fs: %s", delay, self._scrub(error))
                    await asyncio.sleep(delay)
                    attempt += 1
        self._count("failures")
        error = self._scrub(error)
        log.warning("request failed: %s", error)
        return VLMResponse(
            text="",
            ok=False,
            error=error,
            latency_s=time.perf_counter() - t0,
            extra={"base_url": url, "attempts": sends},
        )

    def _caps_now(self) -> ServerCaps | None:
        """The probed capabilities, without probing (the probe runs before the requests are sent)."""
        with self._probe_lock:
            if any(u not in self._caps for u in self.base_urls):
                return None
            return ServerCaps.intersect([self._caps[u] for u in self.base_urls])

    def _forget_fields(self, url: str, names: list[str]) -> None:
        """A server refused these per-request fields mid-run: later bodies leave them out (the run's
        fingerprint keeps what the probe found; the next run probes again)."""
        with self._probe_lock:
            if url in self._caps:
                for name in names:
                    if name in VLLM_FIELDS:
                        self._caps[url] = self._caps[url].without_field(name)

    async def agenerate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
        """Answer every request concurrently (bounded), in order (after the probe and truncation check)."""
        await asyncio.to_thread(self.capabilities)
        counts = {len(r.frames) for r in requests if r.frames is not None and getattr(r.frames, "ndim", 0) == 4}
        for n in sorted(counts):
            await asyncio.to_thread(self.check_frames_kept, n)
        sem = asyncio.Semaphore(self.max_concurrency)
        limits = httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
        async with httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s), limits=limits) as client:
            return list(await asyncio.gather(*(self._one(client, sem, r) for r in requests)))

    def generate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
        """Sync entry point: runs its own event loop (in a helper thread if this one already has one)."""
        if not requests:
            return []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.agenerate(requests))
        result: list[list[VLMResponse]] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                result.append(asyncio.run(self.agenerate(requests)))
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=run, name="openai-backend", daemon=True)
        t.start()
        t.join()
        if errors:
            raise errors[0]
        return result[0]
