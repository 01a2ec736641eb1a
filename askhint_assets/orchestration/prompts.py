"""Prompt assets: prompt store → class prompts → embeddings → clusters → Q*; and the templates."""


import json
import warnings
from dataclasses import asdict

import dagster as dg
from dagster import AssetExecutionContext

from askhint_assets import ids
from askhint_assets.hashing import hash_obj, hash_tree
from askhint_assets.orchestration.automation import ON_NEW_DATA_VERSION
from askhint_assets.orchestration.chain import ChainNames
from askhint_assets.orchestration.errors import fails_clearly
from askhint_assets.orchestration.metadata import image_md, md_table, versioned_output
from askhint_assets.orchestration.resources import EmbedderResource, StoreResource, VLMResource, model_label
from askhint_assets.pipeline.qstar import load_embeddings_of, select_qstar
from askhint_assets.pipeline.runner import CachedRunner
from askhint_assets.prompts.loader import PromptSet, load_prompt_set
from askhint_assets.prompts.versions import class_prompt_content, template_content
from askhint_assets.questions.cluster import ClusterConfig, cluster_questions
from askhint_assets.questions.compress import SUMMARY_PROMPT, SUMMARY_SYSTEM, Selected, summarise_clusters
from askhint_assets.settings import PipelineSettings
from askhint_assets.store import Store
from askhint_assets.store.prompts import (
    prompt_version_content,
    record_prompt_version,
    record_question_set,
    store_clusters,
    store_embeddings,
)

GROUP = "prompts"


def _record_version(st: Store, ps: PromptSet, kind: str, version: str, content: dict) -> str | None:
    return record_prompt_version(st, version=version, prompt_set=ps.name, kind=kind, content=content,
                                 files=ps.files)


def build_prompt_assets(s: PipelineSettings, names: ChainNames = ChainNames()) -> list:
    """The prompt chain of ``s``'s prompt set, with the keys and groups of ``names``."""
    prompt_dir = s.prompt_dir()
    qcfg = s.questions
    group = names.group(GROUP)

    def observe_prompt_store() -> dg.DataVersion:
        return dg.DataVersion(hash_tree(prompt_dir, "*.yaml"))

    with warnings.catch_warnings():  # observable source assets are beta in dagster 1.13: expected, said once here
        warnings.filterwarnings("ignore", category=dg.BetaWarning, message=r".*observable_source_asset")
        prompt_store = dg.observable_source_asset(
            key=names.key("prompt_store"),
            group_name=group,
            description=f"The YAML files of prompt set `{s.dataset.prompt_set}` in `{prompt_dir}` "
            "(observed: a new data version whenever their content changes).",
        )(observe_prompt_store)

    @dg.asset(
        key=names.key("class_prompts"),
        group_name=group,
        deps=[prompt_store],
        code_version="1",
        automation_condition=ON_NEW_DATA_VERSION,
        description="Taxonomy and class-wise yes/no questions, validated; one row per version in "
        "`prompt_versions`. The data version is a hash of the parsed content, so edits to comments "
        "or whitespace stop here.",
    )
    @fails_clearly
    def class_prompts(context: AssetExecutionContext, store: StoreResource) -> dg.Output[dict]:
        ps = load_prompt_set(prompt_dir)
        content = class_prompt_content(ps)
        version = ids.class_prompts_version(content)
        parent = _record_version(store.store(), ps, "class_prompts", version, content)
        rows = content["questions"]
        return versioned_output(
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
        key=names.key("inference_templates"),
        group_name=group,
        deps=[prompt_store],
        code_version="1",
        automation_condition=ON_NEW_DATA_VERSION,
        description="The inference templates: system text, the two-stage ASK-Hint template and the "
        "abstract baseline prompt.",
    )
    @fails_clearly
    def inference_templates(store: StoreResource) -> dg.Output[dict]:
        ps = load_prompt_set(prompt_dir)
        content = template_content(ps)
        version = ids.templates_version(content)
        parent = _record_version(store.store(), ps, "templates", version, content)
        t = ps.templates
        text = "\n\n".join(f"**{k}**\n```\n{getattr(t, k)}\n```" for k in ("system", "stage1", "stage2", "abstract"))
        return versioned_output(
            {"prompt_set": ps.name, "version": version},
            data_version=dg.DataVersion(version),
            metadata={"version": version, "parent_version": parent or "-", "templates": dg.MetadataValue.md(text)},
        )

    @dg.asset(
        key=names.key("question_embeddings"),
        group_name=group,
        ins=names.ins("class_prompts"),
        code_version="1",
        automation_condition=ON_NEW_DATA_VERSION,
        description="Sentence embeddings of every class question (table `question_embeddings`).",
    )
    @fails_clearly
    def question_embeddings(class_prompts: dict, store: StoreResource, embedder: EmbedderResource) -> dg.Output[dict]:
        st = store.store()
        rows = prompt_version_content(st, class_prompts["version"])["questions"]
        emb_model = embedder.embedder()
        vectors = emb_model.embed([r["question"] for r in rows])
        name = hash_obj(emb_model.fingerprint(), length=10)
        store_embeddings(st, class_prompts["version"], name, rows, vectors)
        version = hash_obj({"prompt": class_prompts["version"], "embedder": emb_model.fingerprint()})
        return versioned_output(
            {**class_prompts, "embedder": name},
            data_version=dg.DataVersion(version),
            metadata={"embedder": json.dumps(emb_model.fingerprint()), "n": len(rows), "dim": int(vectors.shape[1])},
        )

    @dg.asset(
        key=names.key("question_clusters"),
        group_name=group,
        ins=names.ins("question_embeddings"),
        code_version="1",
        automation_condition=ON_NEW_DATA_VERSION,
        description="HDBSCAN clusters of the question embeddings (noise joins the nearest cluster) and "
        "their cosine-similarity matrix (table `question_clusters`). Settings: the prompt set's "
        "settings.yaml `clustering`.",
    )
    @fails_clearly
    def question_clusters(question_embeddings: dict, store: StoreResource) -> dg.Output[dict]:
        st = store.store()
        content = prompt_version_content(st, question_embeddings["version"])
        cluster_cfg = ClusterConfig.from_dict(content["settings"].get("clustering"))
        qids, classes, questions, emb = load_embeddings_of(st, question_embeddings)
        result = cluster_questions(emb, cluster_cfg)
        clustering_id = ids.clustering_id(question_embeddings, asdict(cluster_cfg), result.labels.tolist())
        store_clusters(
            st,
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
                for i, (qid, c, q, lab) in enumerate(zip(qids, classes, questions, result.labels, strict=True))
            ],
        )
        table = [
            {"cluster": int(lab), "class": c, "question": q}
            for lab, c, q in sorted(zip(result.labels.tolist(), classes, questions, strict=True))
        ]
        from askhint_assets.evaluation.plots import similarity_heatmap

        heat = similarity_heatmap(result.similarity, [f"{c}" for c in classes], title="Question cosine similarity")
        return versioned_output(
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
        "key": names.key("guiding_questions"),
        "group_name": group,
        "ins": names.ins("question_clusters"),
        "automation_condition": ON_NEW_DATA_VERSION,
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
        @fails_clearly
        def guiding_questions_llm(
            context: AssetExecutionContext, question_clusters: dict, store: StoreResource, vlm: VLMResource
        ) -> dg.Output[dict]:
            return _guiding_questions(s, question_clusters, store.store(), vlm, context.run_id)

        guiding_questions = guiding_questions_llm
    else:

        @dg.asset(**guiding_kw)
        @fails_clearly
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
    prompt_settings = prompt_version_content(st, ref["version"])["settings"]
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
    qset = ids.question_set_id(qs)
    record_question_set(st, {
        "question_set": qset,
        "questions": qs,
        "prompt_set": ref["prompt_set"],
        "prompt_version": ref["version"],
        "clustering_id": ref["clustering_id"],
        "settings": json.dumps(settings),
        "method": method,
    })
    md = "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))
    return versioned_output(
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
    qids, _, questions, _ = load_embeddings_of(st, ref)
    text_of = dict(zip(qids, questions, strict=True))
    class_of = dict(zip(qids, classes, strict=True))
    order = {qid: i for i, qid in enumerate(qids)}
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


