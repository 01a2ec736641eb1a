"""Q* from stored clusters: the store's embeddings and cluster labels, selected by the core's rules."""

from __future__ import annotations

import numpy as np

from askhint_assets.questions.select import select_by_settings
from askhint_assets.store import Store
from askhint_assets.store.prompts import cluster_labels, load_embeddings, prompt_version_content


def load_embeddings_of(st: Store, ref: dict) -> tuple[list[str], list[str], list[str], np.ndarray]:
    """Question ids, classes, texts and embeddings of the embedding set a prompt-chain reference names."""
    return load_embeddings(st, ref["version"], ref["embedder"])


def select_qstar(st: Store, clusters_ref: dict, target: int) -> tuple[list, list[str], np.ndarray]:
    """Q* of ``target`` questions from stored clusters (the prompt set's settings.yaml rules).

    Returns the selected questions, the class of every input question and the cluster labels.
    """
    prompt_settings = prompt_version_content(st, clusters_ref["version"])["settings"]
    qids, classes, questions, emb = load_embeddings_of(st, clusters_ref)
    label_of = cluster_labels(st, clusters_ref["clustering_id"])
    labels = np.array([label_of[i] for i in qids])
    selected = select_by_settings(questions, emb, labels, qids, target, prompt_settings)
    return selected, classes, labels
