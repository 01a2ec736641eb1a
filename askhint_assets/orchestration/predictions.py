"""Inference assets: ASK-Hint predictions (two-stage template with Q*) and the abstract baseline."""


import json
import time

import dagster as dg
from dagster import AssetExecutionContext

from askhint_assets import settings
from askhint_assets.config import PipelineSettings
from askhint_assets.hashing import hash_obj
from askhint_assets.inference import ABSTRACT_QUESTION_SET, Unit, predict, predict_per_question
from askhint_assets.orchestration.metadata import md_table
from askhint_assets.orchestration.resources import StoreResource, VLMResource, model_label
from askhint_assets.prompts.templates import Templates
from askhint_assets.video.frame_cache import FrameCache
from askhint_assets.vlm.cache import CachedRunner

GROUP = "inference"


def load_units(st, dataset: str, plans: list[str]) -> list[Unit]:
    """Scoring units of the videos that decoded, for the given plans, in (video, plan, unit) order."""
    df = st.query(
        "SELECT u.* FROM scoring_units u JOIN videos v ON u.dataset = v.dataset AND u.video_id = v.video_id "
        "WHERE u.dataset = ? AND list_contains(?, u.plan) AND v.status = 'ok' ORDER BY u.video_id, u.plan, u.unit",
        [dataset, plans],
    )
    return [
        Unit(
            dataset=r["dataset"],
            plan=r["plan"],
            video_id=r["video_id"],
            unit=r["unit"],
            start_frame=r["start_frame"],
            end_frame=r["end_frame"],
            frames_key=r["frames_key"],
            frames_fps=r["frames_fps"],
        )
        for r in df.iter_rows(named=True)
    ]


def _templates(st, ref: dict) -> Templates:
    raw = st.scalar("SELECT content FROM prompt_versions WHERE version = ?", [ref["version"]])
    if raw is None:
        raise dg.Failure(f"template version {ref['version']} not stored; materialize inference_templates")
    t = json.loads(raw)["templates"]
    t["groups"] = tuple(t["groups"])
    return Templates(**t)


def score_units(
    context: AssetExecutionContext,
    units: list[Unit],
    *,
    template: str,
    questions: list[str],
    question_set: str,
    templates_ref: dict,
    store: StoreResource,
    vlm: VLMResource,
    aggregate: str = "max",
) -> tuple[list[dict], CachedRunner]:
    """Score ``units`` with ``template``; rows are upserted chunk by chunk (a killed run resumes)."""
    st = store.store()
    templates = _templates(st, templates_ref)
    cache = FrameCache(settings.frames_cache_dir())
    runner = CachedRunner(vlm.get_backend(), st, run_id=context.run_id, batch_size=vlm.batch_size)
    done = [0]

    def keep(rows: list[dict]) -> None:
        for r in rows:
            r["templates_version"] = templates_ref["version"]
        st.upsert("predictions", rows)
        done[0] += len(rows)
        context.log.info(f"{template}: {done[0]}/{len(units)} units scored ({runner.stats.sent} requests sent)")

    common = dict(
        templates=templates,
        questions=questions,
        question_set=question_set,
        model=model_label(vlm),
        runner=runner,
        load_frames=lambda key: cache.load(key)[0],
        on_rows=keep,
    )
    if template == "per_question":
        rows = predict_per_question(units, aggregate=aggregate, **common)
    else:
        rows = predict(units, template=template, **common)
    return rows, runner


def run_predictions(
    context: AssetExecutionContext,
    *,
    template: str,
    questions: list[str],
    question_set: str,
    frames: dict,
    templates_ref: dict,
    store: StoreResource,
    vlm: VLMResource,
    aggregate: str = "max",
) -> dg.Output[dict]:
    """Score every unit of every plan with ``template`` and describe the result."""
    units = load_units(store.store(), frames["dataset"], sorted(frames["plans"].values()))
    if not units:
        raise dg.Failure(f"no scoring units for data set {frames['dataset']}: did every video fail?")
    model = model_label(vlm)
    t0 = time.perf_counter()
    rows, runner = score_units(
        context,
        units,
        template=template,
        questions=questions,
        question_set=question_set,
        templates_ref=templates_ref,
        store=store,
        vlm=vlm,
        aggregate=aggregate,
    )
    elapsed = time.perf_counter() - t0
    scores = sorted(
        (r["plan"], r["video_id"], r["unit"], round(r["score"], 9), r["answer"], r["group_name"]) for r in rows
    )
    version = hash_obj({"qs": question_set, "model": runner.fingerprint, "tpl": templates_ref["version"], "s": scores})
    n_fail = sum(r["score_source"] == "failed" for r in rows)
    if runner.stats.failed:
        raise dg.Failure(
            description=f"{template}: {runner.stats.failed} model request(s) failed after retries "
            f"({n_fail} unit(s) unscored); the {len(rows) - n_fail} other units are stored. "
            "Materialize again to retry only the failed requests.",
            metadata={"failed_requests": runner.stats.failed, "sent": runner.stats.sent},
        )
    sources: dict[str, int] = {}
    for r in rows:
        sources[r["score_source"]] = sources.get(r["score_source"], 0) + 1
    sample = [
        {"video": r["video_id"], "unit": r["unit"], "score": r["score"], "group": r["group_name"],
         "why": r["rationale"]}
        for r in rows
        if r["group_name"]
    ][:8]
    return dg.Output(
        {
            "dataset": frames["dataset"],
            "plans": frames["plans"],
            "question_set": question_set,
            "templates_version": templates_ref["version"],
            "model": model,
            "template": template,
            "smoke_model": vlm.is_smoke,
        },
        data_version=dg.DataVersion(version),
        metadata={
            "model": model,
            "smoke_test_model": vlm.is_smoke,
            "question_set": question_set,
            "units": len(rows),
            "requests": runner.stats.requests,
            "cache_hits": runner.stats.cache_hits,
            "requests_sent": runner.stats.sent,
            "failed_requests": runner.stats.failed,
            "failed_units": n_fail,
            "score_sources": dg.MetadataValue.json(sources),
            "unparsed": sum(not r["parse_ok"] for r in rows),
            "seconds": round(elapsed, 2),
            "sample_rationales": dg.MetadataValue.md(md_table(sample)),
        },
    )


def build_prediction_assets(s: PipelineSettings) -> list:
    model_version = s.section_hash("model")

    @dg.asset(
        group_name=GROUP,
        code_version="1-" + model_version,
        description="ASK-Hint predictions: the two-stage template with Q* (Normal/Abnormal, then group "
        "and rationale when abnormal) for every scoring unit (table `predictions`, template "
        "`askhint`). Requests are content-addressed: cached answers are never asked again.",
    )
    def askhint_predictions(
        context: AssetExecutionContext,
        guiding_questions: dict,
        inference_templates: dict,
        sampled_frames: dict,
        store: StoreResource,
        vlm: VLMResource,
    ) -> dg.Output[dict]:
        return run_predictions(
            context,
            template="askhint",
            questions=guiding_questions["questions"],
            question_set=guiding_questions["question_set"],
            frames=sampled_frames,
            templates_ref=inference_templates,
            store=store,
            vlm=vlm,
        )

    @dg.asset(
        group_name=GROUP,
        code_version="1-" + model_version,
        description="The abstract-prompt baseline (\"Is there an anomaly in this video?\") on the same "
        "units (table `predictions`, template `abstract`). Independent of Q*.",
    )
    def abstract_predictions(
        context: AssetExecutionContext,
        inference_templates: dict,
        sampled_frames: dict,
        store: StoreResource,
        vlm: VLMResource,
    ) -> dg.Output[dict]:
        return run_predictions(
            context,
            template="abstract",
            questions=[],
            question_set=ABSTRACT_QUESTION_SET,
            frames=sampled_frames,
            templates_ref=inference_templates,
            store=store,
            vlm=vlm,
        )

    if not s.scoring.per_question:
        return [askhint_predictions, abstract_predictions]

    @dg.asset(
        group_name=GROUP,
        code_version="1-" + model_version + "-" + s.scoring.per_question_aggregate,
        description="Per-question mode: each Q* question asked on its own (Yes/No) over the same frames, "
        f"P(Yes) aggregated by `{s.scoring.per_question_aggregate}` (table `predictions`, template "
        "`per_question`). More requests than the joint template; a one-question edit re-asks only it.",
    )
    def per_question_predictions(
        context: AssetExecutionContext,
        guiding_questions: dict,
        inference_templates: dict,
        sampled_frames: dict,
        store: StoreResource,
        vlm: VLMResource,
    ) -> dg.Output[dict]:
        return run_predictions(
            context,
            template="per_question",
            questions=guiding_questions["questions"],
            question_set=guiding_questions["question_set"],
            frames=sampled_frames,
            templates_ref=inference_templates,
            store=store,
            vlm=vlm,
            aggregate=s.scoring.per_question_aggregate,
        )

    return [askhint_predictions, abstract_predictions, per_question_predictions]
