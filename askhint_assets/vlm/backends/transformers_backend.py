"""A local Hugging Face transformers backend for Qwen2.5-VL checkpoints (the 7B or the smoke model).

Prompts come from ``families.render_prompt``; video from ``preprocess.preprocess_video`` (checked against
golden fixtures of the official ``Qwen2VLVideoProcessor``: ``tests/fixtures/processor/``).
Decoding is greedy. Requests are batched (left padding) when they share a video grid; text-only
requests (``frames=None``) batch together.

``choice_logprobs``: when the choices' first tokens differ, the log-softmax over the whole
vocabulary at the first answer position, read at each choice's first token (values need not sum
to one; ``extra["choice_mass"]`` is their total probability). When first tokens coincide, the sum of
the log-probabilities of each choice's full token sequence under teacher forcing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from askhint_assets.errors import InputError
from askhint_assets.hashing import hash_file, hash_obj
from askhint_assets.vlm import families
from askhint_assets.vlm.model_source import resolve_model
from askhint_assets.vlm.preprocess import (
    VIDEO_MAX_PIXELS,
    VIDEO_MIN_PIXELS,
    preprocess_video,
)
from askhint_assets.vlm.types import VLMRequest, VLMResponse

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_SMALL_WEIGHTS = 64 << 20  # weight files up to this size are content-hashed in the fingerprint


def pixel_bounds(model_path: str | Path) -> tuple[int, int]:
    """Video pixel bounds per frame, found as transformers' ``AutoVideoProcessor`` finds them.

    ``video_preprocessor_config.json``, else ``preprocessor_config.json`` (the released Qwen2.5-VL
    checkpoints have only this one: its ``min_pixels`` 3136 / ``max_pixels`` 12845056 then bound the video
    frames too, checked against the official processor in ``tests/unit/test_processor_fixtures.py``), else
    the video processor's class defaults.
    """
    lo, hi = VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS
    for name in ("video_preprocessor_config.json", "preprocessor_config.json"):
        f = Path(model_path) / name
        if f.is_file():
            cfg = json.loads(f.read_text())
            size = cfg.get("size") or {}
            lo = int(cfg.get("min_pixels") or size.get("shortest_edge") or lo)
            hi = int(cfg.get("max_pixels") or size.get("longest_edge") or hi)
            break
    return lo, hi


def weights_identity(model_path: str | Path) -> str:
    """Hash of the weight files: content for small files, name and size for large ones (documented)."""
    parts = []
    for p in sorted(Path(model_path).glob("*.safetensors")) + sorted(Path(model_path).glob("*.bin")):
        size = p.stat().st_size
        parts.append([p.name, size, hash_file(p) if size <= _SMALL_WEIGHTS else None])
    return hash_obj(parts)


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """transformers' weight-loading progress bars off while loading, back as they were after."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class TransformersBackend:
    """``VLMBackend`` over ``Qwen2_5_VLForConditionalGeneration``; the model loads on first use."""

    backend_name = "transformers"

    def __init__(
        self,
        model_path: str,
        family: str = "qwen2_5_vl",
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 4,
        max_new_tokens: int = 64,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        revision: str | None = None,
    ) -> None:
        families.check_family(family)
        if family != "qwen2_5_vl":
            raise InputError(f"the transformers backend runs qwen2_5_vl only, not {family!r}; use vllm",
                             field="family")
        if dtype not in _DTYPES:
            raise InputError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}", field="dtype")
        if batch_size < 1 or max_new_tokens < 1:
            raise InputError("batch_size and max_new_tokens must be positive", field="batch_size")
        self.source = resolve_model(str(model_path), revision)  # a folder, or a Hub id from the HF cache
        self.model_path = self.source.path
        self.model_name = self.source.name
        self.family, self.device, self.dtype = family, device, dtype
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        lo, hi = pixel_bounds(self.model_path)
        self.min_pixels = int(min_pixels) if min_pixels is not None else lo
        self.max_pixels = int(max_pixels) if max_pixels is not None else hi
        self._model = None
        self._tok = None

    # ------------------------------------------------------------------ identity

    def fingerprint(self) -> dict:
        """Model identity and decoding settings; no weights are loaded."""
        cfg = self.model_path / "config.json"
        if not cfg.is_file():
            raise InputError("no config.json: not a model folder", path=self.model_path)
        return {
            "backend": self.backend_name,
            "model": self.model_name,
            **self.source.identity(),
            "family": self.family,
            "config": hash_file(cfg),
            "weights": weights_identity(self.model_path),
            "dtype": self.dtype,
            "greedy": True,
            "max_new_tokens": self.max_new_tokens,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "video_processor": "numpy-uint8-resize",
        }

    # ------------------------------------------------------------------ loading

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

        if not (self.model_path / "config.json").is_file():
            raise InputError("no config.json: not a model folder", path=self.model_path)
        self._tok = AutoTokenizer.from_pretrained(self.model_path)
        t0 = time.perf_counter()
        with _quiet_progress():  # a bar per shard in every run's output; one log line says the same
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(self.model_path, dtype=_DTYPES[self.dtype])
        log.info("loaded %s (%s) in %.1f s", self.model_name, self.dtype, time.perf_counter() - t0)
        self._model = model.to(self.device).eval()
        cfg = self._model.config
        self._video_id = cfg.video_token_id
        self._pad_id = self._tok.pad_token_id if self._tok.pad_token_id is not None else cfg.text_config.eos_token_id
        eos = {self._tok.convert_tokens_to_ids(families.QWEN_IM_END),
               self._tok.convert_tokens_to_ids(families.QWEN_ENDOFTEXT)}
        self._eos = sorted(i for i in eos if i is not None and i != self._tok.unk_token_id)

    # ------------------------------------------------------------------ preparing

    def _video(self, req: VLMRequest) -> dict:
        frames = np.asarray(req.frames)
        return preprocess_video(frames, req.frames_fps, min_pixels=self.min_pixels, max_pixels=self.max_pixels)

    def _prepare(self, req: VLMRequest) -> dict:
        """Token ids and video inputs of one request."""
        video = self._video(req) if req.frames is not None else None
        placeholder = families.video_placeholder(self.family) if video is not None else None
        text = families.render_prompt(self.family, req.messages, placeholder)
        if video is not None:
            text = families.expand_video_pads(text, video["num_video_tokens"])
        ids = self._tok.encode(text, add_special_tokens=False)
        grid = tuple(int(x) for x in video["video_grid_thw"][0]) if video is not None else None
        return {"ids": ids, "video": video, "grid": grid}

    def _choice_ids(self, choices: tuple[str, ...]) -> list[list[int]]:
        out = [self._tok.encode(c, add_special_tokens=False) for c in choices]
        if any(not ids for ids in out):
            raise InputError(f"a choice tokenizes to nothing: {choices}", field="choices")
        return out

    def _batch_inputs(self, preps: list[dict], suffixes: list[list[int]] | None = None) -> dict:
        """Left-padded tensors for ``preps`` (each prompt followed by its suffix, if given)."""
        seqs = [p["ids"] + (suffixes[i] if suffixes else []) for i, p in enumerate(preps)]
        n = max(map(len, seqs))
        ids = torch.full((len(seqs), n), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), n), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, n - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[i, n - len(s):] = 1
        out = {"input_ids": ids, "attention_mask": mask}
        videos = [p["video"] for p in preps if p["video"] is not None]
        if videos:
            if len(videos) != len(preps):
                raise ValueError("a batch mixes text-only and video requests")
            dt = _DTYPES[self.dtype]
            out["pixel_values_videos"] = torch.from_numpy(
                np.concatenate([v["pixel_values_videos"] for v in videos])).to(dt)
            out["video_grid_thw"] = torch.from_numpy(np.concatenate([v["video_grid_thw"] for v in videos]))
            out["second_per_grid_ts"] = torch.tensor([v["second_per_grid_ts"][0] for v in videos])
            out["mm_token_type_ids"] = (ids == self._video_id).int() * 2
        return {k: v.to(self.device) for k, v in out.items()}

    # ------------------------------------------------------------------ running

    def generate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
        """Answer every request, in order; a failed request gives ``ok=False`` with ``error``."""
        if not requests:
            return []
        self._load()
        out: list[VLMResponse | None] = [None] * len(requests)
        groups: dict[object, list[tuple[int, dict]]] = {}
        for i, req in enumerate(requests):
            t0 = time.perf_counter()
            try:
                prep = self._prepare(req)
            except Exception as e:  # bad frames or messages: this request only
                out[i] = VLMResponse(text="", ok=False, error=f"{type(e).__name__}: {e}")
                continue
            prep["prep_s"] = time.perf_counter() - t0
            groups.setdefault(prep["grid"], []).append((i, prep))
        for members in groups.values():
            for k in range(0, len(members), self.batch_size):
                chunk = members[k: k + self.batch_size]
                self._run_chunk(requests, chunk, out)
        return [r if r is not None else VLMResponse(text="", ok=False, error="not answered") for r in out]

    def _run_chunk(self, requests: list[VLMRequest], chunk: list[tuple[int, dict]],
                   out: list[VLMResponse | None]) -> None:
        try:
            results = self._answer([requests[i] for i, _ in chunk], [p for _, p in chunk])
        except Exception as e:
            if len(chunk) == 1:
                i = chunk[0][0]
                out[i] = VLMResponse(text="", ok=False, error=f"{type(e).__name__}: {e}")
                return
            for item in chunk:  # retry one by one so one bad request cannot sink the others
                self._run_chunk(requests, [item], out)
            return
        for (i, _), r in zip(chunk, results, strict=True):
            out[i] = r

    @torch.no_grad()
    def _answer(self, reqs: list[VLMRequest], preps: list[dict]) -> list[VLMResponse]:
        t0 = time.perf_counter()
        limits = [max(1, min(r.max_new_tokens, self.max_new_tokens)) for r in reqs]
        inputs = self._batch_inputs(preps)
        gen = self._model.generate(
            **inputs, max_new_tokens=max(limits), do_sample=False, num_beams=1, temperature=None,
            top_p=None, top_k=None, repetition_penalty=1.0, eos_token_id=self._eos, pad_token_id=self._pad_id,
            output_logits=True, return_dict_in_generate=True,
        )
        prompt_len = inputs["input_ids"].shape[1]
        first = torch.log_softmax(gen.logits[0].float(), dim=-1)
        choice_lp = self._choice_logprobs(reqs, preps, first)
        elapsed = time.perf_counter() - t0
        results = []
        for b, prep in enumerate(preps):
            new = gen.sequences[b, prompt_len:].tolist()[: limits[b]]
            cut = next((j for j, t in enumerate(new) if t in self._eos), len(new))
            text = self._tok.decode(new[:cut], skip_special_tokens=True).strip()
            lp = choice_lp[b]
            extra = {
                "prompt_tokens": len(prep["ids"]),
                "new_tokens": cut,
                "finished": cut < len(new),
                "batch_size": len(reqs),
                "batch_latency_s": round(elapsed, 4),
            }
            if prep["video"] is not None:
                extra["video_grid_thw"] = list(prep["grid"])
                extra["video_tokens"] = int(prep["video"]["num_video_tokens"])
            if lp is not None:
                extra["choice_mass"] = float(sum(np.exp(v) for v in lp.values()))
            results.append(VLMResponse(text=text, choice_logprobs=lp, latency_s=elapsed / len(reqs)
                                       + prep["prep_s"], extra=extra))
        return results

    def _choice_logprobs(self, reqs: list[VLMRequest], preps: list[dict],
                         first: torch.Tensor) -> list[dict[str, float] | None]:
        """Per request: first-token log-probs, or full-sequence teacher-forced sums (see module doc)."""
        out: list[dict[str, float] | None] = [None] * len(reqs)
        by_choices: dict[tuple[str, ...], list[int]] = {}
        for b, r in enumerate(reqs):
            if r.choices:
                by_choices.setdefault(tuple(r.choices), []).append(b)
        for choices, rows in by_choices.items():
            ids = self._choice_ids(choices)
            firsts = [c[0] for c in ids]
            if len(set(firsts)) == len(firsts):
                for b in rows:
                    out[b] = {c: float(first[b, f]) for c, f in zip(choices, firsts, strict=True)}
            else:
                sums = self._teacher_forced([preps[b] for b in rows], ids)
                for j, b in enumerate(rows):
                    out[b] = {c: float(sums[j, k]) for k, c in enumerate(choices)}
        return out

    def _teacher_forced(self, preps: list[dict], choice_ids: list[list[int]]) -> torch.Tensor:
        """``(len(preps), len(choices))`` sums of choice-token log-probs after each prompt."""
        sums = torch.zeros(len(preps), len(choice_ids))
        for k, cids in enumerate(choice_ids):
            inputs = self._batch_inputs(preps, [cids] * len(preps))
            logits = self._model(**inputs, use_cache=False).logits.float()
            n = len(cids)
            lp = torch.log_softmax(logits[:, -n - 1: -1], dim=-1)
            target = torch.tensor(cids, device=lp.device).expand(len(preps), n)
            sums[:, k] = lp.gather(-1, target[..., None])[..., 0].sum(-1).cpu()
        return sums
