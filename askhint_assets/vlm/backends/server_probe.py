"""What an OpenAI-compatible server accepts, found once per server with a few tiny requests.

Servers differ: vLLM returns log-probabilities, takes one ``video_url`` part of comma-separated JPEG frames
and the vLLM-only fields ``media_io_kwargs`` / ``mm_processor_kwargs``; Hugging Face's ``transformers
serve`` ignores ``logprobs`` and answers 422 to fields outside its schema; hosted endpoints may refuse
log-probabilities with image input or take no video part. :func:`probe_server` asks (``max_tokens=1``):

1. a text request with ``logprobs`` and the vLLM-only fields: 4xx → retried without those fields
   (``vllm_fields=False``);
2. the video input (when wanted): one 4-frame ``video_url`` part → ``video``; else one ``image_url``;
   with ``logprobs``, which a 4xx drops → ``logprobs`` is whether the media answer carried them.

:func:`frames_kept` then checks, for a frame count a run sends, that the server keeps every frame of a
video: vLLM keeps only the first ``num_frames`` (default 32) of a ``video/jpeg`` URL unless told
otherwise, silently. It compares the prompt-token counts (``usage``) of 4-, 8- and T-frame videos: the
visual tokens grow linearly with the frames kept. Probe requests carry the header ``X-Askhint-Probe: 1``.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import numpy as np
from PIL import Image

PROBE_HEADER = {"X-Askhint-Probe": "1"}
VLLM_FIELDS = ("media_io_kwargs", "mm_processor_kwargs")
PROBE_TEXT = "Answer with one word: Yes or No. Is the sky blue?"
_PROBE_FPS = 2.0


class ProbeError(Exception):
    """The server answered the probe in a way that makes it unusable (message names the server)."""


class ProbeUnanswered(Exception):
    """The probe got no usable answer (auth, unknown model, overload): requests go as configured and
    report their own errors; the next call probes again."""


_NOT_ANSWERED = (401, 403, 404, 408, 429)


@dataclass(frozen=True)
class ServerCaps:
    """What one server accepts; part of the backend fingerprint."""

    logprobs: bool  # log-probabilities come back for requests with media
    video: bool  # a video_url part is accepted (False: frames go as image_url parts)
    vllm_fields: bool  # media_io_kwargs / mm_processor_kwargs are accepted

    def as_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def intersect(caps: list[ServerCaps]) -> ServerCaps:
        """What every server accepts (one body is built per request and may go to any of them)."""
        return ServerCaps(all(c.logprobs for c in caps), all(c.video for c in caps), all(c.vllm_fields for c in caps))


def _probe_frames(n: int, side: int = 28) -> list[str]:
    """``n`` tiny distinct gray JPEG frames, base64."""
    out = []
    for i in range(n):
        buf = io.BytesIO()
        Image.fromarray(np.full((side, side, 3), 60 + (i * 7) % 120, np.uint8)).save(buf, format="JPEG", quality=80)
        out.append(base64.b64encode(buf.getvalue()).decode("ascii"))
    return out


def video_part(jpegs: list[str]) -> dict:
    return {"type": "video_url", "video_url": {"url": "data:video/jpeg;base64," + ",".join(jpegs)}}


def image_parts(jpegs: list[str]) -> list[dict]:
    return [{"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{j}"}} for j in jpegs]


def video_fields(num_frames: int, fps: float) -> dict:
    """The vLLM-only fields for one video of ``num_frames`` frames at ``fps`` (all of them, their timing).

    ``media_io_kwargs.video`` is read by vLLM's ``VideoMediaIO`` for a ``video/jpeg`` URL: ``num_frames``
    (how many of the sent frames to keep; -1 or the count keeps all) and ``fps`` (with ``total_num_frames``
    defaulting to the frames sent, ``duration`` to ``total_num_frames/fps``, ``frames_indices`` to 0..T-1,
    ``do_sample_frames`` to false). ``mm_processor_kwargs.fps`` sets Qwen2.5-VL's time positions.
    """
    return {"media_io_kwargs": {"video": {"num_frames": int(num_frames), "fps": float(fps)}},
            "mm_processor_kwargs": {"fps": float(fps)}}


def _post(client: httpx.Client, url: str, body: dict, headers: dict) -> httpx.Response:
    return client.post(url + "/chat/completions", json=body, headers={**headers, **PROBE_HEADER})


def _has_logprobs(data: Any) -> bool:
    try:
        return bool(data["choices"][0]["logprobs"]["content"][0].get("top_logprobs"))
    except (KeyError, IndexError, TypeError, AttributeError):
        return False


def _describe(resp: httpx.Response) -> str:
    return f"HTTP {resp.status_code}: {resp.text[:200]}"


def probe_server(client: httpx.Client, url: str, model: str, headers: dict, *, want_video: bool,
                 top_logprobs: int) -> ServerCaps:
    """Find what the server at ``url`` accepts (see the module doc). Transport errors propagate."""
    base = {"model": model, "temperature": 0, "max_tokens": 1}
    lp = {"logprobs": True, "top_logprobs": top_logprobs}
    text = [{"role": "user", "content": PROBE_TEXT}]
    resp = _post(client, url, {**base, "messages": text, **lp, **video_fields(4, _PROBE_FPS)}, headers)
    vllm_fields = resp.status_code == 200
    if not vllm_fields:
        if resp.status_code >= 500 or resp.status_code in _NOT_ANSWERED:
            raise ProbeUnanswered(f"{url}: the probe request failed: {_describe(resp)}")
        resp = _post(client, url, {**base, "messages": text}, headers)
        if resp.status_code >= 500 or resp.status_code in _NOT_ANSWERED:
            raise ProbeUnanswered(f"{url}: the probe request failed: {_describe(resp)}")
        if resp.status_code != 200:
            raise ProbeError(f"{url}: even a plain text request is refused: {_describe(resp)}")
    extra = video_fields(4, _PROBE_FPS) if vllm_fields else {}
    jpegs = _probe_frames(4)
    attempts = ([("video", [video_part(jpegs)])] if want_video else []) + [("images", image_parts(jpegs[:1]))]
    last = ""
    for kind, media in attempts:
        msgs = [{"role": "user", "content": [*media, {"type": "text", "text": PROBE_TEXT}]}]
        fields = extra if kind == "video" else {}
        for with_lp in (True, False):  # some endpoints refuse log-probabilities with media
            resp = _post(client, url, {**base, "messages": msgs, **(lp if with_lp else {}), **fields}, headers)
            if resp.status_code == 200:
                return ServerCaps(logprobs=with_lp and _has_logprobs(resp.json()), video=kind == "video",
                                  vllm_fields=vllm_fields)
            last = f"{kind}: {_describe(resp)}"
            if resp.status_code >= 500 or resp.status_code in _NOT_ANSWERED:
                raise ProbeUnanswered(f"{url}: the probe request failed: {_describe(resp)}")
    raise ProbeError(f"{url}: the server takes neither a video nor an image part ({last})")


def prompt_tokens(client: httpx.Client, url: str, model: str, headers: dict, n_frames: int,
                  vllm_fields: bool) -> int | None:
    """``usage.prompt_tokens`` of a ``n_frames``-frame probe video (None when the server reports none)."""
    body = {"model": model, "temperature": 0, "max_tokens": 1,
            "messages": [{"role": "user", "content": [video_part(_probe_frames(n_frames)),
                                                      {"type": "text", "text": PROBE_TEXT}]}],
            **(video_fields(n_frames, _PROBE_FPS) if vllm_fields else {})}
    resp = _post(client, url, body, headers)
    if resp.status_code != 200:
        raise ProbeError(f"{url}: a {n_frames}-frame probe video was refused: {_describe(resp)}")
    try:
        n = resp.json()["usage"]["prompt_tokens"]
    except (KeyError, TypeError, ValueError):
        return None
    return int(n) if isinstance(n, int | float) and n > 0 else None


def frames_kept(client: httpx.Client, url: str, model: str, headers: dict, n_frames: int,
                vllm_fields: bool) -> float | None:
    """About how many of ``n_frames`` frames sent as one video the server keeps (None: no usage counts).

    From the prompt tokens of 4-, 8- and ``n_frames``-frame videos: ``4 + (t_n - t_4) / per_frame`` with
    ``per_frame = (t_8 - t_4) / 4`` (frame counts rounded up to the temporal patch of 2, as Qwen does).
    """
    t4 = prompt_tokens(client, url, model, headers, 4, vllm_fields)
    t8 = prompt_tokens(client, url, model, headers, 8, vllm_fields)
    tn = prompt_tokens(client, url, model, headers, n_frames, vllm_fields)
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
