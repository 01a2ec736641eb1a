"""Inference assets: ASK-Hint predictions (two-stage template with Q*) and the abstract baseline."""


import json
import time

import dagster as dg
from dagster import AssetExecutionContext

from askhint_assets import paths
from askhint_assets.errors import VideoError
from askhint_assets.hashing import hash_obj
from askhint_assets.inference import ABSTRACT_QUESTION_SET, Unit, predict, predict_per_question
from askhint_assets.orchestration.data import decode_options, mark_videos_failed
from askhint_assets.orchestration.metadata import md_table
from askhint_assets.orchestration.resources import StoreResource, VLMResource, model_label
from askhint_assets.prompts.templates import Templates
from askhint_assets.settings import PipelineSettings
from askhint_assets.sharding import shard_name, shard_of
from askhint_assets.video.frame_cache import FrameCache
from askhint_assets.video.frame_source import DecodeOptions, FrameSource, unit_frames
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
    shard: tuple[int, int] | None = None,
    max_side: int | None = None,
    on_error: str = "skip",
    decode: DecodeOptions | None = None,
) -> tuple[list[dict], CachedRunner, dict[str, str]]:
    """Score ``units`` with ``template``; rows are upserted chunk by chunk (a killed run resumes). Frames
    come from the cache or are decoded on demand (``decode`` as planned, else ``max_side``); returns the
    rows, the runner and the videos that could not be decoded (recorded as failed; with ``on_error:
    raise`` an error)."""
    st = store.store()
    templates = _templates(st, templates_ref)
    source = frame_source(st, units, decode or DecodeOptions(max_side=max_side))
    runner = CachedRunner(vlm.get_backend(shard), st, run_id=context.run_id, batch_size=vlm.batch_size)
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
        load_frames=source.load,
        on_rows=keep,
    )
    with source:  # stops its decoding processes, if any
        if template == "per_question":
            rows = predict_per_question(units, aggregate=aggregate, **common)
        else:
            rows = predict(units, template=template, **common)
    if source.failed:
        _mark_failed(st, units[0].dataset, source.failed, on_error, context)
    return rows, runner, dict(source.failed)


def frame_source(st, units: list[Unit], decode: DecodeOptions) -> FrameSource:
    """The frames of ``units``: cached, or decoded on demand from their videos (one pass per video; the
    next videos, in the units' order, in ``decode.workers`` processes)."""
    videos = sorted({u.video_id for u in units})
    plans = sorted({u.plan for u in units})
    rows = st.query(
        "SELECT u.video_id, u.unit, u.start_frame, u.end_frame, u.frames_key, u.frame_indices, u.frames_fps, v.path "
        "FROM scoring_units u JOIN videos v ON u.dataset = v.dataset AND u.video_id = v.video_id "
        "WHERE u.dataset = ? AND list_contains(?, u.plan) AND list_contains(?, u.video_id) "
        "ORDER BY u.video_id, u.plan, u.unit",
        [units[0].dataset if units else "", plans, videos],
    ).iter_rows(named=True)
    return FrameSource(FrameCache(paths.frames_cache_dir()), unit_frames(rows), decode)


def _mark_failed(st, dataset: str, failed: dict[str, str], on_error: str, context: AssetExecutionContext) -> None:
    """Videos that could not be decoded while scoring: recorded as failed (excluded from evaluation) or,
    with ``on_error: raise``, the end of the run."""
    first = next(iter(sorted(failed)))
    if on_error == "raise":
        raise VideoError(first, failed[first])
    mark_videos_failed(st, dataset, failed)
    for vid, reason in sorted(failed.items()):
        context.log.warning(f"video {vid} failed while decoding for the model: {reason}")


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
    shard: tuple[int, int] | None = None,
    max_side: int | None = None,
    on_error: str = "skip",
    decode: DecodeOptions | None = None,
) -> dg.Output[dict]:
    """Score every unit of every plan with ``template`` (only the videos of ``shard = (index, count)``
    when given) and describe the result."""
    units = load_units(store.store(), frames["dataset"], sorted(frames["plans"].values()))
    if shard is not None:
        units = [u for u in units if shard_of(u.video_id, shard[1]) == shard[0]]
    elif not units:
        raise dg.Failure(f"no scoring units for data set {frames['dataset']}: did every video fail?")
    model = model_label(vlm)
    t0 = time.perf_counter()
    rows, runner, failed_videos = score_units(
        context,
        units,
        template=template,
        questions=questions,
        question_set=question_set,
        templates_ref=templates_ref,
        store=store,
        vlm=vlm,
        aggregate=aggregate,
        shard=shard,
        max_side=max_side,
        on_error=on_error,
        decode=decode,
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
    ref = {
        "dataset": frames["dataset"],
        "plans": frames["plans"],
        "question_set": question_set,
        "templates_version": templates_ref["version"],
        "model": model,
        "template": template,
        "smoke_model": vlm.is_smoke,
    }
    stats = {
        "units": len(rows),
        "videos": len({r["video_id"] for r in rows}),
        "requests": runner.stats.requests,
        "cache_hits": runner.stats.cache_hits,
        "requests_sent": runner.stats.sent,
        "unparsed": sum(not r["parse_ok"] for r in rows),
        "seconds": round(elapsed, 2),
    }
    if shard is not None:  # the gather asset combines the shards' versions and counts
        ref |= {"shard": list(shard), "scores_version": version, "stats": stats}
    return dg.Output(
        ref,
        data_version=dg.DataVersion(version),
        metadata={
            "model": model,
            "smoke_test_model": vlm.is_smoke,
            "question_set": question_set,
            **({"shard": f"{shard[0]} of {shard[1]}"} if shard is not None else {}),
            **{k: v for k, v in stats.items() if k != "videos"},
            "failed_requests": runner.stats.failed,
            "failed_units": n_fail,
            "videos_failed_decoding": len(failed_videos),
            "score_sources": dg.MetadataValue.json(sources),
            "sample_rationales": dg.MetadataValue.md(md_table(sample)),
        },
    )


def gather_shards(shards: dict[str, dict]) -> dg.Output[dict]:
    """One prediction reference from its shards' (all from the same Q*, templates and model)."""
    refs = [shards[k] for k in sorted(shards)]
    common = {k: v for k, v in refs[0].items() if k not in ("shard", "scores_version", "stats")}
    for name, ref in sorted(shards.items()):
        mismatch = [k for k, v in common.items() if ref.get(k) != v]
        if mismatch:
            raise dg.Failure(f"shard {name} differs from the others in {mismatch}; materialize every shard again")
    totals = {k: sum(r["stats"][k] for r in refs) for k in refs[0]["stats"] if k != "seconds"}
    if not totals["units"]:
        raise dg.Failure(f"no scoring units for data set {common['dataset']} in any shard: did every video fail?")
    rows = [{"shard": name, **ref["stats"]} for name, ref in sorted(shards.items())]
    return dg.Output(
        common,
        data_version=dg.DataVersion(hash_obj([r["scores_version"] for r in refs])),
        metadata={
            "model": common["model"],
            "smoke_test_model": common["smoke_model"],
            "question_set": common["question_set"],
            **totals,
            "shards": dg.MetadataValue.md(md_table(rows)),
            "slowest_shard_seconds": max(r["stats"]["seconds"] for r in refs),
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


def _scoring_asset(name: str, template: str, code_version: str, description: str, s: PipelineSettings,
                   shard: tuple[int, int] | None) -> dg.AssetsDefinition:
    """An asset scoring every unit (or one shard's) with ``template``; Q* is an input unless abstract."""
    inputs = ("inference_templates", "sampled_frames") + (() if template == "abstract" else ("guiding_questions",))

    @dg.asset(name=name, group_name=GROUP, code_version=code_version, description=description,
              ins={i: dg.AssetIn() for i in inputs})
    def score(context: AssetExecutionContext, store: StoreResource, vlm: VLMResource, **refs: dict) -> dg.Output[dict]:
        qstar = refs.get("guiding_questions")
        return run_predictions(
            context,
            template=template,
            questions=qstar["questions"] if qstar else [],
            question_set=qstar["question_set"] if qstar else ABSTRACT_QUESTION_SET,
            frames=refs["sampled_frames"],
            templates_ref=refs["inference_templates"],
            store=store,
            vlm=vlm,
            aggregate=s.scoring.per_question_aggregate,
            shard=shard,
            max_side=s.sampling.max_side,
            on_error=s.dataset.on_error,
            decode=decode_options(s),
        )

    return score


def _gather_asset(name: str, n_shards: int, description: str) -> dg.AssetsDefinition:
    shards = [shard_name(name, k) for k in range(n_shards)]

    @dg.asset(
        name=name,
        group_name=GROUP,
        code_version=f"1-gather-{n_shards}",
        ins={s: dg.AssetIn() for s in shards},
        description=f"{description} Gathered from {n_shards} shard assets (`{shards[0]}` ...), which score "
        "disjoint sets of videos and, with the multiprocess executor, run in parallel; no model request here.",
    )
    def gather(**shard_refs: dict) -> dg.Output[dict]:
        return gather_shards(shard_refs)

    return gather


def build_prediction_assets(s: PipelineSettings) -> list:
    """The prediction assets of the enabled templates; with ``execution.shards`` > 1 each is split into
    shard assets plus a gathering asset of the same name (so checks and evaluation are unchanged)."""
    model_version = s.section_hash("model")
    agg = s.scoring.per_question_aggregate
    templates = {"askhint_predictions": "askhint", "abstract_predictions": "abstract"}
    if s.scoring.per_question:
        templates["per_question_predictions"] = "per_question"
    n = s.execution.shards
    out = []
    for name, template in templates.items():
        version = "1-" + model_version + ("-" + agg if template == "per_question" else "")
        description = _DESCRIPTIONS[name].format(agg=agg)
        if n == 1:
            out.append(_scoring_asset(name, template, version, description, s, None))
            continue
        for k in range(n):
            out.append(_scoring_asset(shard_name(name, k), template, f"{version}-shard-{k}-of-{n}",
                                      f"Shard {k} of {n} of `{name}`: " + description, s, (k, n)))
        out.append(_gather_asset(name, n, description))
    return out
