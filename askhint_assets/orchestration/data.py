"""Data assets: the data set's video index and the frames sampled for each scoring unit."""


import json
import time
from dataclasses import asdict

import dagster as dg
from dagster import AssetExecutionContext

from askhint_assets import ids, paths
from askhint_assets.errors import VideoError
from askhint_assets.hashing import hash_obj
from askhint_assets.orchestration.automation import ON_SETTLED_NEW_DATA_VERSION
from askhint_assets.orchestration.chain import ChainNames
from askhint_assets.orchestration.errors import fails_clearly
from askhint_assets.orchestration.metadata import md_table, versioned_output
from askhint_assets.orchestration.resources import StoreResource
from askhint_assets.settings import PipelineSettings
from askhint_assets.store.videos import load_videos, mark_videos_failed, replace_units, replace_videos, store_plans
from askhint_assets.video.frame_cache import FrameCache
from askhint_assets.video.frame_source import decode_failure_reason
from askhint_assets.video.units import extract_units, plan_units, video_file_key

GROUP = "data"


def plan_settings(s: PipelineSettings, granularity: str) -> dict:
    """What determines a scoring plan's units: sampling, granularity and (for windows) their size."""
    sc = s.scoring
    window = {"window_s": sc.window_s, "stride_s": sc.stride_s} if granularity in ("window", "tree") else {}
    if granularity == "tree":  # which nodes a tree asks: split at the band's lower edge
        window["split_at"] = sc.uncertain_band[0]
    sampling = asdict(s.sampling)
    if sampling["mode"] == "exact":  # exact plans keep the ids they had before sampling modes existed
        del sampling["mode"], sampling["max_offset_s"]
    return {"sampling": sampling, "granularity": granularity, **window}


def plan_id(s: PipelineSettings, granularity: str) -> str:
    """Identity of a scoring plan (hash of :func:`plan_settings`)."""
    return ids.plan_id(plan_settings(s, granularity))


def build_data_assets(s: PipelineSettings, names: ChainNames = ChainNames()) -> list:
    """``dataset_index`` and ``sampled_frames`` of ``s``'s data set, with the keys and groups of ``names``."""
    ds = s.dataset
    plans = {g: plan_id(s, g) for g in s.scoring.granularities}
    sampling = s.sampling.config()

    @dg.asset(
        key=names.key("dataset_index"),
        group_name=names.group(GROUP),
        code_version="1-" + s.section_hash("dataset"),
        description=f"The `{ds.name}` data set ({ds.kind}): every video with its class, anomalous "
        "intervals (half-open frames) and frame count from the file (table `videos`). The demo "
        "data set is generated on first use.",
    )
    @fails_clearly
    def dataset_index(context: AssetExecutionContext, store: StoreResource) -> dg.Output[dict]:
        from askhint_assets.datasets.registry import load_dataset, write_demo

        root = s.dataset_root()
        if not ds.root:  # the generated demo in the kind's layout
            write_demo(ds.kind, root)
        dataset = load_dataset(
            ds.kind, root, ds.annotations, on_error=ds.on_error, inclusive_end=ds.inclusive_end
        )
        rows = [
            {
                "dataset": ds.name,
                "video_id": v.video_id,
                "label": v.label,
                "classes": list(v.classes),
                "intervals": json.dumps([list(i) for i in v.intervals]),
                "num_frames": v.num_frames,
                "fps": v.fps,
                "path": str(v.path) if v.path else None,
                "file_key": None,
                "status": "ok",
                "reason": None,
            }
            for v in dataset.videos
        ]
        rows += [
            {"dataset": ds.name, "video_id": str(name), "status": "skipped", "reason": reason}
            for name, reason in dataset.skipped
        ]
        replace_videos(store.store(), ds.name, rows)
        n_anom = sum(v.is_anomalous for v in dataset.videos)
        for name, reason in dataset.skipped:
            context.log.warning(f"skipped video {name}: {reason}")
        for _, reason in dataset.skipped_lines:  # the reason starts with its file:line
            context.log.warning(f"skipped: {reason}")
        for note in dataset.notes:
            context.log.warning(note)
        return versioned_output(
            {"dataset": ds.name, "kind": ds.kind, "root": str(root)},
            data_version=dg.DataVersion(ids.dataset_index_version(dataset.fingerprint, rows)),
            metadata={
                "videos": len(dataset.videos),
                "anomalous": n_anom,
                "normal": len(dataset.videos) - n_anom,
                "skipped": len(dataset.skipped),
                "skipped_annotation_lines": len(dataset.skipped_lines),
                "warnings": dg.MetadataValue.md("\n".join(f"* {n}" for n in dataset.notes) or "none"),
                "frames": sum(v.num_frames or 0 for v in dataset.videos),
                "root": str(root),
                "skipped_table": dg.MetadataValue.md(
                    md_table([{"video": n, "reason": r} for n, r in dataset.skipped]
                             + [{"video": "(annotation line)", "reason": r} for _, r in dataset.skipped_lines])
                ),
            },
        )

    @dg.asset(
        key=names.key("sampled_frames"),
        group_name=names.group(GROUP),
        ins=names.ins("dataset_index"),
        automation_condition=ON_SETTLED_NEW_DATA_VERSION,
        code_version="1-" + hash_obj(plans, length=10),
        description="Frames sampled per scoring unit (ASK-Hint: up to `max_frames` uniform frames, "
        "`fallback_fps` for short spans), decoded in one pass per video with PyAV and cached by "
        "content hash under $ASKHINT_HOME/cache/frames (table `scoring_units`). Independent of "
        "every prompt asset.",
    )
    @fails_clearly
    def sampled_frames(context: AssetExecutionContext, dataset_index: dict, store: StoreResource) -> dg.Output[dict]:
        upfront = s.execution.decode == "upfront"
        st = store.store()
        cache = FrameCache(paths.frames_cache_dir())
        videos = load_videos(st, ds.name)
        unit_rows, failed = [], []
        decoded = 0
        t0 = time.perf_counter()
        for n, v in enumerate(videos, 1):
            try:
                key = video_file_key(v.path)
                units = {
                    g: plan_units(v, key, sampling, g, s.scoring.window_s, s.scoring.stride_s) for g in plans
                }
                if upfront:  # else the prediction assets decode while the model works (FrameSource)
                    decoded += extract_units(v.path, [u for us in units.values() for u in us], cache,
                                             sampling.max_side, mode=sampling.mode,
                                             max_offset_s=sampling.max_offset_s)
            except (VideoError, OSError, ValueError) as e:
                reason = decode_failure_reason(e, cache)  # a full or read-only disk raises: stop
                if ds.on_error == "raise":
                    raise VideoError(v.path or v.video_id, reason) from e
                failed.append({"video": v.video_id, "reason": reason})
                context.log.warning(f"video {v.video_id} failed: {reason}")
                continue
            unit_rows += [
                {
                    "dataset": ds.name,
                    "plan": plans[g],
                    "video_id": v.video_id,
                    "unit": u.window.index,
                    "start_frame": u.window.start,
                    "end_frame": u.window.end,
                    "frames_key": u.frames_key,
                    "frame_indices": u.indices.tolist(),
                    "frames_fps": u.frames_fps,
                }
                for g, us in units.items()
                for u in us
            ]
            if n % 25 == 0:
                context.log.info(f"sampled {n}/{len(videos)} videos")
        store_plans(st, plans, {g: plan_settings(s, g) for g in plans})
        for p in plans.values():
            replace_units(st, ds.name, p, [r for r in unit_rows if r["plan"] == p])
        mark_videos_failed(st, ds.name, {f["video"]: f["reason"] for f in failed})
        keys = sorted((r["plan"], r["video_id"], r["unit"], r["frames_key"]) for r in unit_rows)
        return versioned_output(
            {"dataset": ds.name, "plans": plans},
            data_version=dg.DataVersion(ids.sampled_frames_version(plans, keys)),
            metadata={
                "plans": dg.MetadataValue.json(plans),
                "videos": len(videos) - len(failed),
                "failed_videos": len(failed),
                "units": len(unit_rows),
                "units_decoded_now": decoded,
                "decode": "upfront, here" if upfront else "overlapped: by the prediction assets, with the model",
                "frames_per_unit_max": sampling.max_frames,
                "seconds": round(time.perf_counter() - t0, 2),
                "failures": dg.MetadataValue.md(md_table(failed)),
            },
        )

    return [dataset_index, sampled_frames]
