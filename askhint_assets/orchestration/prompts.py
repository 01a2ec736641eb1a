"""Prompt assets: prompt store → class prompts → embeddings → clusters → Q*; and the templates."""


import json
import warnings

import dagster as dg
from dagster import AssetExecutionContext

from askhint_assets import ids
from askhint_assets.evaluation.markdown import md_table
from askhint_assets.hashing import hash_obj, hash_tree
from askhint_assets.orchestration.automation import ON_NEW_DATA_VERSION
from askhint_assets.orchestration.chain import ChainNames
from askhint_assets.orchestration.errors import fails_clearly
from askhint_assets.orchestration.metadata import image_md, versioned_output
from askhint_assets.orchestration.resources import EmbedderResource, StoreResource, VLMResource, model_label
from askhint_assets.pipeline.qstar import QuestionSet, guiding_question_set
from askhint_assets.pipeline.questions import cluster_stored_questions, embed_class_questions
from askhint_assets.prompts.loader import PromptSet, load_prompt_set
from askhint_assets.prompts.versions import class_prompt_content, template_content
from askhint_assets.questions.compress import SUMMARY_MAX_NEW_TOKENS, SUMMARY_PROMPT, SUMMARY_SYSTEM
from askhint_assets.refs import ClustersRef, EmbeddingsRef, PromptVersionRef, QStarRef, TemplatesRef, as_dict
from askhint_assets.settings import PipelineSettings
from askhint_assets.store import Store
from askhint_assets.store.prompts import record_prompt_version

GROUP = "prompts"
REFS_CODE_VERSION = "2"
"""Code version of the prompt assets whose output became a typed reference (older stored outputs are dicts)."""


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
        code_version=REFS_CODE_VERSION,
        automation_condition=ON_NEW_DATA_VERSION,
        description="Taxonomy and class-wise yes/no questions, validated; one row per version in "
        "`prompt_versions`. The data version is a hash of the parsed content, so edits to comments "
        "or whitespace stop here.",
    )
    @fails_clearly
    def class_prompts(context: AssetExecutionContext, store: StoreResource) -> dg.Output[PromptVersionRef]:
        ps = load_prompt_set(prompt_dir)
        content = class_prompt_content(ps)
        version = ids.class_prompts_version(content)
        parent = _record_version(store.store(), ps, "class_prompts", version, content)
        rows = content["questions"]
        return versioned_output(
            PromptVersionRef(prompt_set=ps.name, version=version),
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
        code_version=REFS_CODE_VERSION,
        automation_condition=ON_NEW_DATA_VERSION,
        description="The inference templates: system text, the two-stage ASK-Hint template and the "
        "abstract baseline prompt.",
    )
    @fails_clearly
    def inference_templates(store: StoreResource) -> dg.Output[TemplatesRef]:
        ps = load_prompt_set(prompt_dir)
        content = template_content(ps)
        version = ids.templates_version(content)
        parent = _record_version(store.store(), ps, "templates", version, content)
        t = ps.templates
        text = "\n\n".join(f"**{k}**\n```\n{getattr(t, k)}\n```" for k in ("system", "stage1", "stage2", "abstract"))
        return versioned_output(
            TemplatesRef(prompt_set=ps.name, version=version),
            data_version=dg.DataVersion(version),
            metadata={"version": version, "parent_version": parent or "-", "templates": dg.MetadataValue.md(text)},
        )

    @dg.asset(
        key=names.key("question_embeddings"),
        group_name=group,
        ins=names.ins("class_prompts"),
        code_version=REFS_CODE_VERSION,
        automation_condition=ON_NEW_DATA_VERSION,
        description="Sentence embeddings of every class question (table `question_embeddings`).",
    )
    @fails_clearly
    def question_embeddings(class_prompts: PromptVersionRef, store: StoreResource, embedder: EmbedderResource
                            ) -> dg.Output[EmbeddingsRef]:
        emb_model = embedder.embedder()
        embedded = embed_class_questions(store.store(), class_prompts.version, emb_model)
        return versioned_output(
            EmbeddingsRef(class_prompts.prompt_set, class_prompts.version, embedded.embedder),
            data_version=dg.DataVersion(embedded.version),
            metadata={"embedder": json.dumps(emb_model.fingerprint()), "n": embedded.n, "dim": embedded.dim},
        )

    @dg.asset(
        key=names.key("question_clusters"),
        group_name=group,
        ins=names.ins("question_embeddings"),
        code_version=REFS_CODE_VERSION,
        automation_condition=ON_NEW_DATA_VERSION,
        description="HDBSCAN clusters of the question embeddings (noise joins the nearest cluster) and "
        "their cosine-similarity matrix (table `question_clusters`). Settings: the prompt set's "
        "settings.yaml `clustering`.",
    )
    @fails_clearly
    def question_clusters(question_embeddings: EmbeddingsRef, store: StoreResource) -> dg.Output[ClustersRef]:
        clustering = cluster_stored_questions(store.store(), question_embeddings)
        result, classes = clustering.result, clustering.classes
        table = [
            {"cluster": int(lab), "class": c, "question": q}
            for lab, c, q in sorted(zip(result.labels.tolist(), classes, clustering.questions, strict=True))
        ]
        from askhint_assets.evaluation.plots import similarity_heatmap

        heat = similarity_heatmap(result.similarity, [f"{c}" for c in classes], title="Question cosine similarity")
        return versioned_output(
            ClustersRef(**as_dict(question_embeddings), clustering_id=clustering.clustering_id),
            data_version=dg.DataVersion(clustering.clustering_id),
            metadata={
                "n_clusters": result.n_clusters,
                "noise_reassigned": result.noise_reassigned,
                "fallback_single_cluster": bool(getattr(result, "fallback", False)),
                "clusters": dg.MetadataValue.md(md_table(table)),
                "similarity_heatmap": dg.MetadataValue.md(image_md(heat, "cosine similarity")),
            },
        )

    llm = qcfg.method == "llm"
    description = (
        "Q*: the compact guiding questions, 2-3 per merged cluster, chosen by greedy facility "
        "location (representative and diverse; the first pick is the most central) "
        "(table `question_sets`; the id is a hash of the questions, so an edit that leaves Q* "
        "unchanged stops propagation here)."
    )
    if llm:
        description += (
            " `questions.method: llm`: the configured model rewrites each merged cluster's picks as as many "
            "general questions (cached requests); a cluster whose answer does not parse keeps its picks."
        )

    @dg.asset(
        key=names.key("guiding_questions"),
        group_name=group,
        ins=names.ins("question_clusters"),
        automation_condition=ON_NEW_DATA_VERSION,
        code_version=guiding_code_version(s),
        description=description,
        required_resource_keys={"store", "vlm"} if llm else {"store"},  # the model only where it writes Q*
    )
    @fails_clearly
    def guiding_questions(context: AssetExecutionContext, question_clusters: ClustersRef) -> dg.Output[QStarRef]:
        model: dict = {}
        if llm:
            vlm: VLMResource = context.resources.vlm
            model = {"backend": vlm.get_backend(), "model_label": f"{model_label(vlm)} ({vlm.backend})",
                     "run_id": context.run_id, "batch_size": vlm.batch_size}
        st: StoreResource = context.resources.store
        q = guiding_question_set(st.store(), question_clusters, qcfg.method, qcfg.target_size, **model)
        return _qstar_output(q, question_clusters)

    return [prompt_store, class_prompts, inference_templates, question_embeddings, question_clusters, guiding_questions]


def guiding_code_version(s: PipelineSettings) -> str:
    """The code version of ``guiding_questions``: target and method; with ``llm`` also the model
    settings and the summary prompt, so changing either marks Q* stale."""
    key: dict = {"target": s.questions.target_size, "method": s.questions.method}
    if s.questions.method == "llm":
        key |= {"model": s.section_hash("model"), "prompt": [SUMMARY_SYSTEM, SUMMARY_PROMPT, SUMMARY_MAX_NEW_TOKENS]}
    return "3-" + hash_obj(key, length=8)


def _qstar_output(q: QuestionSet, clusters: ClustersRef) -> dg.Output[QStarRef]:
    """The ``guiding_questions`` value (a reference to the recorded Q*) and its metadata."""
    metadata: dict = {}
    if q.produced_by is not None:
        n_llm = sum(v == "llm" for v in q.cluster_status.values())
        metadata = {
            "produced_by": q.produced_by,
            "clusters_summarised": f"{n_llm} of {len(q.cluster_status)} (the others fell back to the selection)",
            "cluster_status": dg.MetadataValue.json(q.cluster_status),
            "requests_sent": q.stats.sent if q.stats else 0,
            "cache_hits": q.stats.cache_hits if q.stats else 0,
        }
    md = "\n".join(f"{i}. {line}" for i, line in enumerate(q.lines, 1))
    return versioned_output(
        q.ref(clusters),
        data_version=dg.DataVersion(q.question_set),
        metadata={"question_set": q.question_set, "size": len(q.questions), "Q*": dg.MetadataValue.md(md), **metadata},
    )
