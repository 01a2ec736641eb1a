"""Qwen2.5-VL-7B at ASK-Hint's input size on one GPU: prefill and stage-1 time per video, peak memory.

    PYTHONPATH=. python bench/gpu_qwen7b.py [--repeats 5] [--frames 128] [--side 448] [--json OUT]

For a CUDA machine; without one it stops at once with a message (``--cpu-check`` runs the same code
path on the CPU with a tiny config, to check the script, its numbers meaning nothing).

What it builds, with nothing downloaded:

* the real Qwen2.5-VL-7B-Instruct architecture from its published config (``TEXT_7B`` and
  ``VISION_7B`` below: text hidden 3584, 28 layers, 28 heads, 4 KV heads, ...), random weights,
  bf16, initialised directly on the GPU (``with torch.device("cuda"): _from_config(...)``);
* 128 frames at 448x448 (random pixels: the cost does not depend on them) through askhint's own
  preprocessing (``askhint_assets.vlm.preprocess.preprocess_video``): 64 temporal groups x 32x32
  patches = 65,536 patches -> 16,384 video tokens;
* the ASK-Hint stage-1 prompt rendered by ``askhint_assets.prompts.templates`` and
  ``askhint_assets.vlm.families`` with Q* filled in. The real Qwen tokenizer is not available
  offline, so token ids are built directly: the special tokens get their published ids
  (``<|im_start|>`` 151644, ``<|im_end|>`` 151645, ``<|vision_start|>`` 151652, ``<|vision_end|>``
  151653, ``<|video_pad|>`` 151656), every other piece of text gets random ordinary ids, one per
  GPT-2-style pre-token (a word with its leading space, a digit, a run of punctuation), which for plain
  English is close to Qwen's BPE count. The text is ~130 tokens beside 16,384 video tokens.

Measured (median of ``--repeats`` after ``--warmup``, CUDA-synchronised): preprocessing on the CPU
(ours, and transformers' official processor when torchvision imports, with their difference),
host-to-GPU copy, prefill (one forward over the whole prompt, KV cache built, logits of the last
position only), the stage-1 answer (``generate`` with 1 new token, as the backend calls it), decode
time per further token, peak GPU memory (``torch.cuda.max_memory_allocated``) and the card's name.
From the measured prefill it *estimates* vLLM throughput (vLLM is not installed here: labelled so).
Baseline in the same run: the smoke-test model through askhint's own ``TransformersBackend`` on the
same device, on the demo's input and on this 7B input.

Imports only askhint's core modules that need torch/numpy/transformers (no Dagster, DuckDB or PyAV),
so it runs from a plain copy of the repository with ``PYTHONPATH=.``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Qwen2.5-VL-7B-Instruct's published config (reference.md §5).
TEXT_7B = dict(
    vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
    num_key_value_heads=4, hidden_act="silu", max_position_embeddings=128000, rms_norm_eps=1e-6,
    rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
    tie_word_embeddings=False, bos_token_id=151643, eos_token_id=151645, use_sliding_window=False,
)
VISION_7B = dict(
    depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584, patch_size=14,
    temporal_patch_size=2, spatial_merge_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31],
    tokens_per_second=2, in_channels=3, hidden_act="silu",
)
# --cpu-check only: the same architecture class, tiny (reference.md §8), the real vocabulary size.
TEXT_TINY = dict(TEXT_7B, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, rope_parameters={"rope_type": "default", "rope_theta": 1e6,
                                                         "mrope_section": [2, 3, 3]})
VISION_TINY = dict(VISION_7B, depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64,
                   window_size=56, fullatt_block_indexes=[1])

SPECIAL_IDS = {
    "<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645,
    "<|vision_start|>": 151652, "<|vision_end|>": 151653, "<|image_pad|>": 151655, "<|video_pad|>": 151656,
}
ORDINARY_IDS = 151643  # ids below this are ordinary BPE tokens
# Q* as the pipeline computes it for prompts_store/ucf_crime (bench/throughput.py prints the current
# one); only the prompt's length matters here.
QSTAR = (
    "Do you see someone breaking into a house, shop, or office through a door or window?",
    "Do you see someone secretly picking up belongings left unattended?",
    "Do you see a person hitting, kicking, or dragging someone who cannot defend themselves?",
    "Is there a muzzle flash or a gun pointed at people?",
    "Do you see people or objects thrown through the air by a blast?",
    "Do you see a vehicle crashing, flipping over, or leaving the road?",
)
PRETOKEN = re.compile(r" ?[A-Za-z]+| ?\d| ?[^\sA-Za-z\d]+|\s+")
GIB = 1 << 30


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=None, help="frames per video (default 128; 8 with --cpu-check)")
    ap.add_argument("--side", type=int, default=None, help="frame side in px (default 448; 112 with --cpu-check)")
    ap.add_argument("--fps", type=float, default=1.0, help="effective rate of the sampled frames (temporal ids)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repetitions (median reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed repetitions first")
    ap.add_argument("--decode-tokens", type=int, default=16, help="new tokens for the per-token decode time")
    ap.add_argument("--smoke-model", type=Path, default=None,
                    help="smoke model folder for the baseline (default: ensure_smoke_model(), the committed one)")
    ap.add_argument("--skip-baseline", action="store_true", help="leave out the smoke-model baseline")
    ap.add_argument("--cpu-check", action="store_true",
                    help="run on the CPU with a tiny config to check the script (numbers meaningless)")
    ap.add_argument("--json", type=Path, default=None, help="also write every number to this JSON file")
    a = ap.parse_args(argv)
    a.frames = a.frames or (8 if a.cpu_check else 128)
    a.side = a.side or (112 if a.cpu_check else 448)
    return a


def require_cuda(cpu_check: bool):
    """torch, after checking there is a CUDA device (or ``--cpu-check``); exits with a message otherwise."""
    try:
        import torch
    except ImportError:
        sys.exit("gpu_qwen7b.py: PyTorch is not installed; run it on a GPU machine with CUDA PyTorch.")
    if not cpu_check and not torch.cuda.is_available():
        print(f"gpu_qwen7b.py needs a CUDA GPU: this PyTorch ({torch.__version__}) sees none "
              "(torch.cuda.is_available() is False).\n"
              "Run it on a GPU machine:  PYTHONPATH=. python bench/gpu_qwen7b.py [--json OUT]\n"
              "(--cpu-check runs the same code path on the CPU with a tiny config; its numbers mean nothing.)",
              file=sys.stderr)
        sys.exit(2)
    return torch


# ---------------------------------------------------------------------------------------- helpers


def timed(fn, repeats: int, warmup: int, sync) -> tuple[float, list[float], object]:
    """Median seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs; all times; last result."""
    out = None
    for _ in range(warmup):
        out = fn()
        sync()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def stage1_prompt_ids(num_video_tokens: int, seed: int = 0) -> tuple[list[int], dict]:
    """Token ids of the ASK-Hint stage-1 prompt with the video's pads (see the module docstring)."""
    import numpy as np

    from askhint_assets.prompts.templates import default_templates, stage1_messages
    from askhint_assets.vlm import families

    text = families.render_prompt("qwen2_5_vl", stage1_messages(default_templates(), list(QSTAR)),
                                  families.video_placeholder("qwen2_5_vl"))
    text = families.expand_video_pads(text, num_video_tokens)
    rng = np.random.default_rng(seed)
    split = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_IDS) + ")")
    ids: list[int] = []
    n_text = 0
    for piece in split.split(text):
        if piece in SPECIAL_IDS:
            ids.append(SPECIAL_IDS[piece])
        elif piece:
            k = len(PRETOKEN.findall(piece))
            ids += rng.integers(0, ORDINARY_IDS, k).tolist()
            n_text += k
    n_special = len(ids) - n_text - num_video_tokens
    return ids, {"prompt_tokens": len(ids), "video_tokens": num_video_tokens, "text_tokens": n_text,
                 "special_tokens": n_special, "prompt_chars_without_pads": len(text.replace("<|video_pad|>", ""))}


def approx_prefill_flops(model, seq: int, patches: int) -> float:
    """2·params·tokens for the language layers and the vision tower, plus causal attention 2·L·T²·d."""
    inner = getattr(model, "model", model)
    lm = getattr(inner, "language_model", None)
    vis = getattr(inner, "visual", None)
    if lm is None or vis is None:
        return float("nan")
    p_lm = sum(p.numel() for n, p in lm.named_parameters() if not n.startswith("embed_tokens"))
    p_vis = sum(p.numel() for p in vis.parameters())
    cfg = model.config.text_config
    return 2.0 * p_lm * seq + 2.0 * p_vis * patches + 2.0 * cfg.num_hidden_layers * seq * seq * cfg.hidden_size


# ---------------------------------------------------------------------------------------- parts


def torchvision_available() -> bool:
    """Whether torchvision imports (the official video processor needs it)."""
    try:
        import torchvision  # noqa: F401
    except Exception:
        return False
    return True


def official_preprocess_video(frames, fps: float, min_pixels: int, max_pixels: int) -> dict:
    """What ``askhint_assets.vlm.preprocess.preprocess_video`` computes, through transformers'
    ``Qwen2VLVideoProcessor`` (needs torchvision)."""
    import numpy as np
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    proc = Qwen2VLVideoProcessor(size={"shortest_edge": min_pixels, "longest_edge": max_pixels})
    out = proc(videos=[np.asarray(frames)], do_sample_frames=False, cap_pixels_per_frame=False,
               return_tensors="pt")
    grid = out["video_grid_thw"].numpy().astype(np.int64)
    return {
        "pixel_values_videos": out["pixel_values_videos"].numpy().astype(np.float32),
        "video_grid_thw": grid,
        "second_per_grid_ts": [proc.temporal_patch_size / float(fps)],
        "num_video_tokens": int(grid.prod()) // proc.merge_size**2,
        "resized_hw": (int(grid[0, 1]) * proc.patch_size, int(grid[0, 2]) * proc.patch_size),
    }


def measure_preprocessing(frames, fps: float, repeats: int) -> tuple[dict, dict]:
    """Ours (numpy/torch CPU) and, where torchvision imports, transformers' official processor."""
    import numpy as np

    from askhint_assets.vlm.preprocess import VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS, preprocess_video

    def ours():
        return preprocess_video(frames, fps, min_pixels=VIDEO_MIN_PIXELS, max_pixels=VIDEO_MAX_PIXELS)

    med, times, video = timed(ours, repeats, 1, lambda: None)
    out = {"ours_s": med, "ours_times_s": times, "grid_thw": video["video_grid_thw"][0].tolist(),
           "patches": int(video["pixel_values_videos"].shape[0]), "video_tokens": int(video["num_video_tokens"]),
           "resized_hw": list(video["resized_hw"])}
    if torchvision_available():
        try:
            def official():
                return official_preprocess_video(frames, fps, VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS)

            omed, otimes, ovid = timed(official, repeats, 1, lambda: None)
            same_grid = ovid["video_grid_thw"].tolist() == video["video_grid_thw"].tolist()
            diff = (float(np.abs(ovid["pixel_values_videos"] - video["pixel_values_videos"]).max())
                    if same_grid else None)
            out.update(official_s=omed, official_times_s=otimes, official_same_grid=same_grid,
                       official_max_abs_diff=diff)
        except Exception as e:  # report, do not stop the GPU measurements
            out["official_error"] = f"{type(e).__name__}: {e}"
    else:
        out["official_error"] = "torchvision does not import: official processor not timed"
    return out, video


def build_model(torch, tiny: bool, device: str, dtype):
    """Qwen2.5-VL-7B's architecture (or the tiny check config) with random weights, made on ``device``."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    cfg = Qwen2_5_VLConfig(
        text_config=dict(TEXT_TINY if tiny else TEXT_7B), vision_config=dict(VISION_TINY if tiny else VISION_7B),
        image_token_id=SPECIAL_IDS["<|image_pad|>"], video_token_id=SPECIAL_IDS["<|video_pad|>"],
        vision_start_token_id=SPECIAL_IDS["<|vision_start|>"], vision_end_token_id=SPECIAL_IDS["<|vision_end|>"],
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(cfg, dtype=dtype, attn_implementation="sdpa")
    return model.eval()


def measure_7b(torch, args, video: dict, device: str, dtype, sync) -> dict:
    import numpy as np

    cuda = device == "cuda"
    out: dict = {}
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    model = build_model(torch, args.cpu_check, device, dtype)
    sync()
    out["build_s"] = time.perf_counter() - t0
    out["params_b"] = sum(p.numel() for p in model.parameters()) / 1e9
    if cuda:
        out["weights_gib"] = torch.cuda.memory_allocated() / GIB

    ids, prompt = stage1_prompt_ids(int(video["num_video_tokens"]))
    out["prompt"] = prompt

    def to_device():
        input_ids = torch.tensor([ids], dtype=torch.long, device=device)
        return {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "pixel_values_videos": torch.from_numpy(video["pixel_values_videos"]).to(device=device, dtype=dtype),
            "video_grid_thw": torch.from_numpy(np.asarray(video["video_grid_thw"])).to(device),
            "second_per_grid_ts": torch.tensor(video["second_per_grid_ts"], device=device),
            # as TransformersBackend passes it: 2 marks video tokens (multimodal rope index)
            "mm_token_type_ids": (input_ids == SPECIAL_IDS["<|video_pad|>"]).int() * 2,
        }

    out["copy_to_device_s"], _, inputs = timed(to_device, args.repeats, 1, sync)
    eos = SPECIAL_IDS["<|im_end|>"]

    @torch.no_grad()
    def prefill():
        return model(**inputs, use_cache=True, logits_to_keep=1).logits

    @torch.no_grad()
    def generate(n: int):
        return model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False, num_beams=1,
                              temperature=None, top_p=None, top_k=None, eos_token_id=eos, pad_token_id=eos,
                              output_logits=True, return_dict_in_generate=True)

    visual = getattr(getattr(model, "model", model), "visual", None)

    @torch.no_grad()
    def vision():
        return visual(inputs["pixel_values_videos"], grid_thw=inputs["video_grid_thw"])

    if visual is not None:  # the vision tower alone (part of every prefill)
        out["vision_s"], out["vision_times_s"], _ = timed(vision, args.repeats, args.warmup, sync)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    out["prefill_s"], out["prefill_times_s"], logits = timed(prefill, args.repeats, args.warmup, sync)
    out["prefill_logits_shape"] = list(logits.shape)
    if cuda:
        out["peak_prefill_gib"] = torch.cuda.max_memory_allocated() / GIB
        torch.cuda.reset_peak_memory_stats()
    out["stage1_s"], out["stage1_times_s"], gen = timed(lambda: generate(1), args.repeats, args.warmup, sync)
    out["stage1_new_tokens"] = int(gen.sequences.shape[1] - len(ids))
    if cuda:
        out["peak_stage1_gib"] = torch.cuda.max_memory_allocated() / GIB
    n = max(2, args.decode_tokens)
    out["generate_n_s"], _, gen = timed(lambda: generate(n), max(1, args.repeats // 2), 0, sync)
    out["decode_tokens"] = int(gen.sequences.shape[1] - len(ids))
    out["decode_s_per_token"] = (out["generate_n_s"] - out["stage1_s"]) / max(1, out["decode_tokens"] - 1)
    flops = approx_prefill_flops(model, len(ids), int(video["pixel_values_videos"].shape[0]))
    out["approx_prefill_tflop"] = flops / 1e12
    out["approx_prefill_tflops_per_s"] = flops / out["prefill_s"] / 1e12
    return out  # the model and its inputs go with this frame; the caller empties the CUDA cache


def smoke_model_dir(arg: Path | None, keep: list) -> tuple[Path, str]:
    """The smoke model for the baseline: given, else the committed one (``ensure_smoke_model()``)."""
    if arg is not None:
        return arg.resolve(), "given with --smoke-model"
    from askhint_assets.demo.smoke_model import ensure_smoke_model

    path = ensure_smoke_model(log=None)  # the committed fixture: no training
    return path, f"the trained smoke model {path.name}"


def measure_smoke_baseline(torch, args, frames_7b, device: str, sync) -> dict:
    """The smoke model through askhint's own TransformersBackend: the demo's input and this 7B input."""
    import numpy as np

    from askhint_assets.demo.smoke_model import SMOKE_CLIP_SIZE, SMOKE_MAX_FRAMES
    from askhint_assets.prompts.templates import STAGE1_CHOICES, default_templates, stage1_messages
    from askhint_assets.vlm.backends.transformers_backend import TransformersBackend
    from askhint_assets.vlm.preprocess import VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS
    from askhint_assets.vlm.types import VLMRequest

    keep: list = []
    path, how = smoke_model_dir(args.smoke_model, keep)
    dtype = "float32" if device == "cpu" else "bfloat16"
    msgs = stage1_messages(default_templates(), list(QSTAR))
    demo_frames = np.random.default_rng(1).integers(0, 255, (SMOKE_MAX_FRAMES, *SMOKE_CLIP_SIZE, 3), dtype=np.uint8)
    cases = {
        "demo input": (TransformersBackend(str(path), device=device, dtype=dtype, batch_size=1), demo_frames, 4.0),
        "7B input": (TransformersBackend(str(path), device=device, dtype=dtype, batch_size=1,
                                         min_pixels=VIDEO_MIN_PIXELS, max_pixels=VIDEO_MAX_PIXELS),
                     frames_7b, args.fps),
    }
    out: dict = {"model": str(path), "how": how, "dtype": dtype, "cases": {}}
    for name, (backend, frames, fps) in cases.items():
        req = VLMRequest(messages=msgs, frames=frames, frames_fps=fps, frames_key="bench",
                         choices=STAGE1_CHOICES, max_new_tokens=4)  # what predict() asks in stage 1
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        med, times, resp = timed(lambda b=backend, r=req: b.generate([r])[0], args.repeats, args.warmup, sync)
        if not resp.ok:
            out["cases"][name] = {"error": resp.error}
            continue
        out["cases"][name] = {
            "frames": list(frames.shape), "s_per_request": med, "times_s": times,
            "video_tokens": resp.extra.get("video_tokens"), "prompt_tokens": resp.extra.get("prompt_tokens"),
            "peak_gib": torch.cuda.max_memory_allocated() / GIB if device == "cuda" else None,
        }
        backend._model = None
        if device == "cuda":
            torch.cuda.empty_cache()
    for tmp in keep:
        tmp.cleanup()
    return out


# ---------------------------------------------------------------------------------------- report


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def print_table(rows: list[tuple[str, str, str]]) -> None:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'measurement'.ljust(w0)}  {'value'.rjust(w1)}  baseline / note")
    print(f"{'-' * w0}  {'-' * w1}  {'-' * 40}")
    for a, b, c in rows:
        print(f"{a.ljust(w0)}  {b.rjust(w1)}  {c}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch = require_cuda(args.cpu_check)  # before anything heavy: fail fast without CUDA
    import numpy as np
    import transformers
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    device = "cpu" if args.cpu_check else "cuda"
    dtype = torch.float32 if args.cpu_check else torch.bfloat16

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    try:
        import torchvision

        tv = torchvision.__version__
    except Exception:
        tv = "does not import"
    env = {
        "command": " ".join([sys.executable, *sys.argv]),
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (--cpu-check: numbers meaningless)",
        "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "transformers": transformers.__version__, "torchvision": tv, "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "settings": {"frames": args.frames, "side": args.side, "fps": args.fps, "repeats": args.repeats,
                     "warmup": args.warmup, "dtype": str(dtype).replace("torch.", ""), "attn": "sdpa",
                     "config": "tiny (--cpu-check)" if args.cpu_check else "Qwen2.5-VL-7B-Instruct (published)"},
    }
    print("askhint: Qwen2.5-VL-7B throughput on one GPU (bench/gpu_qwen7b.py)")
    for k, v in env.items():
        print(f"{k}: {v}")
    frames = np.random.default_rng(0).integers(0, 255, (args.frames, args.side, args.side, 3), dtype=np.uint8)
    pre, video = measure_preprocessing(frames, args.fps, args.repeats)
    print(f"preprocessed: grid {pre['grid_thw']} -> {pre['video_tokens']} video tokens", flush=True)
    big = measure_7b(torch, args, video, device, dtype, sync)
    if device == "cuda":
        torch.cuda.empty_cache()
    print(f"model measured: prefill {big['prefill_s']:.3f} s", flush=True)
    base = None if args.skip_baseline else measure_smoke_baseline(torch, args, frames, device, sync)

    # ------------------------------------------------------------------ table
    p = big["prompt"]
    e2e = pre["ours_s"] + big["copy_to_device_s"] + big["stage1_s"]
    rows = [
        ("device", env["device"], f"torch {env['torch']} (CUDA {env['cuda']}), transformers {env['transformers']}"),
        ("model", f"{big['params_b']:.2f} B params", f"{env['settings']['config']}, random weights, "
         f"{env['settings']['dtype']}, sdpa; built on the device in {big['build_s']:.1f} s"),
        ("weights on the GPU (GiB)", fmt(big.get("weights_gib"), 2), "torch.cuda.memory_allocated after building"),
        ("input", f"{args.frames}x{args.side}x{args.side}", f"grid {pre['grid_thw']}, {pre['patches']} patches"),
        ("prompt tokens", str(p["prompt_tokens"]), f"{p['video_tokens']} video + {p['text_tokens']} text (random "
         f"ids, counted as pre-tokens) + {p['special_tokens']} special"),
        ("preprocess, askhint numpy path (CPU s/video)", fmt(pre["ours_s"]), "preprocess_video, median"),
        ("preprocess, official processor (CPU s/video)", fmt(pre.get("official_s")),
         (f"{pre['official_s'] / pre['ours_s']:.2f}x ours; max |diff| {fmt(pre.get('official_max_abs_diff'), 4)}"
          if "official_s" in pre else pre.get("official_error", ""))),
        ("host -> GPU copy of the inputs (s/video)", fmt(big["copy_to_device_s"]), "pixel values in bf16"),
        ("prefill (s/video)", fmt(big["prefill_s"]), f"median of {args.repeats} after {args.warmup} warm-up; "
         f"min {min(big['prefill_times_s']):.3f}, max {max(big['prefill_times_s']):.3f}"),
        ("  of which the vision tower (s/video)", fmt(big.get("vision_s")),
         (f"{big['vision_s'] / big['prefill_s']:.0%} of prefill, timed alone; HF's sdpa path loops over the "
          "attention windows in Python" if big.get("vision_s") else "")),
        ("stage-1 answer, generate 1 new token (s/video)", fmt(big["stage1_s"]),
         f"{big['stage1_s'] / big['prefill_s']:.2f}x prefill"),
        ("decode, per further token (s)", fmt(big["decode_s_per_token"], 4),
         f"from generate({big['decode_tokens']}) - generate(1); stage 2 asks up to 64"),
        ("peak GPU memory, prefill (GiB)", fmt(big.get("peak_prefill_gib"), 2), "torch.cuda.max_memory_allocated"),
        ("peak GPU memory, stage 1 (GiB)", fmt(big.get("peak_stage1_gib"), 2), "torch.cuda.max_memory_allocated"),
        ("prefill compute (approx. TFLOP/s)", fmt(big["approx_prefill_tflops_per_s"], 1),
         f"{big['approx_prefill_tflop']:.0f} TFLOP per video: 2·params·tokens + causal attention"),
        ("stage 1 end to end, HF path (s/video)", fmt(e2e), f"preprocess + copy + generate(1): "
         f"{1 / e2e:.2f} videos/s, one video at a time"),
        ("estimate: vLLM not installed (videos/s)", fmt(1 / big["prefill_s"], 2),
         "stage 1 = 1/prefill: prefill is compute-bound, so batching adds little; assumes preprocessing "
         "overlapped on CPU workers"),
        ("estimate: vLLM not installed, UCF-Crime test (min)", fmt(290 * big["prefill_s"] / 60, 1),
         f"290 videos; XD-Violence test (800 videos) {800 * big['prefill_s'] / 60:.1f} min; stage 2 adds "
         f"~64 x {big['decode_s_per_token']:.3f} s per abnormal video unbatched (prefix-cached prompt)"),
    ]
    if base is not None:
        for name, c in base["cases"].items():
            if "error" in c:
                rows.append((f"baseline: smoke model, {name}", "failed", c["error"][:100]))
                continue
            ratio = f"; the 7B's HF stage 1 is {e2e / c['s_per_request']:.1f}x this" if name == "7B input" else ""
            rows.append((f"baseline: smoke model, {name} (s/request)", fmt(c["s_per_request"]),
                         f"TransformersBackend.generate, stage-1 request, {c['video_tokens']} video tokens, "
                         f"frames {c['frames']}, peak {fmt(c['peak_gib'], 2)} GiB{ratio}"))
        rows.append(("baseline model", Path(base["model"]).name, base["how"]))
    print()
    print_table(rows)
    report = {"env": env, "preprocess": pre, "qwen7b": big, "smoke_baseline": base,
              "estimate_vllm_not_installed": {"stage1_videos_per_s": 1 / big["prefill_s"],
                                              "ucf_crime_test_min": 290 * big["prefill_s"] / 60,
                                              "xd_violence_test_min": 800 * big["prefill_s"] / 60}}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"\nnumbers written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
