"""How the smoke-test model is made: its tokenizer, its random initial weights, its synthetic training
examples and the training loop.

Everything the weights depend on is here or in the constants of :mod:`askhint_assets.demo.smoke_model`; the
recipe hashes this file and what it feeds the model (:func:`training_inputs_digest`), so a change to the
training code or to the prompts and frames it trains on names a new model (and needs a new fixture).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from askhint_assets.demo.smoke_model import (
    FIRST_LINE_WEIGHT,
    FRAME_COUNTS,
    KIND_WEIGHTS,
    SMOKE_BATCH_SIZE,
    SMOKE_CLIP_SIZE,
    SMOKE_LR,
    SMOKE_MAX_FRAMES,
    SMOKE_MAX_PIXELS,
    SMOKE_MIN_PIXELS,
    SMOKE_TRAIN_STEPS,
    SMOKE_TRAIN_THREADS,
    TEXT_CONFIG,
    TOKENIZER_VOCAB,
    TRAIN_SEED_LIMIT,
    VISION_CONFIG,
    corpus_files,
    load_class_questions,
    load_templates,
    stage2_answer,
    write_processor_configs,
)
from askhint_assets.demo.synth import EVENT_KINDS, render_clip
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


def _corpus(t: Templates, class_questions: dict[str, tuple[str, ...]]) -> list[str]:
    """The texts the tokenizer is trained on: the frozen corpus, generic words, rendered prompts, answers."""
    qs = [q for qq in class_questions.values() for q in qq]
    texts = [*(p.read_text(encoding="utf-8") for p in corpus_files()), _GENERIC, t.system, t.abstract, *t.groups]
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


@lru_cache(maxsize=1)
def training_inputs_digest(n_clips: int = 2, seed: int = 0) -> str:
    """sha256 of what training feeds the model for a fixed draw: every prompt kind's rendered text and answer,
    and the preprocessed frames, of ``n_clips`` clips. It moves when the code under the training loop does
    (templates, chat rendering, preprocessing, the clip renderer), not when an edit leaves them unchanged."""
    rng = np.random.default_rng(seed)
    t, cq = load_templates(), load_class_questions()
    h = hashlib.sha256()
    for i in range(n_clips):
        frames, fps, event, _ = sample_clip(rng, seed + i)
        video = _video_inputs(frames, fps)
        for key in ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts"):
            h.update(np.ascontiguousarray(video[key]).tobytes())
        h.update(str(video["num_video_tokens"]).encode())
        for ex in make_examples(rng, event, t, cq):
            placeholder = families.video_placeholder("qwen2_5_vl")
            text = families.expand_video_pads(families.render_prompt("qwen2_5_vl", ex.messages, placeholder),
                                              video["num_video_tokens"])
            h.update(f"{ex.kind}\0{text}\0{ex.answer}\0".encode())
    return h.hexdigest()
