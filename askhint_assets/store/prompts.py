"""Queries of the prompt chain: prompt versions, question embeddings, clusters and question sets."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from askhint_assets.errors import MissingArtefactError
from askhint_assets.store.db import Store, now


def record_prompt_version(
    st: Store, *, version: str, prompt_set: str, kind: str, content: dict, files: dict,
    produced_by: str = "prompts_store (hand-curated files)", parent: str | None = None,
) -> str | None:
    """Store a prompt version once; its parent is ``parent`` or the newest other version of the same set and
    kind. Returns the parent."""
    if parent is None:
        parent = st.scalar(
            "SELECT version FROM prompt_versions WHERE prompt_set = ? AND kind = ? AND version <> ? "
            "ORDER BY created_at DESC LIMIT 1",
            [prompt_set, kind, version],
        )
    if not st.scalar("SELECT count(*) FROM prompt_versions WHERE version = ?", [version]):
        st.upsert("prompt_versions", [{
            "version": version, "prompt_set": prompt_set, "kind": kind, "parent": parent,
            "produced_by": produced_by, "content": json.dumps(content), "files": json.dumps(files),
            "created_at": now(),
        }])
    return parent


def prompt_version_content(st: Store, version: str, *, made_by: str = "class_prompts") -> dict:
    """The stored content of a prompt version (class prompts or templates)."""
    raw = st.scalar("SELECT content FROM prompt_versions WHERE version = ?", [version])
    if raw is None:
        raise MissingArtefactError(f"prompt version {version} is not in prompt_versions; materialize {made_by}")
    return json.loads(raw)


def store_embeddings(st: Store, prompt_version: str, embedder: str, rows: list[dict], vectors: np.ndarray) -> None:
    st.upsert("question_embeddings", [
        {"prompt_version": prompt_version, "embedder": embedder, "question_id": r["question_id"],
         "class": r["class"], "question": r["question"], "embedding": v.astype(float).tolist()}
        for r, v in zip(rows, vectors, strict=True)
    ])


def load_embeddings(
    st: Store, prompt_version: str, embedder: str
) -> tuple[list[str], list[str], list[str], np.ndarray]:
    """Question ids, classes, texts and embeddings of one prompt version, ordered by question id."""
    df = st.query(
        "SELECT question_id, class, question, embedding FROM question_embeddings "
        "WHERE prompt_version = ? AND embedder = ? ORDER BY question_id",
        [prompt_version, embedder],
    )
    emb = np.array(df["embedding"].to_list(), dtype=np.float32)
    return df["question_id"].to_list(), df["class"].to_list(), df["question"].to_list(), emb


def store_clusters(st: Store, rows: list[dict[str, Any]]) -> None:
    st.upsert("question_clusters", rows)


def cluster_labels(st: Store, clustering_id: str) -> dict[str, int]:
    """Question id → cluster of one clustering."""
    df = st.query("SELECT question_id, cluster FROM question_clusters WHERE clustering_id = ?", [clustering_id])
    return dict(zip(df["question_id"].to_list(), df["cluster"].to_list(), strict=True))


def cluster_coverage(st: Store, clustering_id: str) -> dict[str, dict]:
    """Class → its clusters and question count in one clustering."""
    df = st.query(
        "SELECT class, list(DISTINCT cluster ORDER BY cluster) AS clusters, count(*) AS questions "
        "FROM question_clusters WHERE clustering_id = ? GROUP BY class ORDER BY class",
        [clustering_id],
    )
    return {r["class"]: r for r in df.iter_rows(named=True)}


ABLATION_METHOD = "ablation"
"""The ``method`` of a question set recorded only by the prompt-count ablation (not a Q* version)."""


def record_question_set(st: Store, row: dict[str, Any]) -> None:
    """Store a question set once (its id is a hash of its questions). A Q* that equals a set the ablation
    recorded first takes its row over, so the history of Q* versions still lists it."""
    method = st.scalar("SELECT method FROM question_sets WHERE question_set = ?", [row["question_set"]])
    if method is None or (method == ABLATION_METHOD and row["method"] != ABLATION_METHOD):
        st.upsert("question_sets", [{**row, "created_at": now()}])


def question_set_questions(st: Store, question_set: str) -> list[str] | None:
    return st.scalar("SELECT questions FROM question_sets WHERE question_set = ?", [question_set])
