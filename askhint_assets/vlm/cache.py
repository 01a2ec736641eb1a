"""The content address of a model request, the key of the response cache.

A hash of everything that determines the answer: the frames' content key, the full message text, the
answer choices, the decoding settings and the backend's fingerprint (model identity + generation settings).
The pipeline's runner (:mod:`askhint_assets.pipeline.runner`) answers and stores requests under it.
"""

from __future__ import annotations

from askhint_assets.hashing import hash_obj
from askhint_assets.vlm.types import VLMRequest


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
