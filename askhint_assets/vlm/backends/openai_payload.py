"""The OpenAI chat-completions body of a request: messages, frames as JPEG parts, decoding fields (pure).

Frames travel inside the first user message, before its text, as one ``video_url`` part (``video`` mode) or
one ``image_url`` part per frame (``images`` mode); see :mod:`.openai_backend` for when each is used. Nothing
here sends anything: :class:`~.openai_backend.OpenAIBackend` and :mod:`.server_probe` build their bodies here.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image

from askhint_assets.vlm.types import VLMRequest

VLLM_FIELDS = ("media_io_kwargs", "mm_processor_kwargs")
"""The per-request fields vLLM reads for a video (sent where a server accepts them)."""
VIDEO_FAMILIES = frozenset({"qwen2_5_vl"})  # "auto" sends these families' frames as one video part


def resolve_video_mode(video_mode: str, family: str) -> str:
    """``video``/``images``; ``auto`` is ``video`` for the Qwen2.5-VL family, else ``images``."""
    if video_mode not in ("auto", "images", "video"):
        raise ValueError(f"video_mode must be 'auto', 'images' or 'video', got {video_mode!r}")
    if video_mode == "auto":
        return "video" if family in VIDEO_FAMILIES else "images"
    return video_mode


def encode_jpeg_b64(frame: np.ndarray, quality: int = 90) -> str:
    """Base64 of one ``(H, W, 3)`` uint8 RGB frame as JPEG."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="JPEG", quality=quality)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def check_frames(frames: np.ndarray) -> None:
    """Raise ValueError unless ``frames`` is a non-empty ``(T, H, W, 3)`` uint8 array."""
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {getattr(frames, 'shape', type(frames))}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    if frames.shape[0] == 0:
        raise ValueError("frames is empty (T == 0)")


def video_part(jpegs: list[str]) -> dict:
    return {"type": "video_url", "video_url": {"url": "data:video/jpeg;base64," + ",".join(jpegs)}}


def image_parts(jpegs: list[str]) -> list[dict]:
    return [{"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{j}"}} for j in jpegs]


def video_fields(num_frames: int, fps: float, fields: tuple[str, ...] = VLLM_FIELDS) -> dict:
    """The per-request fields (those in ``fields``) for one video of ``num_frames`` frames at ``fps``.

    ``media_io_kwargs.video`` is read by vLLM's ``VideoMediaIO`` for a ``video/jpeg`` URL: ``num_frames``
    (how many of the sent frames to keep; the count keeps all) and ``fps`` (the video metadata's rate, which
    sets Qwen2.5-VL's time positions in vLLM 0.32 with transformers 5). ``mm_processor_kwargs.fps`` is what
    older vLLM releases read.
    """
    out = {"media_io_kwargs": {"video": {"num_frames": int(num_frames), "fps": float(fps)}},
           "mm_processor_kwargs": {"fps": float(fps)}}
    return {k: v for k, v in out.items() if k in fields}


def chat_body(request: VLMRequest, *, model: str, mode: str, jpeg_quality: int, max_new_tokens: int,
              top_logprobs: int, logprobs: bool = True, fields: tuple[str, ...] = VLLM_FIELDS) -> dict[str, Any]:
    """The JSON body of the chat-completions call for ``request`` (frames JPEG-encoded, sent as ``mode``).

    ``logprobs``: ask for the first token's ``top_logprobs`` when the request has choices; ``fields``: the
    per-request video fields to send (a video only). ``max_new_tokens`` applies unless the request sets its own.
    """
    media: list[dict[str, Any]] = []
    if request.frames is not None:
        check_frames(request.frames)
        jpegs = [encode_jpeg_b64(f, jpeg_quality) for f in request.frames]
        media = image_parts(jpegs) if mode == "images" else [video_part(jpegs)]
    messages: list[dict[str, Any]] = []
    for m in request.messages:
        if media and m.role == "user":
            messages.append({"role": m.role, "content": [*media, {"type": "text", "text": m.text}]})
            media = []
        else:
            messages.append({"role": m.role, "content": m.text})
    if media:
        raise ValueError("request has frames but no user message to attach them to")
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "temperature": 0,
        "max_tokens": int(request.max_new_tokens or max_new_tokens),
    }
    if request.choices and logprobs:
        body["logprobs"] = True
        body["top_logprobs"] = top_logprobs
    if request.frames is not None and mode == "video":
        body.update(video_fields(len(request.frames), request.frames_fps, fields))
    return body
