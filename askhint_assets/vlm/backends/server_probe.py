"""What an OpenAI-compatible server accepts, found with a few tiny requests (``max_tokens=1``).

Servers differ: vLLM returns log-probabilities, takes one ``video_url`` part of comma-separated JPEG frames
and, when started with ``--trust-request-mm-kwargs``, the per-request fields ``media_io_kwargs`` /
``mm_processor_kwargs`` (vLLM 0.32 answers 400 to them otherwise); Hugging Face's ``transformers serve``
ignores ``logprobs``, answers 422 to fields outside its schema and may fail (500) on every video part;
hosted endpoints may refuse log-probabilities with media. :func:`probe_server` asks, each through the
caller's ``post`` (which retries 408/429/5xx and connection errors like any request):

1. a text request with ``logprobs`` (a 4xx naming them: again without);
2. when a video is wanted, a 4-frame ``video_url`` part: any failure → frames go as images instead
   (``video_error`` says why); else one ``image_url`` part;
3. for a video: each per-request field on its own (``fields``: the ones accepted);
4. for a video: the timing. The same 8 frames at two rates must give different log-probabilities, or the
   rate sent is not what sets Qwen2.5-VL's time positions. Where the fields are refused or have no effect
   the probe stops (:class:`ProbeError` naming the server and ``--trust-request-mm-kwargs``) unless the
   settings accept the server's default timing (``model.video_timing: server_default``).

The server's version (``GET /version``, vLLM's) is read too. :func:`frames_kept` then checks, for a frame
count a run sends, that the server keeps every frame of a video (vLLM keeps only the first ``num_frames``,
default 32, of a ``video/jpeg`` URL unless told otherwise, silently), from the prompt-token counts of 4-, 8-
and T-frame videos. Probe requests carry the header ``X-Askhint-Probe: 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import httpx
import numpy as np

from askhint_assets.vlm.backends.openai_payload import (
    VLLM_FIELDS,
    encode_jpeg_b64,
    image_parts,
    video_fields,
    video_part,
)

PROBE_HEADER = {"X-Askhint-Probe": "1"}
TRUST_FLAG = "--trust-request-mm-kwargs"
PROBE_TEXT = "Answer with one word: Yes or No. Is the sky blue?"
_PROBE_FPS = 2.0
TIMING_RATES = (0.5, 8.0)  # the two rates of the timing check (time positions 4 s and 0.25 s per temporal patch)
TIMING_MIN_DIFF = 1e-3  # log-probability: below this the two rates count as giving the same answer
_NOT_ANSWERED = (401, 403, 404, 408, 429)

Timing = Literal["request", "server_default", "unchecked", "none"]
"""How a video's frame rate reaches the model: ``request`` (the rate sent per request sets the time positions,
checked), ``server_default`` (the server's own rate; accepted by the settings), ``unchecked`` (the fields are
accepted but no log-probabilities come back to check them), ``none`` (frames go as images: no time positions)."""

Post = Callable[[dict], httpx.Response]
"""Sends one probe body to one server (retrying transient failures); returns the last response."""


class ProbeError(Exception):
    """The server answered the probe in a way that makes it unusable (message names the server)."""


class ProbeUnanswered(Exception):
    """The probe got no usable answer (auth, unknown model, overload, unreachable) after retries: requests
    go as configured and report their own errors; the next run probes again."""


@dataclass(frozen=True)
class ServerCaps:
    """What one server accepts; part of the backend fingerprint (and remembered in the store)."""

    logprobs: bool  # log-probabilities come back for requests with media
    video: bool  # a video_url part is accepted (False: frames go as image_url parts)
    fields: tuple[str, ...] = VLLM_FIELDS  # the per-request fields it accepts (sent with video requests)
    timing: Timing = "request"
    version: str | None = None  # GET /version (vLLM), else None
    video_error: str | None = None  # why a video part failed (frames then go as images)

    def as_dict(self) -> dict:
        return {**asdict(self), "fields": list(self.fields)}

    @staticmethod
    def from_dict(d: dict) -> ServerCaps:
        """The inverse of :meth:`as_dict` (a remembered probe); KeyError/TypeError when malformed."""
        return ServerCaps(logprobs=bool(d["logprobs"]), video=bool(d["video"]), fields=tuple(d["fields"]),
                          timing=d["timing"], version=d.get("version"), video_error=d.get("video_error"))

    @property
    def full(self) -> bool:
        """Everything a trusted vLLM accepts: log-probabilities, video parts, both fields, timing per request."""
        return self.logprobs and self.video and set(self.fields) == set(VLLM_FIELDS) and self.timing == "request"

    def without_field(self, name: str) -> ServerCaps:
        return replace(self, fields=tuple(f for f in self.fields if f != name))

    @staticmethod
    def intersect(caps: list[ServerCaps]) -> ServerCaps:
        """What every server accepts (one body is built per request and may go to any of them)."""
        order: tuple[Timing, ...] = ("none", "server_default", "unchecked", "request")
        video = all(c.video for c in caps)
        return ServerCaps(
            logprobs=all(c.logprobs for c in caps),
            video=video,
            fields=tuple(f for f in VLLM_FIELDS if all(f in c.fields for c in caps)),
            timing="none" if not video else min((c.timing for c in caps), key=order.index),
            version=",".join(sorted({c.version or "unknown" for c in caps})),
            video_error=next((c.video_error for c in caps if c.video_error), None),
        )


def _probe_frames(n: int, side: int = 28) -> list[str]:
    """``n`` tiny distinct gray JPEG frames, base64."""
    return [encode_jpeg_b64(np.full((side, side, 3), 60 + (i * 7) % 120, np.uint8), quality=80) for i in range(n)]


def top_logprobs_of(data: Any) -> dict[str, float]:
    """The first generated token's top log-probabilities (token text -> logprob); empty when absent."""
    try:
        first = data["choices"][0]["logprobs"]["content"][0]
        return {str(t["token"]): float(t["logprob"]) for t in first.get("top_logprobs") or []}
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        return {}


def describe(resp: httpx.Response) -> str:
    return f"HTTP {resp.status_code}: {resp.text[:200]}"


def _unanswered(resp: httpx.Response) -> bool:
    return resp.status_code >= 500 or resp.status_code in _NOT_ANSWERED


def _refuses_logprobs(resp: httpx.Response) -> bool:
    return 400 <= resp.status_code < 500 and "logprob" in resp.text.lower()


def timing_message(url: str, why: str) -> str:
    return (f"{url}: the server does not take the frame rate of each video ({why}), so Qwen2.5-VL's time "
            f"positions would come from the server's default rate, not the sampled frames'. Start vLLM with "
            f"{TRUST_FLAG} (see the README's serving recipe), or set model.video_timing: server_default to "
            "accept the server's default timing (recorded in the fingerprint and flagged in the report).")


def _user(media: list[dict], text: str = PROBE_TEXT) -> list[dict]:
    return [{"role": "user", "content": [*media, {"type": "text", "text": text}]}]


def probe_server(post: Post, url: str, model: str, *, want_video: bool, top_logprobs: int,
                 video_timing: str = "per_request") -> ServerCaps:
    """Find what the server at ``url`` accepts (see the module doc); ``post`` sends one body to it."""
    base = {"model": model, "temperature": 0, "max_tokens": 1}
    lp = {"logprobs": True, "top_logprobs": top_logprobs}

    def ask(messages: list[dict], extra: dict, with_lp: bool) -> httpx.Response:
        return post({**base, "messages": messages, **(lp if with_lp else {}), **extra})

    resp = ask([{"role": "user", "content": PROBE_TEXT}], {}, True)
    if _refuses_logprobs(resp):
        resp = ask([{"role": "user", "content": PROBE_TEXT}], {}, False)
    if _unanswered(resp):
        raise ProbeUnanswered(f"{url}: the probe request failed: {describe(resp)}")
    if resp.status_code != 200:
        raise ProbeError(f"{url}: even a plain text request is refused: {describe(resp)}")

    jpegs = _probe_frames(8)
    video_error = None
    media_resp: tuple[httpx.Response, bool] | None = None
    if want_video:
        for with_lp in (True, False):  # some endpoints refuse log-probabilities with media
            r = ask(_user([video_part(jpegs[:4])]), {}, with_lp)
            if r.status_code == 200:
                media_resp = (r, with_lp)
                break
            if not (with_lp and _refuses_logprobs(r)):
                video_error = describe(r)
                break
    video = media_resp is not None
    if not video:
        last = ""
        for with_lp in (True, False):
            r = ask(_user(image_parts(jpegs[:1])), {}, with_lp)
            if r.status_code == 200:
                media_resp = (r, with_lp)
                break
            last = describe(r)
            if _unanswered(r):
                raise ProbeUnanswered(f"{url}: the probe request failed: {last}")
        if media_resp is None:
            raise ProbeError(f"{url}: the server takes neither a video nor an image part "
                             f"(video: {video_error or 'not tried'}; images: {last})")
    with_lp = media_resp[1]
    logprobs = with_lp and bool(top_logprobs_of(media_resp[0].json()))
    if not video:
        return ServerCaps(logprobs, False, (), "none", None, video_error)

    refused = {}
    fields: list[str] = []
    for field in VLLM_FIELDS:
        r = ask(_user([video_part(jpegs[:4])]), video_fields(4, _PROBE_FPS, (field,)), with_lp)
        if r.status_code == 200:
            fields.append(field)
        else:
            refused[field] = describe(r)
    timing: Timing
    if not fields:
        why = "; ".join(f"{k} refused with {v}" for k, v in refused.items())
        timing = _timing_fallback(url, why, video_timing)
    elif not logprobs:
        timing = "unchecked"
    else:
        answers = [top_logprobs_of(ask(_user([video_part(jpegs)]), video_fields(8, fps, tuple(fields)), True).json())
                   for fps in TIMING_RATES]
        shared = set(answers[0]) & set(answers[1])
        diff = max((abs(answers[0][t] - answers[1][t]) for t in shared), default=0.0)
        if shared and diff >= TIMING_MIN_DIFF:
            timing = "request"
        else:
            why = (f"the same 8 frames at {TIMING_RATES[0]} and {TIMING_RATES[1]} fps through "
                   f"{' and '.join(fields)} got the same log-probabilities (largest difference {diff:.2g})")
            timing = _timing_fallback(url, why, video_timing)
    return ServerCaps(logprobs, True, tuple(fields), timing, None, None)


def _timing_fallback(url: str, why: str, video_timing: str) -> Timing:
    if video_timing == "server_default":
        return "server_default"
    raise ProbeError(timing_message(url, why))


def server_version(get: Callable[[str], httpx.Response], url: str) -> str | None:
    """The server's version from ``GET <root>/version`` (vLLM serves it beside ``/v1``); None where the server
    answers without one (another server). ``get`` retries like ``post``; a server that never answers raises
    :class:`ProbeUnanswered` (a transient failure must not change the fingerprint)."""
    root = url[: -len("/v1")] if url.endswith("/v1") else url
    resp = get(root + "/version")
    if _unanswered(resp) and resp.status_code not in (401, 403, 404):
        raise ProbeUnanswered(f"{url}: GET /version failed: {describe(resp)}")
    if resp.status_code != 200:
        return None
    try:
        version = resp.json().get("version")
    except (ValueError, AttributeError):
        return None
    return str(version) if version else None


def prompt_tokens(post: Post, url: str, model: str, n_frames: int, fields: tuple[str, ...]) -> int | None:
    """``usage.prompt_tokens`` of a ``n_frames``-frame probe video (None when the server reports none)."""
    body = {"model": model, "temperature": 0, "max_tokens": 1,
            "messages": _user([video_part(_probe_frames(n_frames))]),
            **video_fields(n_frames, _PROBE_FPS, fields)}
    resp = post(body)
    if resp.status_code != 200:
        raise ProbeError(f"{url}: a {n_frames}-frame probe video was refused: {describe(resp)}")
    try:
        n = resp.json()["usage"]["prompt_tokens"]
    except (KeyError, TypeError, ValueError):
        return None
    return int(n) if isinstance(n, int | float) and n > 0 else None


def frames_kept(post: Post, url: str, model: str, n_frames: int, fields: tuple[str, ...]) -> float | None:
    """About how many of ``n_frames`` frames sent as one video the server keeps (None: no usage counts).

    From the prompt tokens of 4-, 8- and ``n_frames``-frame videos: ``4 + (t_n - t_4) / per_frame`` with
    ``per_frame = (t_8 - t_4) / 4`` (frame counts rounded up to the temporal patch of 2, as Qwen does).
    """
    t4 = prompt_tokens(post, url, model, 4, fields)
    t8 = prompt_tokens(post, url, model, 8, fields)
    tn = prompt_tokens(post, url, model, n_frames, fields)
    if t4 is None or t8 is None or tn is None or t8 <= t4:
        return None
    per_frame = (t8 - t4) / 4
    return 4 + (tn - t4) / per_frame


def truncation_message(url: str, sent: int, kept: float) -> str:
    return (f"{url}: the server keeps only about {math.floor(kept + 0.5)} of the {sent} frames sent as one video "
            "(from the prompt-token counts it reports), so every answer would see part of each video. vLLM keeps "
            "the first `num_frames` (default 32) frames of a video/jpeg URL and ignores media_io_kwargs in older "
            "versions: start it with --media-io-kwargs '{\"video\": {\"num_frames\": -1}}' (see the README's "
            "serving recipe), or set model.video_input: images.")
