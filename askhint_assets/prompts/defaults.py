"""The defaults of a prompt set's Q* build settings (``settings.yaml``), written once: the loader fills them
in, the clustering and selection code take them as their own defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TARGET_SIZE = 6
"""Q* size where neither the pipeline settings nor the prompt set give one (settings.yaml requires it)."""
PER_CLUSTER = (2, 3)  # [min, max] questions kept per merged cluster
DEDUP_THRESHOLD = 0.95  # a question this cosine-similar to a chosen one is never picked
MERGE_LINKAGE = "ward"
CLUSTERING: dict[str, Any] = {  # HDBSCAN (askhint_assets.questions.cluster.ClusterConfig)
    "min_cluster_size": 2,
    "min_samples": 1,
    "metric": "euclidean",
    "cluster_selection_method": "eom",
    "selection_epsilon": 0.0,
}


def qstar_target(configured: int | None, prompt_settings: Mapping[str, Any]) -> int:
    """The Q* size: the pipeline settings' ``questions.target_size``, else the prompt set's."""
    return configured or int(prompt_settings.get("target_size", TARGET_SIZE))
