"""Q* from stored clusters: the store's embeddings and cluster labels, selected by the core's rules, rewritten
per merged cluster by a model where ``questions.method`` is ``llm``, and recorded in ``question_sets``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from askhint_assets import ids
from askhint_assets.pipeline.runner import CachedRunner, RunStats
from askhint_assets.prompts.defaults import qstar_target
from askhint_assets.questions.compress import SUMMARY_MAX_NEW_TOKENS, Selected, summarise_clusters
from askhint_assets.questions.select import select_by_settings
from askhint_assets.refs import ClustersRef, EmbeddingsRef, FrozenDict, QStarRef
from askhint_assets.store import Store
from askhint_assets.store.prompts import (
    cluster_labels,
    load_embeddings,
    prompt_version_content,
    record_question_set,
)
from askhint_assets.vlm.types import VLMBackend, VLMRequest, VLMResponse

RunRequests = Callable[[Sequence[VLMRequest]], list[VLMResponse]]
"""Answers requests in order (a :class:`CachedRunner`'s responses, or a fake in a test)."""


def load_embeddings_of(
    st: Store, ref: EmbeddingsRef | ClustersRef
) -> tuple[list[str], list[str], list[str], np.ndarray]:
    """Question ids, classes, texts and embeddings of the embedding set a prompt-chain reference names."""
    return load_embeddings(st, ref.version, ref.embedder)


def select_qstar(st: Store, clusters_ref: ClustersRef, target: int) -> tuple[list, list[str], np.ndarray]:
    """Q* of ``target`` questions from stored clusters (the prompt set's settings.yaml rules).

    Returns the selected questions, the class of every input question and the cluster labels.
    """
    prompt_settings = prompt_version_content(st, clusters_ref.version)["settings"]
    qids, classes, questions, emb = load_embeddings_of(st, clusters_ref)
    label_of = cluster_labels(st, clusters_ref.clustering_id)
    labels = np.array([label_of[i] for i in qids])
    selected = select_by_settings(questions, emb, labels, qids, target, prompt_settings)
    return selected, classes, labels


@dataclass(frozen=True)
class Rewrite:
    """Q* after the model rewrote each merged cluster's picks: the questions, the class(es) each stands for,
    a markdown line per question and each cluster's status (``llm`` or ``fallback: <reason>``)."""

    questions: tuple[str, ...]
    classes: tuple[str, ...]
    lines: tuple[str, ...]
    status: dict[str, str]


def rewrite_clusters(
    selected: list[Selected], qids: list[str], classes: list[str], questions: list[str], run: RunRequests
) -> Rewrite:
    """Rewrite each merged cluster's picks through ``run`` (as many questions as were picked there).

    ``qids``, ``classes`` and ``questions`` describe every input question (the order the selection saw).
    A cluster keeps its picks ("fallback: reason") when the answer failed, parsed to fewer questions than
    picked, or repeats a question of another cluster (its picks, or what an earlier cluster took).
    """
    text_of = dict(zip(qids, questions, strict=True))
    class_of = dict(zip(qids, classes, strict=True))
    order = {qid: i for i, qid in enumerate(qids)}
    picks: dict[int, list[Selected]] = {}
    for sel in selected:
        picks.setdefault(sel.cluster, []).append(sel)
    members = {c: sorted(p[0].source_ids, key=order.__getitem__) for c, p in picks.items()}
    summaries = summarise_clusters(
        run,
        {c: [text_of[i] for i in m] for c, m in members.items()},
        {c: len(p) for c, p in picks.items()},
        max_new_tokens=SUMMARY_MAX_NEW_TOKENS,
    )
    qs: list[str] = []
    q_classes: list[str] = []
    lines: list[str] = []
    status: dict[str, str] = {}
    accepted: set[str] = set()
    for c in sorted(picks):
        summary = summaries[c]
        others = accepted | {sel.question.casefold() for sel in selected if sel.cluster != c}
        problem = summary.problem
        if problem is None and len(summary.questions) < summary.wanted:
            problem = f"{len(summary.questions)} of {summary.wanted} questions in the answer {summary.text[:200]!r}"
        dup = next((q for q in summary.questions if q.casefold() in others), None)
        if problem is None and dup is not None:
            problem = f"repeats a question of another cluster: {dup!r}"
        if problem is None:
            chosen = list(summary.questions)
            cls = ", ".join(dict.fromkeys(class_of[i] for i in members[c]))
            q_classes += [cls] * len(chosen)
            lines += [f"{q}  _(cluster {c}, LLM summary of {len(members[c])} questions)_" for q in chosen]
            status[f"cluster {c}"] = "llm"
        else:
            chosen = [sel.question for sel in picks[c]]
            q_classes += [classes[sel.index] for sel in picks[c]]
            lines += [f"{sel.question}  _(cluster {c}, from {classes[sel.index]}; LLM fallback)_" for sel in picks[c]]
            status[f"cluster {c}"] = f"fallback: {problem}"
        qs += chosen
        accepted |= {q.casefold() for q in chosen}
    return Rewrite(tuple(qs), tuple(q_classes), tuple(lines), status)


@dataclass(frozen=True)
class QuestionSet:
    """A recorded Q*: its id, questions, the class(es) each stands for, a markdown line per question, the
    settings stored with it; with ``method: llm`` also who wrote it, each cluster's status and the requests."""

    question_set: str
    questions: tuple[str, ...]
    classes: tuple[str, ...]
    lines: tuple[str, ...]
    settings: dict
    method: str
    target_size: int
    n_clusters: int
    produced_by: str | None = None
    cluster_status: dict[str, str] = field(default_factory=dict)
    stats: RunStats | None = None

    def ref(self, clusters: ClustersRef) -> QStarRef:
        """The ``guiding_questions`` value: this Q* and the clusters it was chosen from (with ``method: llm``
        also the method, who wrote it and each cluster's status)."""
        written = {} if self.produced_by is None else {
            "method": self.method, "produced_by": self.produced_by, "cluster_status": FrozenDict(self.cluster_status)}
        return QStarRef(
            question_set=self.question_set,
            questions=self.questions,
            prompt_set=clusters.prompt_set,
            prompt_version=clusters.version,
            clustering_id=clusters.clustering_id,
            target_size=self.target_size,
            n_clusters=self.n_clusters,
            question_classes=self.classes,
            **written,
        )


def guiding_question_set(
    st: Store,
    ref: ClustersRef,
    method: str,
    target_size: int | None = None,
    *,
    backend: VLMBackend | None = None,
    model_label: str = "",
    run_id: str = "",
    batch_size: int = 8,
) -> QuestionSet:
    """Q* of the clusters ``ref`` (a ``question_clusters`` reference), recorded in ``question_sets``.

    ``target_size``: the pipeline settings' size (None: the prompt set's). ``method`` ``llm`` rewrites each
    merged cluster's picks with ``backend`` (cached requests under ``run_id``), named ``model_label`` in the
    record; any other method keeps the deterministic selection and takes no backend.
    """
    if (method == "llm") != (backend is not None):
        raise ValueError(f"method {method!r} {'needs' if method == 'llm' else 'takes no'} backend")
    prompt_settings = prompt_version_content(st, ref.version)["settings"]
    target = qstar_target(target_size, prompt_settings)
    selected, classes, labels = select_qstar(st, ref, target)
    settings = {**prompt_settings, "target_size": target, "method": method}
    extra: dict = {}
    if backend is None:
        qs = tuple(sel.question for sel in selected)
        q_classes = tuple(classes[sel.index] for sel in selected)
        lines = tuple(f"{sel.question}  _(cluster {sel.cluster}, from {classes[sel.index]})_" for sel in selected)
    else:
        runner = CachedRunner(backend, st, run_id=run_id, batch_size=batch_size)
        qids, _, questions, _ = load_embeddings_of(st, ref)
        rw = rewrite_clusters(selected, qids, classes, questions, lambda reqs: [r for _, r in runner.run(reqs)])
        qs, q_classes, lines = rw.questions, rw.classes, rw.lines
        produced_by = f"method llm, model {model_label}"
        settings |= {"produced_by": produced_by, "clusters": rw.status}
        extra = {"produced_by": produced_by, "cluster_status": rw.status, "stats": runner.stats}
    qset = ids.question_set_id(list(qs))
    record_question_set(st, {
        "question_set": qset,
        "questions": list(qs),
        "prompt_set": ref.prompt_set,
        "prompt_version": ref.version,
        "clustering_id": ref.clustering_id,
        "settings": json.dumps(settings),
        "method": method,
    })
    n_clusters = int(labels.max()) + 1 if len(labels) else 0
    return QuestionSet(qset, qs, q_classes, lines, settings, method, target, n_clusters, **extra)
