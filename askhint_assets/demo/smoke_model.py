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
How it is trained lives in ``smoke_train.py`` (hashed into the recipe), its held-out check in ``smoke_eval.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from askhint_assets import paths
from askhint_assets.demo import synth
from askhint_assets.file_lock import exclusive
from askhint_assets.hashing import hash_file, hash_obj
from askhint_assets.prompts.templates import (
    Templates,
)

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
FIRST_LINE_WEIGHT = 3.0  # loss weight of the first line (the group) of a two-line answer
KIND_WEIGHTS = {"stage1": 0.35, "abstract": 0.1, "stage2": 0.25, "yes_no": 0.3}
FRAME_COUNTS = {SMOKE_MAX_FRAMES: 0.7, 12: 0.15, 8: 0.15}
TRAINING_CODE = Path(__file__).with_name("smoke_train.py")  # hashed into the recipe

def corpus_files() -> list[Path]:
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


# ---------------------------------------------------------------- build once, reuse


def recipe(steps: int = SMOKE_TRAIN_STEPS, seed: int = 0, batch_size: int = SMOKE_BATCH_SIZE) -> dict:
    """Everything the smoke model's weights depend on; its hash names the model and decides a rebuild.

    Only fixed inputs: the constants here, the synthetic-clip renderer, the frozen corpus, the training code
    (``smoke_train.py``) and a digest of what it feeds the model (rendered prompts, answers, preprocessed
    frames), so a change to templates, chat rendering or preprocessing that changes the training data names a
    new model. Nothing from the live prompt store, the clock or the machine (thread count and algorithms are
    fixed too).
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
        "training_code": hash_file(TRAINING_CODE),
        "training_inputs": _training_inputs_digest(),
        "corpus": {p.relative_to(CORPUS_DIR).as_posix(): hash_file(p)
                   for p in sorted(CORPUS_DIR.rglob("*.yaml"))},
    }


def _training_inputs_digest() -> str:
    from askhint_assets.demo.smoke_train import training_inputs_digest  # it imports this module's constants

    return training_inputs_digest()


def recipe_hash(r: dict | None = None) -> str:
    """The hash of ``r`` (default: the current recipe), as it appears in the model's folder name."""
    return hash_obj(r if r is not None else recipe())


def model_name(h: str | None = None) -> str:
    """``smoke-qwen2_5_vl-<recipe hash>``: the folder name, and so the model name in fingerprints."""
    return f"{MODEL_PREFIX}-{h or recipe_hash()}"


def built_with() -> dict[str, str]:
    """The libraries whose arithmetic the weights follow: a rebuild is bit-identical only with the same versions
    on the same CPU family (recorded in the marker, not in the recipe, so another environment still finds the
    committed fixture)."""
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "transformers", "tokenizers", "numpy")}


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
    from askhint_assets.demo.smoke_eval import evaluate
    from askhint_assets.demo.smoke_train import build_model, build_tokenizer, deterministic_torch, train

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
        "built_with": built_with(),
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
        then = json.loads((fixture / MARKER).read_text()).get("built_with")
        if not same and then != built_with():
            print(f"  the fixture was built with {then}, this build with {built_with()}")
    if a.write_fixture:
        print(f"fixture written: {write_fixture(out)}")
    if a.eval_clips:
        from askhint_assets.demo.smoke_eval import evaluate
        from askhint_assets.demo.smoke_train import deterministic_torch

        with deterministic_torch(SMOKE_TRAIN_THREADS):
            print(json.dumps(evaluate(out, n_clips=a.eval_clips), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
