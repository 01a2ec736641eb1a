"""Class questions → embeddings → clusters: the core's embedder and HDBSCAN over the questions of a stored
class-prompt version, the results written to the store (tables ``question_embeddings``, ``question_clusters``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from askhint_assets import ids
from askhint_assets.pipeline.qstar import load_embeddings_of
from askhint_assets.questions.cluster import ClusterConfig, ClusterResult, cluster_questions
from askhint_assets.questions.embed import Embedder
from askhint_assets.refs import EmbeddingsRef
from askhint_assets.store import Store
from askhint_assets.store.prompts import prompt_version_content, store_clusters, store_embeddings


@dataclass(frozen=True)
class Embedded:
    """The embeddings of one class-prompt version: the embedder's name (the ``embedder`` column), its data
    version, the number of questions and the vectors' dimension."""

    embedder: str
    version: str
    n: int
    dim: int


def embed_class_questions(st: Store, prompt_version: str, embedder: Embedder) -> Embedded:
    """Embed every class question of ``prompt_version`` and store the vectors."""
    rows = prompt_version_content(st, prompt_version)["questions"]
    vectors = embedder.embed([r["question"] for r in rows])
    fingerprint = embedder.fingerprint()
    name = ids.embedder_name(fingerprint)
    store_embeddings(st, prompt_version, name, rows, vectors)
    return Embedded(name, ids.embeddings_version(prompt_version, fingerprint), len(rows), int(vectors.shape[1]))


@dataclass(frozen=True)
class Clustering:
    """A stored clustering: its id, the class and text of every question (by question id) and the result."""

    clustering_id: str
    classes: list[str]
    questions: list[str]
    result: ClusterResult


def cluster_stored_questions(st: Store, embeddings_ref: EmbeddingsRef) -> Clustering:
    """Cluster the embeddings ``embeddings_ref`` names under the prompt set's ``clustering`` settings and store
    one row per question (its cluster, whether HDBSCAN called it noise, the settings)."""
    content = prompt_version_content(st, embeddings_ref.version)
    cfg = ClusterConfig.from_dict(content["settings"].get("clustering"))
    qids, classes, questions, emb = load_embeddings_of(st, embeddings_ref)
    result = cluster_questions(emb, cfg)
    clustering_id = ids.clustering_id(embeddings_ref, asdict(cfg), result.labels.tolist())
    settings = json.dumps(asdict(cfg))
    store_clusters(st, [
        {
            "clustering_id": clustering_id,
            "prompt_version": embeddings_ref.version,
            "question_id": qid,
            "class": c,
            "question": q,
            "cluster": int(lab),
            "was_noise": bool(result.noise_mask[i]),
            "settings": settings,
        }
        for i, (qid, c, q, lab) in enumerate(zip(qids, classes, questions, result.labels, strict=True))
    ])
    return Clustering(clustering_id, classes, questions, result)
