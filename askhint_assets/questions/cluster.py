"""Semantic clusters of question embeddings with HDBSCAN.

Rules (deterministic for equal input):
- HDBSCAN runs on the L2-normalised vectors (euclidean there is monotone in cosine distance);
- labels are renumbered 0..K-1 in order of each cluster's first question;
- noise points (label -1) join the cluster whose centroid is most cosine-similar (ties: lowest id);
- if HDBSCAN finds no cluster at all (or there are too few points to run it), every question forms
  one cluster (``fallback=True``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from askhint_assets.prompts.defaults import CLUSTERING as _DEFAULT


@dataclass(frozen=True)
class ClusterConfig:
    """HDBSCAN settings; the defaults are a prompt set's (:data:`askhint_assets.prompts.defaults.CLUSTERING`)."""

    min_cluster_size: int = _DEFAULT["min_cluster_size"]
    min_samples: int = _DEFAULT["min_samples"]
    metric: str = _DEFAULT["metric"]  # on L2-normalised vectors; "cosine" also accepted
    cluster_selection_method: str = _DEFAULT["cluster_selection_method"]  # or "leaf"
    selection_epsilon: float = _DEFAULT["selection_epsilon"]

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ClusterConfig:
        """From a prompt set's ``settings["clustering"]``."""
        return cls(**(d or {}))


@dataclass(frozen=True)
class ClusterResult:
    labels: np.ndarray  # (n,) int, every point in 0..n_clusters-1
    n_clusters: int
    noise_reassigned: int  # noise points moved to their nearest cluster
    similarity: np.ndarray  # (n, n) cosine similarity
    noise_mask: np.ndarray  # (n,) bool, True where HDBSCAN said noise (before reassignment)
    fallback: bool = False  # True: HDBSCAN found no cluster; all points form cluster 0, mask all False


def normalise(emb: np.ndarray) -> np.ndarray:
    x = np.asarray(emb, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centroids(x: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Unit-norm mean vector of each cluster, ``(n_clusters, dim)``."""
    return normalise(np.stack([x[labels == k].mean(axis=0) for k in range(n_clusters)]))


def _renumber(raw: np.ndarray) -> np.ndarray:
    out = np.full(len(raw), -1, dtype=np.int64)
    mapping: dict[int, int] = {}
    for i, lab in enumerate(raw.tolist()):
        if lab >= 0:
            out[i] = mapping.setdefault(lab, len(mapping))
    return out


def cluster_questions(emb: np.ndarray, cfg: ClusterConfig | None = None) -> ClusterResult:
    """Cluster ``(n, dim)`` embeddings; see the module docstring for the rules."""
    import hdbscan

    cfg = cfg or ClusterConfig()
    x = normalise(emb)
    n = len(x)
    if n == 0:
        raise ValueError("no questions to cluster")
    sim = np.clip(x @ x.T, -1.0, 1.0)
    labels = np.full(n, -1, dtype=np.int64)
    if n > cfg.min_cluster_size:
        metric = cfg.metric
        model = hdbscan.HDBSCAN(
            min_cluster_size=cfg.min_cluster_size,
            min_samples=cfg.min_samples,
            metric=metric,
            algorithm="generic" if metric == "cosine" else "best",
            cluster_selection_method=cfg.cluster_selection_method,
            cluster_selection_epsilon=float(cfg.selection_epsilon),
            core_dist_n_jobs=1,
        )
        labels = _renumber(np.asarray(model.fit_predict(x)))
    n_clusters = int(labels.max()) + 1
    if n_clusters == 0:
        return ClusterResult(np.zeros(n, dtype=np.int64), 1, 0, sim, np.zeros(n, dtype=bool), fallback=True)
    noise_mask = labels < 0
    noise = np.flatnonzero(noise_mask)
    if len(noise):
        cent = centroids(x, labels, n_clusters)
        labels[noise] = np.argmax(x[noise] @ cent.T, axis=1)
    return ClusterResult(labels, n_clusters, len(noise), sim, noise_mask)
