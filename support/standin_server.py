"""A stand-in OpenAI-compatible chat server on 127.0.0.1, answering in vLLM's exact response format.

Not a test file: tests import :class:`StandinServer`; the fault-injection script runs it as
``python support/standin_server.py --port N`` and steers it over HTTP (``/_standin/*`` endpoints).

Answers are deterministic. A request is "abnormal" with probability ``p`` from :meth:`StandinServer.score`
(the marker ``ABNORMAL`` in the text gives 0.95; else the mean brightness of the first frame, through a
logistic around ``brightness_threshold``; text-only without the marker gives 0.1). The reply is
``"Abnormal"`` if ``p > 0.5`` else ``"Normal"``, with top-logprobs ``log(ANSWER_MASS*p)`` and
``log(ANSWER_MASS*(1-p))`` for the two words plus filler tokens sharing the rest. Prompts containing
``"Group"`` get ``"Group: ...\\nReason: ..."`` text.

Faults (one-shot queue or per-request rule): ``"429"``/``"500"``/``"503"``/``"400"`` status codes
(429/503 carry ``Retry-After``), ``"garbage"`` (200 with a non-JSON body), ``"close"`` (drop the
connection without answering), ``"hang"`` (answer normally once ``hang_release`` is set, or after ``hang_s``).

Server kinds (:meth:`StandinServer.set_mode`, ``MODES``), as OpenAI-compatible servers differ:
``vllm`` (default: vLLM 0.32 started with ``--trust-request-mm-kwargs``: log-probabilities, ``video_url`` parts,
vLLM's fields; a ``video/jpeg`` URL keeps its first ``video_num_frames`` frames (32, vLLM's default) unless
the request's ``media_io_kwargs.video.num_frames`` says otherwise; ``media_io_kwargs.video.fps`` sets the time
positions, so two rates give different log-probabilities, here those of the filler tokens),
``untrusted_vllm`` (the same server without that flag: 400 to either field), ``old_vllm`` (ignores
``media_io_kwargs``: truncates; its timing comes from ``mm_processor_kwargs.fps``), ``no_logprobs`` (ignores
``logprobs``, like ``transformers serve``), ``strict`` (422 "Unexpected fields in the request" to fields
outside the OpenAI schema), ``transformers_serve`` (both), ``no_video_decoder`` (``transformers serve`` where
its video decoder cannot load: 500 to every ``video_url`` part), ``no_video`` (400 to ``video_url`` parts),
``no_logprobs_with_media`` (400 to ``logprobs`` with image or video input, like some hosted endpoints).
``usage.prompt_tokens`` counts the frames kept; ``GET /version`` answers in the vLLM modes. Probe requests
(header ``X-Askhint-Probe``) are answered without faults (unless ``fault_probes``) and counted in
``probe_count`` only, so request counts and the log hold the scoring requests.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import re
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from PIL import Image

ABNORMAL_MARKER = "ABNORMAL"
ANSWER_MASS = 0.98  # probability on "Normal"/"Abnormal" together; the fillers share the rest
FILLERS = (
    "The", "This", "Based", "In", "It", "Yes", "There", "I", "Un", "Event", "Answer", "1", ".", "\n",
    "Video", "Frame", "Scene", "Result", "Label", "Class", "Output", "Final",
)  # fmt: skip
FAULT_KINDS = ("429", "500", "503", "400", "garbage", "close", "hang")
UNTRUSTED_MESSAGE = ("Per-request media_io_kwargs and mm_processor_kwargs are disabled by default; start the server "
                     "with --trust-request-mm-kwargs to allow them.")  # the gist of vLLM 0.32's 400
STANDIN_VERSION = "0.32.0+standin"
OPENAI_FIELDS = frozenset({
    "model", "messages", "temperature", "max_tokens", "max_completion_tokens", "logprobs", "top_logprobs",
    "stream", "stream_options", "top_p", "n", "stop", "seed", "frequency_penalty", "presence_penalty",
    "response_format", "tools", "tool_choice", "user", "logit_bias",
})  # fmt: skip
MODE_KNOBS = ("logprobs_supported", "strict_fields", "video_parts", "honour_media_io_kwargs", "media_logprobs",
              "trust_request_kwargs", "video_decoder", "timing_field")
MODES: dict[str, dict[str, bool | str]] = {
    "vllm": {},
    "untrusted_vllm": {"trust_request_kwargs": False},
    "old_vllm": {"honour_media_io_kwargs": False, "timing_field": "mm_processor_kwargs"},
    "no_logprobs": {"logprobs_supported": False},
    "strict": {"strict_fields": True},
    "transformers_serve": {"logprobs_supported": False, "strict_fields": True},
    "no_video_decoder": {"logprobs_supported": False, "strict_fields": True, "video_decoder": False},
    "no_video": {"video_parts": False},
    "no_logprobs_with_media": {"media_logprobs": False},
}


def _first_frame(body: dict) -> np.ndarray | None:
    """Decode the first image (``image_url`` or the first frame of a ``video/jpeg`` ``video_url``)."""
    for part in _media_parts(body):
        url = part.get("image_url", part.get("video_url", {})).get("url", "")
        if not url.startswith("data:"):
            continue
        b64 = url.split(",", 1)[1].split(",", 1)[0]
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))
    return None


def _media_parts(body: dict) -> list[dict]:
    parts = []
    for m in body.get("messages") or []:
        if isinstance(m.get("content"), list):
            parts += [p for p in m["content"] if p.get("type") in ("image_url", "video_url")]
    return parts


def _texts(body: dict) -> str:
    out = []
    for m in body.get("messages") or []:
        c = m.get("content")
        if isinstance(c, str):
            out.append(c)
        elif isinstance(c, list):
            out += [p.get("text", "") for p in c if p.get("type") == "text"]
    return "\n".join(out)


def _count_frames(body: dict, video_num_frames: int | None = None) -> int:
    """Frames in the body; a video part counts at most ``video_num_frames`` (-1 or None: all)."""
    n = 0
    for p in _media_parts(body):
        if p["type"] == "image_url":
            n += 1
        else:
            sent = len(p["video_url"]["url"].split(",", 1)[1].split(","))
            n += sent if video_num_frames is None or video_num_frames < 0 else min(sent, video_num_frames)
    return n


def _lp_entry(token: str, logprob: float) -> dict:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


class StandinServer:
    """Threaded stand-in server. Use ``with StandinServer() as s: s.base_url`` or ``start()``/``stop()``."""

    def __init__(
        self,
        port: int = 0,
        model: str = "Qwen/Qwen2.5-VL-7B-Instruct",
        api_key: str | None = None,
        brightness_threshold: float = 128.0,
        abnormal_token: str = "Abnormal",
    ) -> None:
        self.port = port
        self.model = model
        self.api_key = api_key  # when set, requests without "Bearer <api_key>" get 401
        self.brightness_threshold = brightness_threshold
        self.abnormal_token = abnormal_token  # first token of "Abnormal" (a tokenizer may split it)
        self.delay_s = 0.0  # added to every request
        # answer like a GPU server: each request holds one of ``slots`` (0: unlimited) for ``service_s``
        self.service_s = 0.0
        self.slots = 0
        self._gpu: tuple[int, threading.Semaphore] | None = None
        self.hang_s = 5.0
        self.hang_release = threading.Event()  # set: "hang" faults answer now (tests hold them on it, no clock)
        self.retry_after: float | None = 0.0  # Retry-After on 429/503; None omits the header
        self.fault_rule: Callable[[dict], str | None] | None = None  # per-request fault by body
        self.predicate: Callable[[dict, np.ndarray | None], bool] | None = None  # overrides score
        self.log: list[dict] = []
        self.request_count = 0
        self.probe_count = 0
        self.mode = "vllm"
        self.fault_probes = False  # probe requests meet the faults too (a rate-limited endpoint)
        self.version_busy = 0  # GET /version answers 503 this many times first
        self.video_num_frames = 32  # vLLM's VideoMediaIO default
        self.set_mode("vllm")
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def inject(self, kind: str, n: int = 1) -> None:
        """Make the next ``n`` chat requests fail with ``kind`` (one of ``FAULT_KINDS``)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {FAULT_KINDS}")
        with self._lock:
            self._faults.extend([kind] * n)

    def set_mode(self, mode: str) -> None:
        """Behave like one kind of server (``MODES``)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}")
        self.mode = mode
        self.logprobs_supported = self.video_parts = self.honour_media_io_kwargs = self.media_logprobs = True
        self.trust_request_kwargs = self.video_decoder = True
        self.timing_field = "media_io_kwargs"
        self.strict_fields = False
        for k, v in MODES[mode].items():
            setattr(self, k, v)

    def reset(self) -> None:
        """Clear faults, knobs, counters and the log; back to vLLM mode."""
        with self._lock:
            self._faults.clear()
            self.log.clear()
            self.request_count = self.max_in_flight = self.probe_count = 0
        self.delay_s, self.fault_rule, self.predicate, self.retry_after = 0.0, None, None, 0.0
        self.fault_probes = False
        self.version_busy = 0
        self.hang_release.clear()
        self.video_num_frames = 32
        self.set_mode("vllm")

    def stats(self) -> dict:
        with self._lock:
            return {
                "request_count": self.request_count,
                "probe_count": self.probe_count,
                "mode": self.mode,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "pending_faults": list(self._faults),
            }

    def start(self) -> StandinServer:
        server = self

        class Handler(_Handler):
            standin = server

        self._httpd = _QuietServer(("127.0.0.1", self.port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve(self) -> None:
        """Hold one of ``slots`` for ``service_s`` (a GPU batch slot), waiting for one when all are busy."""
        with self._lock:
            if self.slots > 0 and (self._gpu is None or self._gpu[0] != self.slots):
                self._gpu = (self.slots, threading.Semaphore(self.slots))
            gpu = self._gpu[1] if self.slots > 0 and self._gpu else None
        if gpu is None:
            time.sleep(self.service_s)
            return
        with gpu:
            time.sleep(self.service_s)

    # -- answers ----------------------------------------------------------------------------------

    def score(self, body: dict, frame: np.ndarray | None) -> float:
        """Probability of "Abnormal" for a request."""
        if self.predicate is not None:
            return 0.9 if self.predicate(body, frame) else 0.1
        if ABNORMAL_MARKER in _texts(body):
            return 0.95
        if frame is None:
            return 0.1
        z = (float(frame.mean()) - self.brightness_threshold) / 16.0
        return min(0.99, max(0.01, 1.0 / (1.0 + math.exp(-z))))

    def refusal(self, body: dict) -> tuple[int, dict] | None:
        """The error a server of this mode gives ``body`` (None: it answers)."""
        if self.strict_fields and set(body) - OPENAI_FIELDS:
            extra = sorted(set(body) - OPENAI_FIELDS)
            return 422, {"detail": f"Unexpected fields in the request: {set(extra)}"}
        if not self.trust_request_kwargs and any(k in body for k in ("media_io_kwargs", "mm_processor_kwargs")):
            return 400, _error(UNTRUSTED_MESSAGE, 400)
        media = _media_parts(body)
        if not self.video_decoder and any(p["type"] == "video_url" for p in media):
            return 500, _error("torchcodec could not load libavutil: cannot decode the video", 500,
                               "InternalServerError")
        if not self.video_parts and any(p["type"] == "video_url" for p in media):
            return 400, _error("video_url content parts are not supported", 400)
        if not self.media_logprobs and media and body.get("logprobs"):
            return 400, _error("logprobs are not supported with image or video input", 400)
        return None

    def kept_video_frames(self, body: dict) -> int:
        """How many frames of a video/jpeg URL this server keeps (-1: all)."""
        per_request = ((body.get("media_io_kwargs") or {}).get("video") or {}).get("num_frames")
        if self.honour_media_io_kwargs and isinstance(per_request, int):
            return per_request
        return self.video_num_frames

    def video_fps(self, body: dict) -> float | None:
        """The frame rate that sets the time positions of a video request (None: the server's default)."""
        if not any(p["type"] == "video_url" for p in _media_parts(body)):
            return None
        if self.timing_field == "media_io_kwargs":
            fps = ((body.get("media_io_kwargs") or {}).get("video") or {}).get("fps")
        elif self.timing_field == "mm_processor_kwargs":
            fps = (body.get("mm_processor_kwargs") or {}).get("fps")
        else:  # a server that takes the fields but times every video at its own rate
            fps = None
        return float(fps) if isinstance(fps, int | float) and fps > 0 else None

    def completion(self, body: dict) -> dict:
        """The vLLM-format chat.completion for a valid request body."""
        frame = _first_frame(body)
        text_in = _texts(body)
        p = self.score(body, frame)
        abnormal = p > 0.5
        if "Group" in text_in:
            label = "Abnormal" if abnormal else "Normal"
            text = f"Group: G{1 if abnormal else 0} ({label})\nReason: stand-in reasoning for a {label} clip."
            tokens = re.findall(r"\s*\S+|\s+", text)
            first_top = [(tokens[0], -0.01), ("Normal", math.log(1 - p) - 3), ("Abnormal", math.log(p) - 3)]
        else:
            text = "Abnormal" if abnormal else "Normal"
            tokens = [self.abnormal_token, text[len(self.abnormal_token) :]] if abnormal else [text]
            tokens = [t for t in tokens if t]
            first_top = [(self.abnormal_token, math.log(p * ANSWER_MASS)), ("Normal", math.log((1 - p) * ANSWER_MASS))]
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        finish = "stop"
        if len(tokens) > max_tokens:
            tokens, finish = tokens[:max_tokens], "length"
            text = "".join(tokens)
        logprobs = None
        if body.get("logprobs") and self.logprobs_supported:
            k = int(body.get("top_logprobs") or 0)
            first_top.sort(key=lambda t: -t[1])
            fps = self.video_fps(body)  # time positions move the distribution a little (the fillers' share here)
            shift = 0.01 * math.log2(fps / 2.0) if fps else 0.0
            fillers = [(f, math.log((1 - ANSWER_MASS) / 2 ** (i + 1)) + shift) for i, f in enumerate(FILLERS)]
            top1 = (first_top + fillers)[:k]
            content = [{**_lp_entry(tokens[0], first_top[0][1]), "top_logprobs": [_lp_entry(*t) for t in top1]}]
            for t in tokens[1:]:
                content.append({**_lp_entry(t, -0.01), "top_logprobs": [_lp_entry(t, -0.01)][:k]})
            logprobs = {"content": content}
        n_frames = _count_frames(body, self.kept_video_frames(body))
        prompt_tokens = len(text_in) // 4 + 20 + 64 * n_frames
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "reasoning_content": None, "tool_calls": []},
                    "logprobs": logprobs,
                    "finish_reason": finish,
                    "stop_reason": None,
                }
            ],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "total_tokens": prompt_tokens + len(tokens),
                "completion_tokens": len(tokens),
                "prompt_tokens_details": None,
            },
            "prompt_logprobs": None,
            "kv_transfer_params": None,
        }

    def models(self) -> dict:
        return {
            "object": "list",
            "data": [
                {
                    "id": self.model,
                    "object": "model",
                    "created": int(time.time()),
                    "owned_by": "vllm",
                    "root": self.model,
                    "parent": None,
                    "max_model_len": 32768,
                    "permission": [],
                }
            ],
        }


def _error(message: str, code: int, kind: str = "BadRequestError") -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _summary(body: dict) -> dict:
    """The body with data URIs shortened, for the request log."""

    def short(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: short(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [short(v) for v in obj]
        if isinstance(obj, str) and obj.startswith("data:"):
            return f"{obj[:32]}...<{len(obj)} chars>"
        return obj

    return short(body)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 drops connections under load (the client sees a timeout)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away (a timed-out request); report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    standin: StandinServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        s = self.standin
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, s.models())
        elif self.path == "/_standin/stats":
            self._send(200, s.stats())
        elif self.path == "/version" and not s.strict_fields:
            with s._lock:
                busy, s.version_busy = s.version_busy > 0, max(0, s.version_busy - 1)
            if busy:  # a server too busy to answer at once
                self._send(503, _error("server overloaded", 503, "ServiceUnavailableError"), {"Retry-After": "0"})
            else:
                self._send(200, {"version": STANDIN_VERSION})
        elif self.path in ("/health", "/ping"):
            self._send(200, {})
        else:
            self._send(404, _error(f"no route {self.path}", 404, "NotFoundError"))

    def do_POST(self) -> None:
        s = self.standin
        raw = self._body()
        if self.path.startswith("/_standin/"):
            return self._control(raw)
        if self.path != "/v1/chat/completions":
            return self._send(404, _error(f"no route {self.path}", 404, "NotFoundError"))
        if self.headers.get("X-Askhint-Probe"):
            return self._probe(raw)
        with s._lock:
            s.request_count += 1
            s.in_flight += 1
            s.max_in_flight = max(s.max_in_flight, s.in_flight)
        try:
            self._chat(raw)
        finally:
            with s._lock:
                s.in_flight -= 1

    def _chat(self, raw: bytes) -> None:
        s = self.standin
        try:
            body = json.loads(raw)
            assert isinstance(body, dict)
        except (ValueError, AssertionError):
            return self._send(400, _error("request body is not a JSON object", 400))
        entry = {
            "t": time.time(),
            "headers": dict(self.headers.items()),
            "body": _summary(body),
            "n_frames": _count_frames(body),
            "text": _texts(body),
        }
        with s._lock:
            s.log.append(entry)
        if s.api_key is not None and self.headers.get("Authorization") != f"Bearer {s.api_key}":
            return self._send(401, {"error": "Unauthorized"})
        with s._lock:
            fault = s._faults.popleft() if s._faults else None
        if fault is None and s.fault_rule is not None:
            fault = s.fault_rule(body)
        entry["fault"] = fault
        if s.delay_s:
            time.sleep(s.delay_s)
        if fault is None and s.service_s > 0:
            s.serve()
        retry = {} if s.retry_after is None else {"Retry-After": f"{s.retry_after:g}"}
        if fault == "429":
            return self._send(429, _error("rate limited", 429, "RateLimitError"), retry)
        if fault == "503":
            return self._send(503, _error("server overloaded", 503, "ServiceUnavailableError"), retry)
        if fault == "500":
            return self._send(500, _error("internal error", 500, "InternalServerError"))
        if fault == "400":
            return self._send(400, _error("bad request (injected)", 400))
        if fault == "garbage":
            return self._send(200, b"<html>502 Bad Gateway</html>\x00{not json")
        if fault == "close":
            self.close_connection = True
            return None
        if fault == "hang":
            s.hang_release.wait(s.hang_s)
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return self._send(400, _error("messages: field required", 400))
        if body.get("model") != s.model:
            return self._send(404, _error(f"The model `{body.get('model')}` does not exist.", 404, "NotFoundError"))
        refused = s.refusal(body)
        if refused:
            return self._send(*refused)
        try:
            payload = s.completion(body)
        except Exception as e:  # a malformed part, an undecodable image
            return self._send(400, _error(f"{type(e).__name__}: {e}", 400))
        self._send(200, payload)

    def _probe(self, raw: bytes) -> None:
        """A probe request: answered by the mode's rules, without faults, outside the counts and the log."""
        s = self.standin
        with s._lock:
            s.probe_count += 1
        if s.api_key is not None and self.headers.get("Authorization") != f"Bearer {s.api_key}":
            return self._send(401, {"error": "Unauthorized"})
        body = json.loads(raw)
        if s.fault_probes:
            with s._lock:
                fault = s._faults.popleft() if s._faults else None
            fault = fault or (s.fault_rule(body) if s.fault_rule is not None else None)
            if fault == "429":
                retry = {} if s.retry_after is None else {"Retry-After": f"{s.retry_after:g}"}
                return self._send(429, _error("rate limited", 429, "RateLimitError"), retry)
            if fault in ("500", "503"):
                return self._send(int(fault), _error("server error (injected)", int(fault)))
        if body.get("model") != s.model:
            return self._send(404, _error(f"The model `{body.get('model')}` does not exist.", 404, "NotFoundError"))
        refused = s.refusal(body)
        if refused:
            return self._send(*refused)
        return self._send(200, s.completion(body))

    def _control(self, raw: bytes) -> None:
        s = self.standin
        try:
            cmd = json.loads(raw or b"{}")
            if self.path == "/_standin/inject":
                s.inject(str(cmd["kind"]), int(cmd.get("n", 1)))
            elif self.path == "/_standin/config":
                for key in ("delay_s", "hang_s", "retry_after", "brightness_threshold", "abnormal_token",
                            "video_num_frames", "service_s", "slots", "fault_probes"):
                    if key in cmd:
                        setattr(s, key, cmd[key])
                if "mode" in cmd:
                    s.set_mode(str(cmd["mode"]))
            elif self.path == "/_standin/reset":
                s.reset()
            else:
                return self._send(404, _error(f"no route {self.path}", 404, "NotFoundError"))
        except (ValueError, KeyError, TypeError) as e:
            return self._send(400, _error(str(e), 400))
        self._send(200, s.stats())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--model", default="Qwen/Qwen2.5-VL-7B-Instruct")
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--service-s", type=float, default=0.0, help="seconds each request holds a slot (like a GPU)")
    ap.add_argument("--slots", type=int, default=0, help="requests served at once (0: unlimited)")
    args = ap.parse_args(argv)
    server = StandinServer(port=args.port, model=args.model, api_key=args.api_key)
    server.service_s, server.slots = args.service_s, args.slots
    server.start()
    print(f"standin server on {server.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
