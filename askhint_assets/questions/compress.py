"""Compress clustered class questions into the compact guiding set Q*.

Extractive rule of ``compress`` (deterministic for equal input):
1. While there are more clusters than ``max(1, target_size // per_cluster[0])``, merge the closest
   pair (``linkage``, see ``merge_clusters``; ties: lowest ids). Clusters are then renumbered by
   size, largest first (ties: earliest question). The shipped stores use ``average``: with ``ward``
   one merged UCF-Crime cluster held 8 of the 13 classes, so its 2 slots could not cover them.
2. Within a cluster, questions are picked one at a time by ``selection``:
   - ``"facility_location"`` (default): greedy facility location on cosine similarity. Each pick
     maximises the sum, over the cluster's members, of each member's highest cosine to a question
     chosen so far in the cluster (before the first pick every member counts -1, so the first pick
     is the most central question; ties: lower index). Later picks go where the cluster is not yet
     covered, so a cluster with two sub-topics gets one question from each, not two near-synonyms
     of the bigger one;
   - ``"centrality"``: the next most central question: cosine to the cluster's unit-norm mean
     vector (ties: earlier question first). Generic questions tend to win, so topics can vanish.
3. Slots: each cluster, largest first, takes up to ``per_cluster[0]`` questions; then one more per
   cluster per round (largest first) up to ``per_cluster[1]``; if still short (too few clusters),
   further rounds ignore the maximum. A candidate with cosine > ``dedup_threshold`` to an already
   chosen question (of any cluster) is never picked. The result has ``target_size`` questions, or
   fewer only when fewer distinct questions exist; none is an error.

``summarise_with_llm`` / ``summarise_clusters`` are the abstractive alternative of the paper: a
text-only LLM request per cluster asking for N general yes/no questions (``questions.method: llm``;
the ``guiding_questions`` asset asks for as many per merged cluster as the rule above picks there).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from askhint_assets.errors import BackendError, InputError
from askhint_assets.prompts import defaults
from askhint_assets.questions.cluster import centroids, normalise
from askhint_assets.vlm.types import Message, VLMBackend, VLMRequest, VLMResponse


@dataclass(frozen=True)
class Selected:
    """A question of Q*: its (merged) cluster, its centrality there, and the ids it stands for."""

    question: str
    cluster: int
    centrality: float  # cosine to its (merged) cluster's unit-norm mean vector
    source_ids: tuple[str, ...]  # the cluster's question ids, this one first, the rest by centrality
    index: int  # position in the input list


LINKAGES = ("ward", "centroid", "average")
SELECTIONS = ("facility_location", "centrality")


def _merge_cost(x: np.ndarray, lab: np.ndarray, k: int, linkage: str) -> np.ndarray:
    """Pairwise merge cost (lower merges first); the lower triangle and diagonal are +inf."""
    if linkage == "centroid":
        cent = centroids(x, lab, k)
        cost = -(cent @ cent.T)
    elif linkage == "average":
        onehot = np.eye(k)[lab]
        size = onehot.sum(axis=0)
        cost = -(onehot.T @ (x @ x.T) @ onehot) / (size[:, None] * size[None, :])
    elif linkage == "ward":
        mean = np.stack([x[lab == c].mean(axis=0) for c in range(k)])
        size = np.bincount(lab, minlength=k).astype(np.float64)
        dist = ((mean[:, None, :] - mean[None, :, :]) ** 2).sum(-1)
        cost = dist * (size[:, None] * size[None, :]) / (size[:, None] + size[None, :])
    else:
        raise ValueError(f"linkage must be one of {list(LINKAGES)}, got {linkage!r}")
    cost[np.tril_indices(k)] = np.inf
    return cost


def merge_clusters(emb: np.ndarray, labels: np.ndarray, max_clusters: int, linkage: str = "ward") -> np.ndarray:
    """Merge the closest cluster pairs until at most ``max_clusters``; ids 0.. by size, largest first.

    ``ward``: cost n_a·n_b/(n_a+n_b)·‖m_a−m_b‖² of the mean vectors, so small outlier clusters are
    absorbed before big ones chain together; ``centroid``: highest centroid cosine first;
    ``average``: highest mean pairwise cosine between the two clusters' questions first (UPGMA).
    """
    x = normalise(emb)
    _, lab = np.unique(np.asarray(labels, dtype=np.int64), return_inverse=True)
    while lab.max() + 1 > max(1, max_clusters):
        k = int(lab.max()) + 1
        a, b = np.unravel_index(int(np.argmin(_merge_cost(x, lab, k, linkage))), (k, k))
        lab[lab == b] = a
        _, lab = np.unique(lab, return_inverse=True)
    k = int(lab.max()) + 1
    sizes = np.bincount(lab, minlength=k)
    first = np.array([np.flatnonzero(lab == c)[0] for c in range(k)])
    order = sorted(range(k), key=lambda c: (-sizes[c], first[c]))
    remap = np.empty(k, dtype=np.int64)
    remap[order] = np.arange(k)
    return remap[lab]


def compress(
    questions: list[str],
    emb: np.ndarray,
    labels: np.ndarray,
    target_size: int = defaults.TARGET_SIZE,
    per_cluster: tuple[int, int] = defaults.PER_CLUSTER,
    dedup_threshold: float = defaults.DEDUP_THRESHOLD,
    ids: list[str] | None = None,
    linkage: str = defaults.MERGE_LINKAGE,
    selection: str = "facility_location",
) -> list[Selected]:
    """Pick Q* from clustered questions by the rule in the module docstring.

    The result lists the clusters in id order, each cluster's questions in the order picked.
    """
    n = len(questions)
    if n == 0:
        raise InputError("no questions to compress", field="questions")
    if not (len(emb) == len(labels) == n) or (ids is not None and len(ids) != n):
        raise ValueError("questions, emb, labels (and ids) must have the same length")
    if target_size < 1 or not 1 <= per_cluster[0] <= per_cluster[1]:
        raise ValueError(f"bad target_size {target_size} or per_cluster {per_cluster}")
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {list(SELECTIONS)}, got {selection!r}")
    ids = list(ids) if ids is not None else [str(i) for i in range(n)]
    x = normalise(emb)
    lab = merge_clusters(x, labels, target_size // per_cluster[0], linkage)
    k = int(lab.max()) + 1
    cent = centroids(x, lab, k)
    central = np.einsum("ij,ij->i", x, cent[lab])
    members = [np.flatnonzero(lab == c) for c in range(k)]
    ranked = [sorted(m.tolist(), key=lambda i: (-central[i], i)) for m in members]
    cover = [np.full(len(m), -1.0) for m in members]  # each member's best cosine to its cluster's picks
    cursor = [0] * k
    chosen: dict[int, list[int]] = {c: [] for c in range(k)}
    picked: list[int] = []

    def distinct(i: int) -> bool:
        return not picked or float(np.max(x[picked] @ x[i])) <= dedup_threshold

    def next_pick(c: int) -> int | None:
        if selection == "centrality":
            while cursor[c] < len(ranked[c]):
                i = ranked[c][cursor[c]]
                cursor[c] += 1
                if distinct(i):
                    return i
            return None
        cands = [i for i in members[c].tolist() if i not in chosen[c] and distinct(i)]
        if not cands:
            return None
        sim = x[members[c]] @ x[cands].T  # (members, candidates)
        best = int(np.argmax(np.maximum(cover[c][:, None], sim).sum(axis=0)))  # first max: lowest index
        cover[c] = np.maximum(cover[c], sim[:, best])
        return cands[best]

    def take(c: int) -> bool:
        i = next_pick(c)
        if i is None:
            return False
        chosen[c].append(i)
        picked.append(i)
        return True

    for c in range(k):
        while len(chosen[c]) < per_cluster[0] and len(picked) < target_size and take(c):
            pass
    for cap in (per_cluster[1], None):
        progress = True
        while len(picked) < target_size and progress:
            progress = False
            for c in range(k):
                if len(picked) < target_size and (cap is None or len(chosen[c]) < cap) and take(c):
                    progress = True
    out = []
    for c in range(k):
        for i in chosen[c]:
            rest = tuple(ids[j] for j in ranked[c] if j != i)
            out.append(Selected(questions[i], c, round(float(central[i]), 6), (ids[i], *rest), i))
    return out


def clusters_from_labels(questions: list[str], labels: np.ndarray) -> dict[int, list[str]]:
    """Cluster id → its questions, in input order."""
    out: dict[int, list[str]] = {}
    for q, lab in zip(questions, np.asarray(labels).tolist(), strict=True):
        out.setdefault(int(lab), []).append(q)
    return dict(sorted(out.items()))


SUMMARY_MAX_NEW_TOKENS = 256  # per summary request; the backend's own ``model.max_new_tokens`` caps it
SUMMARY_SYSTEM = "You write short, general yes/no questions that guide a video anomaly detector."
SUMMARY_PROMPT = (
    "These yes/no questions each check a surveillance video for one kind of anomaly:\n{questions}\n"
    "Write {n} general yes/no questions about visible actions that together cover all of them. "
    'Write one question per line, each ending with "?", and nothing else.'
)
_BULLET = re.compile(r"^\s*(?:[-*•]+|\(?\d+[.):]|Q\d+[.):])\s*")


def _json_list(text: str) -> list[str] | None:
    """The strings of the first JSON list in ``text`` (code fences and prose around it allowed)."""
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end <= start:
        return None
    try:
        items = json.loads(text[start : end + 1])
    except ValueError:
        return None
    return [i for i in items if isinstance(i, str)] if isinstance(items, list) else None


def parse_questions(text: str) -> list[str]:
    """The questions in ``text``: a JSON list of strings, else its lines; only those ending with "?",
    bullets/numbers and quotes removed, whitespace collapsed, deduplicated (case-insensitive)."""
    items = _json_list(text)
    out: list[str] = []
    for line in items if items is not None else text.splitlines():
        q = " ".join(_BULLET.sub("", line).strip().strip("\"'`").split())
        if len(q) > 1 and q.endswith("?") and q.casefold() not in {o.casefold() for o in out}:
            out.append(q)
    return out


@dataclass(frozen=True)
class ClusterSummary:
    """One cluster's LLM answer: the parsed questions (at most ``wanted``) or why it is unusable."""

    cluster: int
    wanted: int
    questions: tuple[str, ...]
    problem: str | None = None  # None: the answer parsed (it may still hold fewer than ``wanted``)
    text: str = ""


def summary_requests(
    clusters: dict[int, list[str]],
    per_cluster: int | dict[int, int],
    *,
    max_new_tokens: int = SUMMARY_MAX_NEW_TOKENS,
    system: str = SUMMARY_SYSTEM,
    prompt: str = SUMMARY_PROMPT,
) -> dict[int, VLMRequest]:
    """The text-only request of each cluster (cluster id → request), clusters in id order."""
    out: dict[int, VLMRequest] = {}
    for c in sorted(clusters):
        n = per_cluster[c] if isinstance(per_cluster, dict) else per_cluster
        text = prompt.format(questions="\n".join(f"- {q}" for q in clusters[c]), n=n)
        out[c] = VLMRequest(
            messages=[Message("system", system), Message("user", text)], frames=None, max_new_tokens=max_new_tokens
        )
    return out


def summarise_clusters(
    send: Callable[[list[VLMRequest]], list[VLMResponse]],
    clusters: dict[int, list[str]],
    per_cluster: int | dict[int, int],
    *,
    max_new_tokens: int = SUMMARY_MAX_NEW_TOKENS,
    system: str = SUMMARY_SYSTEM,
    prompt: str = SUMMARY_PROMPT,
) -> dict[int, ClusterSummary]:
    """Ask for N general questions per cluster through ``send`` (``backend.generate``, or a
    ``CachedRunner``'s answers); a failed or question-less answer is reported in ``problem``."""
    reqs = summary_requests(clusters, per_cluster, max_new_tokens=max_new_tokens, system=system, prompt=prompt)
    responses = send(list(reqs.values()))
    if len(responses) != len(reqs):
        raise BackendError(f"backend answered {len(responses)} of {len(reqs)} summary requests")
    out: dict[int, ClusterSummary] = {}
    for c, resp in zip(reqs, responses, strict=True):
        n = per_cluster[c] if isinstance(per_cluster, dict) else per_cluster
        if not resp.ok:
            out[c] = ClusterSummary(c, n, (), f"summary request failed: {resp.error}", resp.text)
            continue
        qs = parse_questions(resp.text)
        problem = None if qs else f'the answer has no question ending with "?": {resp.text[:200]!r}'
        out[c] = ClusterSummary(c, n, tuple(qs[:n]), problem, resp.text)
    return out


def summarise_with_llm(
    backend: VLMBackend,
    clusters: dict[int, list[str]],
    per_cluster: int | dict[int, int],
    *,
    max_new_tokens: int = SUMMARY_MAX_NEW_TOKENS,
    system: str = SUMMARY_SYSTEM,
    prompt: str = SUMMARY_PROMPT,
) -> list[str]:
    """Ask ``backend`` (text-only) for N general questions per cluster; clusters in id order.

    Keeps the first N parsed questions of each answer (fewer if the model wrote fewer); an answer
    that failed or holds no line ending with "?" raises ``BackendError`` naming the cluster.
    """
    out: list[str] = []
    for c, summary in summarise_clusters(
        backend.generate, clusters, per_cluster, max_new_tokens=max_new_tokens, system=system, prompt=prompt
    ).items():
        if summary.problem:
            raise BackendError(f"cluster {c}: {summary.problem}")
        out.extend(summary.questions)
    return out
