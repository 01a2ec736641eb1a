"""Held-out accuracy of the smoke-test model per prompt kind (clips it never trained on)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from askhint_assets.demo.smoke_model import GROUP_OF, HELD_OUT_SEED, KIND_WEIGHTS, load_class_questions, load_templates
from askhint_assets.demo.smoke_train import make_examples, sample_clip
from askhint_assets.prompts.templates import STAGE1_CHOICES, YES_NO_CHOICES


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
            "auc": round(float(roc_auc_score(labels, score)), 3) if 0 < sum(labels) < len(labels) else None,
            "n": len(rows),
            "positives": int(sum(labels)),
        }
    return out


