"""Q* under a prompt set's rules: the selection the ``guiding_questions`` asset and the prompt-count ablation
share (the pipeline's :mod:`askhint_assets.pipeline.qstar` reads its inputs from the store)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from askhint_assets.prompts import defaults
from askhint_assets.questions.compress import Selected, compress


def select_by_settings(
    questions: list[str],
    emb: np.ndarray,
    labels: np.ndarray,
    ids: list[str],
    target: int,
    prompt_settings: Mapping[str, Any],
) -> list[Selected]:
    """Q* of ``target`` questions from clustered questions, under the prompt set's settings.yaml rules."""
    return compress(
        questions,
        emb,
        labels,
        target_size=target,
        per_cluster=tuple(prompt_settings.get("per_cluster", defaults.PER_CLUSTER)),
        dedup_threshold=float(prompt_settings.get("dedup_threshold", defaults.DEDUP_THRESHOLD)),
        ids=ids,
        linkage=prompt_settings.get("merge_linkage", defaults.MERGE_LINKAGE),
    )
