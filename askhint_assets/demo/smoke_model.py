"""A tiny Qwen2.5-VL built and trained here, for smoke tests and the demo only.

The folder is a normal Hugging Face checkpoint (``Qwen2_5_VLForConditionalGeneration`` +
``AutoTokenizer`` load it like the real 7B), trained on synthetic clips from ``askhint_assets.demo.synth``
to answer the ASK-Hint prompts. Its AUC says nothing about ASK-Hint; it exists so wiring bugs (prompts,
frames, positions, answer parsing, scores) show up as chance AUC.

Reproducible by construction: a fixed recipe (:func:`recipe`: architecture, ``SMOKE_TRAIN_STEPS`` steps,
seeds, one torch thread, deterministic algorithms, a frozen corpus in ``smoke_corpus/`` instead of the
live prompt store). The recipe hash names the model folder (``smoke-qwen2_5_vl-<hash>``). The model built
from the current recipe is committed under ``fixtures/`` (a few MB), so the demo, the tests and the
benchmarks use the same weights on every machine without training; a recipe without a fixture is
built once into the shared model cache (:func:`askhint_assets.paths.model_cache_dir`, under a lock).
Bump ``RECIPE_VERSION`` when a change to the training code here changes the weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from askhint_assets import paths
from askhint_assets.demo import synth
from askhint_assets.demo.synth import EVENT_KINDS, render_clip
from askhint_assets.file_lock import exclusive
from askhint_assets.hashing import hash_file, hash_obj
from askhint_assets.prompts.templates import (
    STAGE1_CHOICES,
    YES_NO_CHOICES,
    Templates,
    abstract_messages,
    stage1_messages,
    stage2_messages,
    yes_no_messages,
)
from askhint_assets.vlm import families
from askhint_assets.vlm.families import QWEN_CHAT_TEMPLATE, QWEN_SPECIAL_TOKENS
from askhint_assets.vlm.preprocess import preprocess_video
from askhint_assets.vlm.types import Message

# What the pipeline feeds the smoke model: up to 16 uniformly sampled frames, longer side 112 px.
SMOKE_MAX_FRAMES = 16
SMOKE_MAX_SIDE = 112
SMOKE_MIN_PIXELS = 28 * 28 * 4
SMOKE_MAX_PIXELS = 84 * 112  # a 96x128 demo frame → 84x112 → 6x8 patches
SMOKE_TRAIN_STEPS = 600  # a fixed number of optimiser steps (never a time budget: weights must not follow the clock)
SMOKE_TRAIN_THREADS = 1  # torch CPU threads while training: the same reduction order on every machine
SMOKE_BATCH_SIZE = 8
SMOKE_LR = 2e-3
SMOKE_CLIP_SIZE = (96, 128)  # (H, W) the demo renders at
TRAIN_SEED_LIMIT = 1_000_000  # training clips use seeds below this; held-out/demo clips use seeds above
HELD_OUT_SEED = 1_000_000
RECIPE_VERSION = "2"
MARKER = "askhint_smoke.json"
README = "SMOKE_TEST_MODEL.md"
MODEL_PREFIX = "smoke-qwen2_5_vl"
# The frozen prompts the model is trained on (a copy of prompts_store/ as designed; see its README).
CORPUS_DIR = Path(__file__).resolve().parent / "smoke_corpus"
# The committed model built from the current recipe (``fixtures/smoke-qwen2_5_vl-<recipe hash>/``).
FIXTURE_ROOT = Path(__file__).resolve().parent / "fixtures"

GROUP_OF = {
    "Fighting": "Violence/Harm to People",
    "Shooting": "Violence/Harm to People",
    "Vandalism": "Crimes Against Property",
    "Stealing": "Crimes Against Property",
    "Explosion": "Public Safety Incidents",
    "RoadAccidents": "Public Safety Incidents",
}
RATIONALE = {
    "Fighting": "Two people are fighting.",
    "Shooting": "A person shoots someone.",
    "Vandalism": "A person smashes a wall.",
    "Stealing": "A person steals a box.",
    "Explosion": "A big explosion happens.",
    "RoadAccidents": "Two cars crash.",
}
NORMAL_STAGE2 = "Group: None\nReason: Nothing unusual happens."

TEXT_CONFIG = dict(
    hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=4096, rms_norm_eps=1e-6,
    rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]},
)
VISION_CONFIG = dict(
    depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=128, patch_size=14,
    temporal_patch_size=2, spatial_merge_size=2, window_size=112, fullatt_block_indexes=[1],
    tokens_per_second=2, in_channels=3,
)
TOKENIZER_VOCAB = 1200

_GENERIC = (
    "the a an and or but if then so of to in on at by for with from as is are was were be been it this that "
    "these those there here what which who when where why how yes no not do does did can could should would "
    "will may might video frame frames scene person people man woman child car cars street road wall box "
    "fire smoke gun police crowd shop store building window door night day light dark red blue green white "
    "black yellow orange left right top bottom moving walking running standing sitting falling fighting "
    "hitting kicking punching shooting stealing breaking smashing painting burning crash explosion accident "
    "normal abnormal anomaly anomalous event events activity question questions answer group groups reason "
    "system user assistant summary summarise cluster similar general guiding "
    "one two three four five six seven eight nine ten "
    "Summarise these questions into one general question. Write one short yes/no question. "
    "0 1 2 3 4 5 6 7 8 9 10 100 . , ; : ? ! ' \" ( ) - / \n"
)


def _corpus_files() -> list[Path]:
    """The frozen files whose text trains the tokenizer (questions and taxonomies of every set)."""
    return sorted([*CORPUS_DIR.glob("*/class_questions.yaml"), *CORPUS_DIR.glob("*/taxonomy.yaml")])


def load_class_questions() -> dict[str, tuple[str, ...]]:
    """UCF-Crime class → guiding questions, from the frozen ``smoke_corpus/ucf_crime/class_questions.yaml``."""
    import yaml

    raw = yaml.safe_load((CORPUS_DIR / "ucf_crime" / "class_questions.yaml").read_text("utf-8"))
    return {str(c): tuple(" ".join(str(q).split()) for q in qs) for c, qs in raw.items()}


def load_templates() -> Templates:
    """The prompt templates the model is trained on, from the frozen ``smoke_corpus/ucf_crime/templates.yaml``.

    Plain YAML into :class:`Templates`: the corpus is fixed data, so the prompt-store loader's checks
    (and any change to them) stay out of the recipe.
    """
    import yaml

    raw = yaml.safe_load((CORPUS_DIR / "ucf_crime" / "templates.yaml").read_text("utf-8"))
    return Templates(**{k: (tuple(v) if k == "groups" else str(v)) for k, v in raw.items()})


def stage2_answer(event: str | None) -> str:
    """The stage-2 target: ``Group: <group>\\nReason: <rationale>`` (``Group: None`` when normal)."""
    if event is None:
        return NORMAL_STAGE2
    return f"Group: {GROUP_OF[event]}\nReason: {RATIONALE[event]}"


def _corpus(t: Templates, class_questions: dict[str, tuple[str, ...]]) -> list[str]:
    qs = [q for qq in class_questions.values() for q in qq]
    texts = [*(p.read_text(encoding="utf-8") for p in _corpus_files()), _GENERIC, t.system, t.abstract, *t.groups]
    rng = np.random.default_rng(0)
    for _ in range(40):
        pick = list(rng.choice(qs, size=6, replace=False))
        texts += [m.text for m in stage2_messages(t, pick, "Abnormal")]
        texts += [m.text for m in yes_no_messages(t, pick[0])]
    texts += [stage2_answer(e) for e in (None, *EVENT_KINDS)] * 20
    # Make each answer word (bare and after a space) frequent enough to become one token.
    for w in (*STAGE1_CHOICES, *YES_NO_CHOICES):
        texts += [f"{w}\n {w}\n{w}. {w}, {w}"] * 200
    return texts


def build_tokenizer(out_dir: str | Path, vocab_size: int = TOKENIZER_VOCAB):
    """Train a byte-level BPE on the prompt texts, add the Qwen special tokens, save; return it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    t = load_templates()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus(t, load_class_questions()), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=families.QWEN_IM_END, pad_token=families.QWEN_ENDOFTEXT,
        model_max_length=4096, clean_up_tokenization_spaces=False,
    )
    fast.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS)})
    fast.chat_template = QWEN_CHAT_TEMPLATE
    for w in (*STAGE1_CHOICES, *YES_NO_CHOICES):
        for s in (w, " " + w):
            ids = fast.encode(s, add_special_tokens=False)
            if len(ids) != 1:
                raise RuntimeError(f"smoke tokenizer: {s!r} is not a single token: {ids}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return fast


def smoke_config(tokenizer):
    """The hand-made ``Qwen2_5_VLConfig`` (reference.md §8, a little larger) for ``tokenizer``."""
    from transformers import Qwen2_5_VLConfig

    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in (
        ("image_token_id", families.QWEN_IMAGE_PAD), ("video_token_id", families.QWEN_VIDEO_PAD),
        ("vision_start_token_id", families.QWEN_VISION_START),
        ("vision_end_token_id", families.QWEN_VISION_END))}
    eos = tokenizer.convert_tokens_to_ids(families.QWEN_IM_END)
    pad = tokenizer.convert_tokens_to_ids(families.QWEN_ENDOFTEXT)
    text = dict(TEXT_CONFIG, vocab_size=len(tokenizer), bos_token_id=pad, eos_token_id=eos, pad_token_id=pad)
    return Qwen2_5_VLConfig(text_config=text, vision_config=dict(VISION_CONFIG), **ids)


def build_model(out_dir: str | Path, tokenizer=None, seed: int = 0):
    """Random-init the smoke model, save it (with generation and video-processor configs); return it."""
    from transformers import AutoTokenizer, GenerationConfig, Qwen2_5_VLForConditionalGeneration

    out = Path(out_dir)
    tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(out)
    config = smoke_config(tokenizer)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        do_sample=False, eos_token_id=[config.text_config.eos_token_id, config.text_config.pad_token_id],
        pad_token_id=config.text_config.pad_token_id, bos_token_id=config.text_config.bos_token_id,
    )
    model.save_pretrained(out)
    write_processor_configs(out)
    return model


def write_processor_configs(out: Path) -> None:
    """The video and image processor configs: a complete checkpoint (``AutoProcessor.from_pretrained`` and
    ``vllm serve`` need ``preprocessor_config.json``, as in the released Qwen2.5-VL folders), same pixel bounds."""
    from askhint_assets.vlm.preprocess import CLIP_MEAN, CLIP_STD

    common = {
        "processor_class": "Qwen2_5_VLProcessor",
        "size": {"shortest_edge": SMOKE_MIN_PIXELS, "longest_edge": SMOKE_MAX_PIXELS},
        "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD),
        "do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
    }
    video = {"video_processor_type": "Qwen2VLVideoProcessor", **common, "do_sample_frames": False}
    image = {"image_processor_type": "Qwen2VLImageProcessor", **common, "do_convert_rgb": True,
             "min_pixels": SMOKE_MIN_PIXELS, "max_pixels": SMOKE_MAX_PIXELS}
    (out / "video_preprocessor_config.json").write_text(json.dumps(video, indent=2) + "\n")
    (out / "preprocessor_config.json").write_text(json.dumps(image, indent=2) + "\n")


# ---------------------------------------------------------------- synthetic training data


@dataclass
class Example:
    """One supervised example: a chat about a video and the answer text."""

    kind: str  # "stage1" | "abstract" | "stage2" | "yes_no"
    messages: list[Message]
    answer: str
    event: str | None
    label: bool


def sample_indices(length: int, n: int) -> np.ndarray:
    """``n`` uniform frame indices over ``[0, length)`` (segment centres), as the pipeline samples."""
    n = min(n, length)
    return np.minimum(((np.arange(n) + 0.5) * length / n).astype(int), length - 1)


def sample_clip(rng: np.random.Generator, seed: int, num_frames: int = SMOKE_MAX_FRAMES,
                size: tuple[int, int] = SMOKE_CLIP_SIZE) -> tuple[np.ndarray, float, str | None, bool]:
    """Render a random clip (normal half the time), sample ``num_frames`` frames.

    Returns frames, their effective fps, the event kind and whether any sampled frame shows it.
    """
    length = int(rng.integers(num_frames, 6 * num_frames + 1))
    event = None if rng.random() < 0.5 else str(rng.choice(EVENT_KINDS))
    span = None
    if event is not None:
        n = int(rng.integers(max(2, length // 12), length + 1))
        start = int(rng.integers(0, length - n + 1))
        span = (start, start + n)
    clip = render_clip(event, length, size=size, event_span=span, seed=seed)
    idx = sample_indices(length, num_frames)
    shown = span is not None and bool(((idx >= span[0]) & (idx < span[1])).any())
    fps = len(idx) / (length / float(rng.choice([24.0, 25.0, 30.0])))
    return clip[idx], fps, event if shown else None, shown


def make_examples(
    rng: np.random.Generator, event: str | None, t: Templates, class_questions: dict[str, tuple[str, ...]]
) -> list[Example]:
    """One example of each prompt kind for one clip (questions drawn at random)."""
    all_q = [(c, q) for c, qq in class_questions.items() for q in qq]
    label = event is not None
    word = STAGE1_CHOICES[1] if label else STAGE1_CHOICES[0]
    k = int(rng.integers(3, 9))
    pick = [all_q[i][1] for i in rng.choice(len(all_q), size=k, replace=False)]
    out = [
        Example("stage1", stage1_messages(t, pick), word, event, label),
        Example("abstract", abstract_messages(t), word, event, label),
        Example("stage2", stage2_messages(t, pick, word), stage2_answer(event), event, label),
    ]
    own = class_questions.get(event, ()) if event else ()
    if own and rng.random() < 0.5:
        q, yes = str(rng.choice(own)), True
    else:
        others = [q for c, q in all_q if c != event]
        q, yes = str(rng.choice(others)), False
    out.append(Example("yes_no", yes_no_messages(t, q), YES_NO_CHOICES[0 if yes else 1], event, yes))
    return out


# ---------------------------------------------------------------- encoding and training


def encode_prompt(tokenizer, messages: list[Message], video: dict | None) -> list[int]:
    """Token ids of the rendered Qwen prompt, the video pad repeated to the video's token count."""
    placeholder = families.video_placeholder("qwen2_5_vl") if video is not None else None
    text = families.render_prompt("qwen2_5_vl", messages, placeholder)
    if video is not None:
        text = families.expand_video_pads(text, video["num_video_tokens"])
    return tokenizer.encode(text, add_special_tokens=False)


def _video_inputs(frames: np.ndarray, fps: float) -> dict:
    return preprocess_video(frames, fps, min_pixels=SMOKE_MIN_PIXELS, max_pixels=SMOKE_MAX_PIXELS)


def _collate(tokenizer, examples: list[Example], videos: list[dict], video_token_id: int,
             pad_id: int) -> dict:
    """Right-padded batch with labels and loss weights on the answer tokens (and the closing ``<|im_end|>``).

    Weights: 1/sqrt(answer length) per token, so one-word answers are not drowned by stage 2's two
    lines, times ``FIRST_LINE_WEIGHT`` on the first line of a multi-line answer (stage 2's group).
    """
    eos = tokenizer.convert_tokens_to_ids(families.QWEN_IM_END)
    seqs, labels, weights = [], [], []
    for ex, v in zip(examples, videos, strict=True):
        p = encode_prompt(tokenizer, ex.messages, v)
        first, sep, rest = ex.answer.partition("\n")
        head = tokenizer.encode(first, add_special_tokens=False)
        tail = tokenizer.encode(sep + rest, add_special_tokens=False) if sep else []
        a = [*head, *tail, eos]
        w = [FIRST_LINE_WEIGHT if sep else 1.0] * len(head) + [1.0] * (len(tail) + 1)
        seqs.append(p + a)
        labels.append([-100] * len(p) + a)
        weights.append([0.0] * len(p) + [x / math.sqrt(len(a)) for x in w])
    n = max(map(len, seqs))
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    lab = torch.full((len(seqs), n), -100, dtype=torch.long)
    wt = torch.zeros((len(seqs), n))
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, (s, lb, w) in enumerate(zip(seqs, labels, weights, strict=True)):
        ids[i, : len(s)] = torch.tensor(s)
        lab[i, : len(s)] = torch.tensor(lb)
        wt[i, : len(s)] = torch.tensor(w)
        mask[i, : len(s)] = 1
    return {
        "input_ids": ids, "attention_mask": mask, "labels": lab, "loss_weights": wt,
        "mm_token_type_ids": (ids == video_token_id).int() * 2,
        "pixel_values_videos": torch.from_numpy(np.concatenate([v["pixel_values_videos"] for v in videos])),
        "video_grid_thw": torch.from_numpy(np.concatenate([v["video_grid_thw"] for v in videos])),
        "second_per_grid_ts": torch.tensor([v["second_per_grid_ts"][0] for v in videos]),
    }


def _answer_loss(model, batch: dict) -> torch.Tensor:
    """Weighted mean cross-entropy of the answer tokens; the LM head runs on those rows only."""
    labels, weights = batch.pop("labels"), batch.pop("loss_weights")
    hidden = model.model(**batch, use_cache=False).last_hidden_state
    target, w = labels[:, 1:], weights[:, 1:]
    keep = target != -100
    logits = model.lm_head(hidden[:, :-1][keep])
    ce = torch.nn.functional.cross_entropy(logits, target[keep], reduction="none")
    return (ce * w[keep]).sum() / w[keep].sum()


class _ClipPool:
    """Preprocessed clips per frame count, a few replaced each step, so rendering cost stays small."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        self.rng, self.size = rng, size
        self.items: dict[int, list[tuple[dict, str | None]]] = {}
        self.next_seed = int(rng.integers(0, 10_000))

    def add(self, num_frames: int) -> None:
        seed = self.next_seed % TRAIN_SEED_LIMIT
        self.next_seed += 7919
        frames, fps, event, _ = sample_clip(self.rng, seed, num_frames)
        items = self.items.setdefault(num_frames, [])
        item = (_video_inputs(frames, fps), event)
        if len(items) < self.size:
            items.append(item)
        else:
            items[int(self.rng.integers(0, self.size))] = item

    def count(self, num_frames: int) -> int:
        return len(self.items.get(num_frames, ()))

    def draw(self, num_frames: int, k: int) -> list[tuple[dict, str | None]]:
        items = self.items[num_frames]
        return [items[i] for i in self.rng.integers(0, len(items), size=k)]


FIRST_LINE_WEIGHT = 3.0
KIND_WEIGHTS = {"stage1": 0.35, "abstract": 0.1, "stage2": 0.25, "yes_no": 0.3}
FRAME_COUNTS = {SMOKE_MAX_FRAMES: 0.7, 12: 0.15, 8: 0.15}


def train(
    model_dir: str | Path,
    *,
    steps: int = SMOKE_TRAIN_STEPS,
    seed: int = 0,
    batch_size: int = SMOKE_BATCH_SIZE,
    lr: float = SMOKE_LR,
    renders_per_step: int = 2,
    pool_size: int = 600,
    threads: int = SMOKE_TRAIN_THREADS,
    log: Callable[[str], None] | None = print,
) -> dict:
    """Fine-tune the model in ``model_dir`` for exactly ``steps`` steps on synthetic clips; save it in place.

    Each step draws clips from a pool (``renders_per_step`` new renders replace old ones) and one prompt
    kind per example (weights ``KIND_WEIGHTS``, stage 2 only on clips showing an event); loss only on the
    answer tokens plus the closing ``<|im_end|>``; AdamW with warm-up and cosine decay over the steps.
    Deterministic: every random draw comes from ``seed``, torch runs ``threads`` CPU threads with
    deterministic algorithms, so the same arguments give bit-identical weights (however busy the machine).
    Returns ``{"steps", "seconds", "loss"}``.
    """
    with deterministic_torch(threads):
        return _train(Path(model_dir), steps, seed, batch_size, lr, renders_per_step, pool_size, log)


@contextmanager
def deterministic_torch(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads and deterministic algorithms; restore both after."""
    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)


def _train(model_dir: Path, steps: int, seed: int, batch_size: int, lr: float, renders_per_step: int,
           pool_size: int, log: Callable[[str], None] | None) -> dict:
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    t, cq = load_templates(), load_class_questions()
    vid, pad = model.config.video_token_id, tok.pad_token_id
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    pool = _ClipPool(rng, pool_size)
    kinds, kind_p = list(KIND_WEIGHTS), np.array(list(KIND_WEIGHTS.values()))
    counts, count_p = list(FRAME_COUNTS), np.array(list(FRAME_COUNTS.values()))
    t0, ema = time.monotonic(), None
    model.train()
    for step in range(steps):
        frac = step / steps  # 0 → 1 over the run
        nf = int(rng.choice(counts, p=count_p))
        need = batch_size - pool.count(nf)
        for _ in range(max(need, 0)):
            pool.add(nf)
        for _ in range(renders_per_step if need <= 0 else 0):
            pool.add(int(rng.choice(counts, p=count_p)))
        drawn = pool.draw(nf, batch_size)
        examples = []
        for _, event in drawn:
            k = kinds[rng.choice(len(kinds), p=kind_p)]
            if k == "stage2" and event is None:  # stage 2 follows an Abnormal answer only
                k = "stage1"
            examples.append(next(ex for ex in make_examples(rng, event, t, cq) if ex.kind == k))
        scale = min(1.0, (step + 1) / 30) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr * scale
        loss = _answer_loss(model, _collate(tok, examples, [v for v, _ in drawn], vid, pad))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if log and (step + 1) % 50 == 0:
            log(f"step {step + 1:5d}/{steps}  {time.monotonic() - t0:6.1f}s  loss {ema:.4f}")
    model.eval()
    model.save_pretrained(model_dir)
    return {"steps": steps, "seconds": round(time.monotonic() - t0, 1), "loss": ema}


# ---------------------------------------------------------------- held-out evaluation


def _auc(scores: list[float], labels: list[bool]) -> float | None:
    """ROC-AUC by ranks (ties averaged); None when only one class is present."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    if y.all() or not y.any():
        return None
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i: j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n1 = y.sum()
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1)))


def evaluate(
    model_dir: str | Path,
    *,
    n_clips: int = 60,
    seed: int = HELD_OUT_SEED,
    kinds: tuple[str, ...] = tuple(KIND_WEIGHTS),
    batch_size: int = 8,
) -> dict:
    """Held-out accuracy per prompt kind on clips with seeds ``>= seed``, through ``TransformersBackend``.

    stage1/abstract: argmax of the Normal/Abnormal log-probs (plus AUC of P(Abnormal)); yes_no:
    argmax of Yes/No; stage2: the generated ``Group:`` line names the right group.
    """
    from askhint_assets.vlm.backends.transformers_backend import TransformersBackend
    from askhint_assets.vlm.types import VLMRequest

    backend = TransformersBackend(str(model_dir), batch_size=batch_size, max_new_tokens=48)
    rng = np.random.default_rng(seed)
    t, cq = load_templates(), load_class_questions()
    reqs, meta = [], []
    for i in range(n_clips):
        frames, fps, event, _ = sample_clip(rng, seed + i)
        for ex in make_examples(rng, event, t, cq):
            if ex.kind not in kinds:
                continue
            choices = {"stage1": STAGE1_CHOICES, "abstract": STAGE1_CHOICES, "yes_no": YES_NO_CHOICES}.get(ex.kind)
            reqs.append(VLMRequest(ex.messages, frames, fps, choices=choices,
                                   max_new_tokens=48 if ex.kind == "stage2" else 4))
            meta.append(ex)
    t0 = time.monotonic()
    resps = backend.generate(reqs)
    out: dict = {"n_clips": n_clips, "seconds": round(time.monotonic() - t0, 1)}
    for kind in kinds:
        rows = [(ex, r) for ex, r in zip(meta, resps, strict=True) if ex.kind == kind]
        if not rows:
            continue
        if kind == "stage2":
            rows = [(ex, r) for ex, r in rows if ex.event is not None]
            ok = [r.text.splitlines()[0].strip() == f"Group: {GROUP_OF[ex.event]}" if r.text else False
                  for ex, r in rows]
            out[kind] = {"accuracy": round(float(np.mean(ok)), 3) if ok else None, "n": len(rows)}
            continue
        pos = STAGE1_CHOICES[1] if kind != "yes_no" else YES_NO_CHOICES[0]
        neg = STAGE1_CHOICES[0] if kind != "yes_no" else YES_NO_CHOICES[1]
        score = [r.choice_logprobs[pos] - r.choice_logprobs[neg] if r.ok and r.choice_logprobs else 0.0
                 for _, r in rows]
        labels = [ex.label for ex, _ in rows]
        pred = [s > 0 for s in score]
        text_ok = [r.text.strip().startswith(ex.answer) for ex, r in rows]
        out[kind] = {
            "accuracy": round(float(np.mean([p == y for p, y in zip(pred, labels, strict=True)])), 3),
            "text_accuracy": round(float(np.mean(text_ok)), 3),
            "auc": None if (a := _auc(score, labels)) is None else round(a, 3),
            "n": len(rows),
            "positives": int(sum(labels)),
        }
    return out


# ---------------------------------------------------------------- build once, reuse


def recipe(steps: int = SMOKE_TRAIN_STEPS, seed: int = 0, batch_size: int = SMOKE_BATCH_SIZE) -> dict:
    """Everything the smoke model's weights depend on; its hash names the model and decides a rebuild.

    Only fixed inputs: the constants here, the synthetic-clip renderer and the frozen corpus. Nothing
    from the live prompt store, the clock or the machine (thread count and algorithms are fixed too).
    """
    return {
        "version": RECIPE_VERSION,
        "text_config": TEXT_CONFIG,
        "vision_config": VISION_CONFIG,
        "tokenizer_vocab": TOKENIZER_VOCAB,
        "frames": SMOKE_MAX_FRAMES,
        "side": SMOKE_MAX_SIDE,
        "pixels": [SMOKE_MIN_PIXELS, SMOKE_MAX_PIXELS],
        "clip_size": list(SMOKE_CLIP_SIZE),
        "kinds": KIND_WEIGHTS,
        "first_line_weight": FIRST_LINE_WEIGHT,
        "frame_counts": {str(k): v for k, v in FRAME_COUNTS.items()},
        "steps": steps,
        "batch_size": batch_size,
        "lr": SMOKE_LR,
        "seed": seed,
        "threads": SMOKE_TRAIN_THREADS,
        "deterministic_algorithms": True,
        "synth": hash_file(synth.__file__),
        "corpus": {p.relative_to(CORPUS_DIR).as_posix(): hash_file(p)
                   for p in sorted(CORPUS_DIR.rglob("*.yaml"))},
    }


def recipe_hash(r: dict | None = None) -> str:
    """The hash of ``r`` (default: the current recipe), as it appears in the model's folder name."""
    return hash_obj(r if r is not None else recipe())


def model_name(h: str | None = None) -> str:
    """``smoke-qwen2_5_vl-<recipe hash>``: the folder name, and so the model name in fingerprints."""
    return f"{MODEL_PREFIX}-{h or recipe_hash()}"


def weights_sha256(model_dir: str | Path) -> str:
    """sha256 of ``model.safetensors``: what "the same model" means between builds and machines."""
    h = hashlib.sha256()
    with open(Path(model_dir) / "model.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                  "generation_config.json", "video_preprocessor_config.json", "preprocessor_config.json", README,
                  MARKER)


def is_complete(model_dir: str | Path, recipe_hash: str | None = None) -> bool:
    """The folder has every file and a marker saying it finished (with ``recipe_hash``, if given)."""
    d = Path(model_dir)
    if not all((d / f).is_file() for f in REQUIRED_FILES):
        return False
    try:
        marker = json.loads((d / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return bool(marker.get("complete")) and (recipe_hash is None or marker.get("recipe_hash") == recipe_hash)


def fixture_dir(h: str | None = None) -> Path:
    """Where the committed model of recipe ``h`` (default: the current one) lives."""
    return FIXTURE_ROOT / model_name(h)


_README_TEXT = """# Smoke-test model — not a real model

A tiny Qwen2.5-VL (about 1.2 M parameters) built by `askhint_assets.demo.smoke_model`: a byte-level BPE
tokenizer and random weights, then trained for {steps} steps on synthetic clips
(`askhint_assets.demo.synth`, seeds below {limit}) to answer the ASK-Hint prompts of its frozen corpus.

It only exists so the pipeline can run end to end on a CPU and wiring bugs show up.
**Any AUC or AP measured with it means nothing about ASK-Hint or Qwen2.5-VL.**

Recipe, weights sha256 and held-out accuracy: `{marker}`.
"""


def build(out: Path, *, steps: int = SMOKE_TRAIN_STEPS, seed: int = 0, batch_size: int = SMOKE_BATCH_SIZE,
          eval_clips: int = 48, log: Callable[[str], None] | None = print) -> Path:
    """Build the model of ``recipe(steps, seed, batch_size)`` into ``out`` (replaced atomically); return it.

    Builds in a temporary sibling folder and renames it into place, so a reader never sees half a
    model. The caller holds the lock (:func:`ensure_smoke_model`).
    """
    r = recipe(steps, seed, batch_size)
    h = recipe_hash(r)
    t0 = time.monotonic()
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tok = build_tokenizer(tmp)
    build_model(tmp, tok, seed=seed)
    stats = train(tmp, steps=steps, seed=seed, batch_size=batch_size, log=log)
    sha = weights_sha256(tmp)
    acc = {}
    if eval_clips:
        with deterministic_torch(SMOKE_TRAIN_THREADS):
            acc = evaluate(tmp, n_clips=eval_clips, kinds=("stage1", "abstract", "yes_no"))
    marker = {
        "askhint_smoke_test_model": True,
        "note": "smoke-test model: its AUC means nothing",
        "complete": True,
        "recipe_hash": h,
        "recipe": r,
        "weights_sha256": sha,
        "train": stats,
        "held_out": acc,
        "build_seconds": round(time.monotonic() - t0, 1),
    }
    (tmp / README).write_text(_README_TEXT.format(steps=steps, limit=TRAIN_SEED_LIMIT, marker=MARKER))
    (tmp / MARKER).write_text(json.dumps(marker, indent=2, default=str) + "\n")
    trash = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(trash)
    tmp.rename(out)
    shutil.rmtree(trash, ignore_errors=True)
    if log:
        log(f"smoke model built in {out} ({marker['build_seconds']} s); weights sha256 {sha}"
            + (f"; held-out: {acc}" if acc else ""))
    return out


def ensure_smoke_model(
    cache_dir: str | Path | None = None,
    *,
    steps: int = SMOKE_TRAIN_STEPS,
    seed: int = 0,
    batch_size: int = SMOKE_BATCH_SIZE,
    eval_clips: int = 48,
    use_fixture: bool = True,
    force: bool = False,
    log: Callable[[str], None] | None = print,
) -> Path:
    """The smoke model of ``recipe(steps, seed, batch_size)``: the committed fixture when it matches, else
    the one in ``cache_dir/smoke-qwen2_5_vl-<recipe hash>`` (default cache: ``paths.model_cache_dir()``),
    built there first if missing or incomplete.

    One cache for the demo, the tests and the benchmarks: the folder is named by the recipe hash, built
    under a file lock (parallel callers wait, then reuse it) and renamed into place when complete.
    ``force`` rebuilds into the cache even if a fixture or a cached copy exists.
    """
    h = recipe_hash(recipe(steps, seed, batch_size))
    if use_fixture and not force and is_complete(fixture_dir(h), h):
        return fixture_dir(h)
    root = Path(cache_dir) if cache_dir is not None else paths.model_cache_dir()
    out = root / model_name(h)
    if not force and is_complete(out, h):
        return out
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(root / f".{out.name}.lock"):
        if force or not is_complete(out, h):
            if log:
                log(f"building smoke model {out.name} ({steps} steps, one CPU thread; a few minutes)")
            build(out, steps=steps, seed=seed, batch_size=batch_size, eval_clips=eval_clips, log=log)
    return out


def write_fixture(model_dir: Path) -> Path:
    """Copy a built model into ``fixtures/`` under its name and drop the fixtures of other recipes."""
    target = FIXTURE_ROOT / model_dir.name
    FIXTURE_ROOT.mkdir(parents=True, exist_ok=True)
    for old in FIXTURE_ROOT.glob(f"{MODEL_PREFIX}-*"):
        if old != target:
            shutil.rmtree(old)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(model_dir, target)
    return target


def main(argv: list[str] | None = None) -> int:
    """``python -m askhint_assets.demo.smoke_model [--rebuild] [--write-fixture] [--eval-clips N]``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=None, help="model cache folder (default: paths.model_cache_dir())")
    ap.add_argument("--rebuild", action="store_true",
                    help="train from the recipe into the cache even if the fixture exists, and compare sha256")
    ap.add_argument("--write-fixture", action="store_true", help="copy the model into fixtures/ (after --rebuild)")
    ap.add_argument("--steps", type=int, default=SMOKE_TRAIN_STEPS, help="training steps (part of the recipe)")
    ap.add_argument("--eval-clips", type=int, default=0, help="held-out clips to evaluate on (0: none)")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    h = recipe_hash(recipe(a.steps))
    out = ensure_smoke_model(a.cache, steps=a.steps, force=a.rebuild)
    sha = weights_sha256(out)
    print(f"smoke model {out}  recipe {h}  weights sha256 {sha}  ({time.monotonic() - t0:.1f} s)")
    fixture = fixture_dir(h)
    if out != fixture and is_complete(fixture, h):
        same = weights_sha256(fixture) == sha
        print(f"committed fixture {fixture.name}: {'identical' if same else 'DIFFERENT'} weights")
    if a.write_fixture:
        print(f"fixture written: {write_fixture(out)}")
    if a.eval_clips:
        with deterministic_torch(SMOKE_TRAIN_THREADS):
            print(json.dumps(evaluate(out, n_clips=a.eval_clips), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
