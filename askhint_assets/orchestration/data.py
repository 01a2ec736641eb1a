"""Data assets: the data set's video index and the frames sampled for each scoring unit."""


import dagster as dg
from dagster import AssetExecutionContext

from askhint_assets.evaluation.markdown import md_table
from askhint_assets.hashing import hash_obj
from askhint_assets.orchestration.automation import ON_SETTLED_NEW_DATA_VERSION
from askhint_assets.orchestration.chain import ChainNames
from askhint_assets.orchestration.errors import fails_clearly
from askhint_assets.orchestration.metadata import versioned_output
from askhint_assets.orchestration.resources import StoreResource
from askhint_assets.pipeline.data import index_dataset, plan_ids, sample_frames
from askhint_assets.refs import DatasetIndexRef, FramesRef, FrozenDict
from askhint_assets.settings import PipelineSettings

GROUP = "data"


def build_data_assets(s: PipelineSettings, names: ChainNames = ChainNames()) -> list:
    """``dataset_index`` and ``sampled_frames`` of ``s``'s data set, with the keys and groups of ``names``."""
    ds = s.dataset
    plans = plan_ids(s)

    @dg.asset(
        key=names.key("dataset_index"),
        group_name=names.group(GROUP),
        code_version="2-" + s.section_hash("dataset"),  # 2: a DatasetIndexRef, no longer a dict
        description=f"The `{ds.name}` data set ({ds.kind}): every video with its class, anomalous "
        "intervals (half-open frames) and frame count from the file (table `videos`). The demo "
        "data set is generated on first use.",
    )
    @fails_clearly
    def dataset_index(context: AssetExecutionContext, store: StoreResource) -> dg.Output[DatasetIndexRef]:
        index = index_dataset(store.store(), s)
        for warning in index.warnings:
            context.log.warning(warning)
        videos = index.dataset.videos
        return versioned_output(
            DatasetIndexRef(dataset=ds.name, kind=ds.kind, root=str(index.root)),
            data_version=dg.DataVersion(index.version),
            metadata={
                "videos": len(videos),
                "anomalous": index.anomalous,
                "normal": len(videos) - index.anomalous,
                "skipped": len(index.dataset.skipped),
                "skipped_annotation_lines": len(index.dataset.skipped_lines),
                "warnings": dg.MetadataValue.md("\n".join(f"* {n}" for n in index.dataset.notes) or "none"),
                "frames": index.frames,
                "root": str(index.root),
                "skipped_table": dg.MetadataValue.md(md_table(index.skipped_rows)),
            },
        )

    @dg.asset(
        key=names.key("sampled_frames"),
        group_name=names.group(GROUP),
        ins=names.ins("dataset_index"),
        automation_condition=ON_SETTLED_NEW_DATA_VERSION,
        code_version="2-" + hash_obj(plans, length=10),  # 2: a FramesRef, no longer a dict
        description="Frames sampled per scoring unit (ASK-Hint: up to `max_frames` uniform frames, "
        "`fallback_fps` for short spans), decoded in one pass per video with PyAV and cached by "
        "content hash under $ASKHINT_HOME/cache/frames (table `scoring_units`). Independent of "
        "every prompt asset.",
    )
    @fails_clearly
    def sampled_frames(context: AssetExecutionContext, dataset_index: DatasetIndexRef, store: StoreResource
                       ) -> dg.Output[FramesRef]:
        sampled = sample_frames(store.store(), s, warn=context.log.warning, info=context.log.info)
        return versioned_output(
            FramesRef(dataset=ds.name, plans=FrozenDict(sampled.plans)),
            data_version=dg.DataVersion(sampled.version),
            metadata={
                "plans": dg.MetadataValue.json(sampled.plans),
                "videos": sampled.videos,
                "failed_videos": len(sampled.failed),
                "units": sampled.units,
                "units_decoded_now": sampled.decoded,
                "decode": "upfront, here" if s.execution.decode == "upfront"
                else "overlapped: by the prediction assets, with the model",
                "frames_per_unit_max": s.sampling.max_frames,
                "seconds": sampled.seconds,
                "failures": dg.MetadataValue.md(md_table(sampled.failed)),
            },
        )

    return [dataset_index, sampled_frames]
