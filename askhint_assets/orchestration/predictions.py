"""Inference assets: ASK-Hint predictions (two-stage template with Q*) and the abstract baseline."""


import time

import dagster as dg
from dagster import AssetExecutionContext

from askhint_assets.evaluation.markdown import md_table
from askhint_assets.hashing import hash_obj
from askhint_assets.inference import ABSTRACT_QUESTION_SET
from askhint_assets.orchestration.automation import ON_SETTLED_NEW_DATA_VERSION
from askhint_assets.orchestration.chain import ChainNames, DatasetChain
from askhint_assets.orchestration.errors import fails_clearly
from askhint_assets.orchestration.metadata import versioned_output
from askhint_assets.orchestration.resources import StoreResource, VLMResource, model_label
from askhint_assets.orchestration.scoring import check_prompt_length, score_units
from askhint_assets.pipeline.prediction_summary import gather_shard_refs, no_units, summarise_predictions
from askhint_assets.pipeline.scoring import ScoringTask, decode_options, tree_spec
from askhint_assets.prompts.templates import Template
from askhint_assets.refs import FramesRef, PredictionsRef, QStarRef, TemplatesRef
from askhint_assets.sharding import shard_name, shard_of
from askhint_assets.store.videos import load_units

GROUP = "inference"


def run_predictions(
    context: AssetExecutionContext,
    task: ScoringTask,
    frames: FramesRef,
    store: StoreResource,
    vlm: VLMResource,
    shard: tuple[int, int] | None = None,
) -> dg.Output[PredictionsRef]:
    """Score every unit of every plan of ``frames`` with ``task`` (only the videos of ``shard = (index,
    count)`` when given) and describe the result."""
    template, question_set, templates_ref = task.template, task.question_set, task.templates_ref
    units = load_units(store.store(), frames.dataset, sorted(frames.plans.values()))
    if shard is not None:
        units = [u for u in units if shard_of(u.video_id, shard[1]) == shard[0]]
    elif not units:
        raise no_units(frames.dataset)
    t0 = time.perf_counter()
    rows, runner, failed_videos = score_units(context, units, task, store, vlm, shard)
    summary = summarise_predictions(
        rows, template=template, question_set=question_set, templates_version=templates_ref.version,
        frames=frames, model=model_label(vlm), smoke=vlm.is_smoke,
        run=runner.stats, fingerprint=runner.fingerprint, seconds=time.perf_counter() - t0, shard=shard,
    )
    return versioned_output(
        summary.ref,
        data_version=dg.DataVersion(summary.version),
        metadata={
            "model": summary.ref.model,
            "smoke_test_model": vlm.is_smoke,
            "question_set": question_set,
            **({"shard": f"{shard[0]} of {shard[1]}"} if shard is not None else {}),
            **{k: v for k, v in summary.stats.items() if k != "videos"},
            "failed_requests": runner.stats.failed,
            "failed_units": summary.failed_units,
            "videos_failed_decoding": len(failed_videos),
            "score_sources": dg.MetadataValue.json(summary.sources),
            "sample_rationales": dg.MetadataValue.md(md_table(summary.sample)),
        },
    )


def gather_shards(shards: dict[str, PredictionsRef]) -> dg.Output[PredictionsRef]:
    """One prediction reference from its shards' (all from the same Q*, templates and model)."""
    g = gather_shard_refs(shards)
    return versioned_output(
        g.ref,
        data_version=dg.DataVersion(g.version),
        metadata={
            "model": g.ref.model,
            "smoke_test_model": g.ref.smoke_model,
            "question_set": g.ref.question_set,
            **g.totals,
            "shards": dg.MetadataValue.md(md_table(g.shards)),
            "slowest_shard_seconds": g.slowest_seconds,
        },
    )


_DESCRIPTIONS = {
    "askhint_predictions": "ASK-Hint predictions: the two-stage template with Q* (Normal/Abnormal, then group "
    "and rationale when abnormal) for every scoring unit (table `predictions`, template `askhint`). Requests are "
    "content-addressed: cached answers are never asked again.",
    "abstract_predictions": "The abstract-prompt baseline (\"Is there an anomaly in this video?\") on the same "
    "units (table `predictions`, template `abstract`). Independent of Q*.",
    "per_question_predictions": "Per-question mode: each Q* question asked on its own (Yes/No) over the same "
    "frames, P(Yes) aggregated by `{agg}` (table `predictions`, template `per_question`). More requests than "
    "the joint template; a one-question edit re-asks only it.",
}


def _scoring_asset(name: str, template: str, code_version: str, description: str,
                   shard: tuple[int, int] | None, chain: DatasetChain) -> dg.AssetsDefinition:
    """An asset scoring every unit (or one shard's) with ``template``; Q* is an input unless abstract."""
    s = chain.settings
    prompt_inputs = ("inference_templates",) + (() if template == Template.ABSTRACT else ("guiding_questions",))

    @dg.asset(key=chain.names.key(name), group_name=chain.names.group(GROUP), code_version=code_version,
              description=description, automation_condition=ON_SETTLED_NEW_DATA_VERSION,
              ins={**chain.names.ins("sampled_frames"), **chain.prompts.ins(*prompt_inputs)})
    @fails_clearly
    def score(context: AssetExecutionContext, store: StoreResource, vlm: VLMResource,
              **refs: FramesRef | TemplatesRef | QStarRef) -> dg.Output[PredictionsRef]:
        frames: FramesRef = refs["sampled_frames"]  # type: ignore[assignment]
        templates: TemplatesRef = refs["inference_templates"]  # type: ignore[assignment]
        qstar: QStarRef | None = refs.get("guiding_questions")  # type: ignore[assignment]
        task = ScoringTask(
            template=template,
            questions=qstar.questions if qstar else (),
            question_set=qstar.question_set if qstar else ABSTRACT_QUESTION_SET,
            templates_ref=templates,
            aggregate=s.scoring.per_question_aggregate,
            on_error=s.dataset.on_error,
            decode=decode_options(s),
            tree=tree_spec(s, frames.plans),
            follow_up=s.scoring.uncertain_band if template == Template.ASKHINT and s.scoring.follow_up == "uncertain"
            else None,
        )
        context.log.info(check_prompt_length(s, task, store, vlm))  # a prompt that cannot fit stops here
        return run_predictions(context, task, frames, store, vlm, shard)

    return score


def _gather_asset(name: str, n_shards: int, description: str, names: ChainNames) -> dg.AssetsDefinition:
    shards = [shard_name(name, k) for k in range(n_shards)]

    @dg.asset(
        key=names.key(name),
        group_name=names.group(GROUP),
        code_version=f"2-gather-{n_shards}",  # 2: a PredictionsRef, no longer a dict
        ins=names.ins(*shards),
        automation_condition=ON_SETTLED_NEW_DATA_VERSION,
        description=f"{description} Gathered from {n_shards} shard assets (`{shards[0]}` ...), which score "
        "disjoint sets of videos and, with the multiprocess executor, run in parallel; no model request here.",
    )
    @fails_clearly
    def gather(**shard_refs: PredictionsRef) -> dg.Output[PredictionsRef]:
        return gather_shards(shard_refs)

    return gather


def build_prediction_assets(chain: DatasetChain) -> list:
    """The prediction assets of the enabled templates; with ``execution.shards`` > 1 each is split into
    shard assets plus a gathering asset of the same name (so checks and evaluation are unchanged)."""
    s = chain.settings
    model_version = s.section_hash("model")
    agg = s.scoring.per_question_aggregate
    templates = {"askhint_predictions": Template.ASKHINT, "abstract_predictions": Template.ABSTRACT}
    if s.scoring.per_question:
        templates["per_question_predictions"] = Template.PER_QUESTION
    n = s.execution.shards
    out = []
    for name, template in templates.items():
        # 2-: the output is a PredictionsRef (1-: a dict)
        version = "2-" + model_version + ("-" + agg if template == Template.PER_QUESTION else "")
        if template == Template.ASKHINT and s.scoring.follow_up == "uncertain":  # other settings keep their versions
            version += "-fu-" + hash_obj({"band": s.scoring.uncertain_band, "agg": agg}, length=8)
        description = _DESCRIPTIONS[name].format(agg=agg)
        if n == 1:
            out.append(_scoring_asset(name, template, version, description, None, chain))
            continue
        for k in range(n):
            out.append(_scoring_asset(shard_name(name, k), template, f"{version}-shard-{k}-of-{n}",
                                      f"Shard {k} of {n} of `{name}`: " + description, (k, n), chain))
        out.append(_gather_asset(name, n, description, chain.names))
    return out
