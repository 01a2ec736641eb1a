"""Prompt assets: prompt store → class prompts → embeddings → clusters → Q*; and the templates."""


import json
from dataclasses import asdict

import dagster as dg
import numpy as np
from dagster import AssetExecutionContext

from askhint_assets.hashing import hash_obj, hash_tree
from askhint_assets.orchestration.metadata import image_md, md_table
from askhint_assets.orchestration.resources import EmbedderResource, StoreResource, VLMResource, model_label
from askhint_assets.prompts.loader import PromptSet, load_prompt_set, question_table
from askhint_assets.questions.cluster import ClusterConfig, cluster_questions
from askhint_assets.questions.compress import SUMMARY_PROMPT, SUMMARY_SYSTEM, Selected, compress, summarise_clusters
from askhint_assets.settings import PipelineSettings
from askhint_assets.store import Store, now
from askhint_assets.vlm.cache import CachedRunner

GROUP = "prompts"


def class_prompt_content(ps: PromptSet) -> dict:
    """What determines Q*: taxonomy, class-wise questions and the Q* settings (not the templates)."""
    return {
        "prompt_set": ps.name,
        "groups": list(ps.groups),
        "classes": {c: asdict(info) for c, info in ps.classes.items()},
        "questions": question_table(ps),
        "settings": ps.settings,
    }


def load_class_prompts(st, version: str) -> dict:
    """The stored content of a class-prompt version (written by ``class_prompts``)."""
    raw = st.scalar("SELECT content FROM prompt_versions WHERE version = ?", [version])
    if raw is None:
        raise dg.Failure(f"prompt version {version} is not in prompt_versions; materialize class_prompts")
    return json.loads(raw)


def template_content(ps: PromptSet) -> dict:
    return {"prompt_set": ps.name, "templates": asdict(ps.templates)}


def _record_version(store, ps: PromptSet, kind: str, version: str, content: dict) -> str | None:
    """Store a prompt version once, with its parent (the previous version of the same kind)."""
    parent = store.scalar(
        "SELECT version FROM prompt_versions WHERE prompt_set = ? AND kind = ? AND version <> ? "
        "ORDER BY created_at DESC LIMIT 1",
        [ps.name, kind, version],
    )
    exists = store.scalar("SELECT count(*) FROM prompt_versions WHERE version = ?", [version])
    if not exists:
        store.upsert(
            "prompt_versions",
            [
                {
                    "version": version,
                    "prompt_set": ps.name,
                    "kind": kind,
                    "parent": parent,
                    "produced_by": "prompts_store (hand-curated files)",
                    "content": json.dumps(content),
                    "files": json.dumps(ps.files),
                    "created_at": now(),
                }
            ],
        )
    return parent


def build_prompt_assets(s: PipelineSettings, source_group: str = GROUP) -> list:
    """The prompt chain of ``s``'s prompt set (``source_group``: the group of the observed ``prompt_store``,
    which cannot be regrouped once built)."""
    prompt_dir = s.prompt_dir()
    qcfg = s.questions

    @dg.observable_source_asset(
        name="prompt_store",
        group_name=source_group,
        description=f"The YAML files of prompt set `{s.dataset.prompt_set}` in `{prompt_dir}` "
        "(observed: a new data version whenever their content changes).",
    )
    def prompt_store() -> dg.DataVersion:
        return dg.DataVersion(hash_tree(prompt_dir, "*.yaml"))

    @dg.asset(
        group_name=GROUP,
        deps=[prompt_store],
        code_version="1",
        description="Taxonomy and class-wise yes/no questions, validated; one row per version in "
        "`prompt_versions`. The data version is a hash of the parsed content, so edits to comments "
        "or whitespace stop here.",
    )
    def class_prompts(context: AssetExecutionContext, store: StoreResource) -> dg.Output[dict]:
        ps = load_prompt_set(prompt_dir)
        content = class_prompt_content(ps)
        version = "cp-" + hash_obj(content)
        parent = _record_version(store.store(), ps, "class_prompts", version, content)
        rows = content["questions"]
        return dg.Output(
            {"prompt_set": ps.name, "version": version},
            data_version=dg.DataVersion(version),
            metadata={
                "version": version,
                "parent_version": parent or "-",
                "classes": len(ps.class_questions),
                "questions": len(rows),
                "questions_table": dg.MetadataValue.md(md_table(rows)),
            },
        )

    @dg.asset(
        group_name=GROUP,
        deps=[prompt_store],
        code_version="1",
        description="The inference templates: system text, the two-stage ASK-Hint template and the "
        "abstract baseline prompt.",
    )
    def inference_templates(store: StoreResource) -> dg.Output[dict]:
        ps = load_prompt_set(prompt_dir)
        content = template_content(ps)
        version = "tp-" + hash_obj(content)
        parent = _record_version(store.store(), ps, "templates", version, content)
        t = ps.templates
        text = "\n\n".join(f"**{k}**\n```\n{getattr(t, k)}\n```" for k in ("system", "stage1", "stage2", "abstract"))
        return dg.Output(
            {"prompt_set": ps.name, "version": version},
            data_version=dg.DataVersion(version),
            metadata={"version": version, "parent_version": parent or "-", "templates": dg.MetadataValue.md(text)},
        )

    @dg.asset(
        group_name=GROUP,
        code_version="1",
        description="Sentence embeddings of every class question (table `question_embeddings`).",
    )
    def question_embeddings(class_prompts: dict, store: StoreResource, embedder: EmbedderResource) -> dg.Output[dict]:
        st = store.store()
        rows = load_class_prompts(st, class_prompts["version"])["questions"]
        emb_model = embedder.embedder()
        vectors = emb_model.embed([r["question"] for r in rows])
        name = hash_obj(emb_model.fingerprint(), length=10)
        st.upsert(
            "question_embeddings",
            [
                {
                    "prompt_version": class_prompts["version"],
                    "embedder": name,
                    "question_id": r["question_id"],
                    "class": r["class"],
                    "question": r["question"],
                    "embedding": v.astype(float).tolist(),
                }
                for r, v in zip(rows, vectors, strict=True)
            ],
        )
        version = hash_obj({"prompt": class_prompts["version"], "embedder": emb_model.fingerprint()})
        return dg.Output(
            {**class_prompts, "embedder": name},
            data_version=dg.DataVersion(version),
            metadata={"embedder": json.dumps(emb_model.fingerprint()), "n": len(rows), "dim": int(vectors.shape[1])},
        )

    @dg.asset(
        group_name=GROUP,
        code_version="1",
        description="HDBSCAN clusters of the question embeddings (noise joins the nearest cluster) and "
        "their cosine-similarity matrix (table `question_clusters`). Settings: the prompt set's "
        "settings.yaml `clustering`.",
    )
    def question_clusters(question_embeddings: dict, store: StoreResource) -> dg.Output[dict]:
        st = store.store()
        content = load_class_prompts(st, question_embeddings["version"])
        cluster_cfg = ClusterConfig.from_dict(content["settings"].get("clustering"))
        ids, classes, questions, emb = _load_embeddings(st, question_embeddings)
        result = cluster_questions(emb, cluster_cfg)
        clustering_id = "cl-" + hash_obj(
            {"emb": question_embeddings, "cfg": asdict(cluster_cfg), "labels": result.labels.tolist()}
        )
        st.upsert(
            "question_clusters",
            [
                {
                    "clustering_id": clustering_id,
                    "prompt_version": question_embeddings["version"],
                    "question_id": qid,
                    "class": c,
                    "question": q,
                    "cluster": int(lab),
                    "was_noise": bool(result.noise_mask[i]),
                    "settings": json.dumps(asdict(cluster_cfg)),
                }
                for i, (qid, c, q, lab) in enumerate(zip(ids, classes, questions, result.labels, strict=True))
            ],
        )
        table = [
            {"cluster": int(lab), "class": c, "question": q}
            for lab, c, q in sorted(zip(result.labels.tolist(), classes, questions, strict=True))
        ]
        from askhint_assets.evaluation.plots import similarity_heatmap

        heat = similarity_heatmap(result.similarity, [f"{c}" for c in classes], title="Question cosine similarity")
        return dg.Output(
            {**question_embeddings, "clustering_id": clustering_id},
            data_version=dg.DataVersion(clustering_id),
            metadata={
                "n_clusters": result.n_clusters,
                "noise_reassigned": result.noise_reassigned,
                "fallback_single_cluster": bool(getattr(result, "fallback", False)),
                "clusters": dg.MetadataValue.md(md_table(table)),
                "similarity_heatmap": dg.MetadataValue.md(image_md(heat, "cosine similarity")),
            },
        )

    guiding_kw = {
        "name": "guiding_questions",
        "group_name": GROUP,
        "code_version": guiding_code_version(s),
        "description": "Q*: the compact guiding questions, 2-3 per merged cluster, chosen by greedy facility "
        "location (representative and diverse; the first pick is the most central) "
        "(table `question_sets`; the id is a hash of the questions, so an edit that leaves Q* "
        "unchanged stops propagation here).",
    }
    if qcfg.method == "llm":
        guiding_kw["description"] += (
            " `questions.method: llm`: the configured model rewrites each merged cluster's picks as as many "
            "general questions (cached requests); a cluster whose answer does not parse keeps its picks."
        )

        @dg.asset(**guiding_kw)
        def guiding_questions_llm(
            context: AssetExecutionContext, question_clusters: dict, store: StoreResource, vlm: VLMResource
        ) -> dg.Output[dict]:
            return _guiding_questions(s, question_clusters, store.store(), vlm, context.run_id)

        guiding_questions = guiding_questions_llm
    else:

        @dg.asset(**guiding_kw)
        def guiding_questions(question_clusters: dict, store: StoreResource) -> dg.Output[dict]:
            return _guiding_questions(s, question_clusters, store.store())

    return [prompt_store, class_prompts, inference_templates, question_embeddings, question_clusters, guiding_questions]


LLM_MAX_NEW_TOKENS = 256  # per summary request; the backend's own ``model.max_new_tokens`` caps it


def guiding_code_version(s: PipelineSettings) -> str:
    """The code version of ``guiding_questions``: target and method; with ``llm`` also the model
    settings and the summary prompt, so changing either marks Q* stale."""
    key: dict = {"target": s.questions.target_size, "method": s.questions.method}
    if s.questions.method == "llm":
        key |= {"model": s.section_hash("model"), "prompt": [SUMMARY_SYSTEM, SUMMARY_PROMPT, LLM_MAX_NEW_TOKENS]}
    return "2-" + hash_obj(key, length=8)


def _guiding_questions(
    s: PipelineSettings, ref: dict, st: Store, vlm: VLMResource | None = None, run_id: str = ""
) -> dg.Output[dict]:
    """Q* of the clusters ``ref``: the deterministic selection, rewritten per cluster by ``vlm`` if given."""
    method = s.questions.method
    prompt_settings = load_class_prompts(st, ref["version"])["settings"]
    target = s.questions.target_size or int(prompt_settings.get("target_size", 6))
    selected, classes, labels = select_qstar(st, ref, target)
    qs = [sel.question for sel in selected]
    q_classes = [classes[sel.index] for sel in selected]
    lines = [f"{sel.question}  _(cluster {sel.cluster}, from {classes[sel.index]})_" for sel in selected]
    settings = {**prompt_settings, "target_size": target, "method": method}
    extra_out: dict = {}
    extra_md: dict = {}
    if vlm is not None:
        llm = _llm_qstar(st, ref, selected, classes, vlm, run_id)
        qs, q_classes, lines = llm["questions"], llm["classes"], llm["lines"]
        produced_by = f"method llm, model {model_label(vlm)} ({vlm.backend})"
        settings |= {"produced_by": produced_by, "clusters": llm["status"]}
        extra_out = {"method": method, "produced_by": produced_by, "cluster_status": llm["status"]}
        n_llm = sum(v == "llm" for v in llm["status"].values())
        extra_md = {
            "produced_by": produced_by,
            "clusters_summarised": f"{n_llm} of {len(llm['status'])} (the others fell back to the selection)",
            "cluster_status": dg.MetadataValue.json(llm["status"]),
            "requests_sent": llm["stats"].sent,
            "cache_hits": llm["stats"].cache_hits,
        }
    qset = "qs-" + hash_obj(qs)
    if not st.scalar("SELECT count(*) FROM question_sets WHERE question_set = ?", [qset]):
        st.upsert(
            "question_sets",
            [
                {
                    "question_set": qset,
                    "questions": qs,
                    "prompt_set": ref["prompt_set"],
                    "prompt_version": ref["version"],
                    "clustering_id": ref["clustering_id"],
                    "settings": json.dumps(settings),
                    "method": method,
                    "created_at": now(),
                }
            ],
        )
    md = "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))
    return dg.Output(
        {
            "question_set": qset,
            "questions": qs,
            "prompt_set": ref["prompt_set"],
            "prompt_version": ref["version"],
            "clustering_id": ref["clustering_id"],
            "target_size": target,
            "n_clusters": int(labels.max()) + 1 if len(labels) else 0,
            "question_classes": q_classes,
            **extra_out,
        },
        data_version=dg.DataVersion(qset),
        metadata={"question_set": qset, "size": len(qs), "Q*": dg.MetadataValue.md(md), **extra_md},
    )


def _llm_qstar(
    st: Store, ref: dict, selected: list[Selected], classes: list[str], vlm: VLMResource, run_id: str
) -> dict:
    """Rewrite each merged cluster's picks with the model (as many questions as were picked there).

    A cluster keeps its picks ("fallback: reason") when the answer failed, parsed to fewer
    questions than picked, or repeats a question of another cluster. Returns ``questions``,
    ``classes`` (per question), ``lines`` (markdown), ``status`` (per cluster) and ``stats``.
    """
    ids, _, questions, _ = _load_embeddings(st, ref)
    text_of = dict(zip(ids, questions, strict=True))
    class_of = dict(zip(ids, classes, strict=True))
    order = {qid: i for i, qid in enumerate(ids)}
    picks: dict[int, list[Selected]] = {}
    for sel in selected:
        picks.setdefault(sel.cluster, []).append(sel)
    members = {c: sorted(p[0].source_ids, key=order.__getitem__) for c, p in picks.items()}
    runner = CachedRunner(vlm.get_backend(), st, run_id=run_id, batch_size=vlm.batch_size)
    summaries = summarise_clusters(
        lambda reqs: [resp for _, resp in runner.run(reqs)],
        {c: [text_of[i] for i in m] for c, m in members.items()},
        {c: len(p) for c, p in picks.items()},
        max_new_tokens=LLM_MAX_NEW_TOKENS,
    )
    out: dict = {"questions": [], "classes": [], "lines": [], "status": {}, "stats": runner.stats}
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
            out["classes"] += [cls] * len(chosen)
            out["lines"] += [f"{q}  _(cluster {c}, LLM summary of {len(members[c])} questions)_" for q in chosen]
            out["status"][f"cluster {c}"] = "llm"
        else:
            chosen = [sel.question for sel in picks[c]]
            out["classes"] += [classes[sel.index] for sel in picks[c]]
            out["lines"] += [
                f"{sel.question}  _(cluster {c}, from {classes[sel.index]}; LLM fallback)_" for sel in picks[c]
            ]
            out["status"][f"cluster {c}"] = f"fallback: {problem}"
        out["questions"] += chosen
        accepted |= {q.casefold() for q in chosen}
    return out


def select_qstar(st, clusters_ref: dict, target: int) -> tuple[list, list[str], np.ndarray]:
    """Q* of ``target`` questions from stored clusters (the prompt set's settings.yaml rules).

    Returns the selected questions, the class of every input question and the cluster labels.
    """
    prompt_settings = load_class_prompts(st, clusters_ref["version"])["settings"]
    ids, classes, questions, emb = _load_embeddings(st, clusters_ref)
    labels_df = st.query(
        "SELECT question_id, cluster FROM question_clusters WHERE clustering_id = ?", [clusters_ref["clustering_id"]]
    )
    label_of = dict(zip(labels_df["question_id"].to_list(), labels_df["cluster"].to_list(), strict=True))
    labels = np.array([label_of[i] for i in ids])
    selected = compress(
        questions,
        emb,
        labels,
        target_size=target,
        per_cluster=tuple(prompt_settings.get("per_cluster", (2, 3))),
        dedup_threshold=float(prompt_settings.get("dedup_threshold", 0.95)),
        ids=ids,
        linkage=prompt_settings.get("merge_linkage", "ward"),
    )
    return selected, classes, labels


def _load_embeddings(st, ref: dict) -> tuple[list[str], list[str], list[str], np.ndarray]:
    df = st.query(
        "SELECT question_id, class, question, embedding FROM question_embeddings "
        "WHERE prompt_version = ? AND embedder = ? ORDER BY question_id",
        [ref["version"], ref["embedder"]],
    )
    emb = np.array(df["embedding"].to_list(), dtype=np.float32)
    return df["question_id"].to_list(), df["class"].to_list(), df["question"].to_list(), emb
