"""The Dagster side of :mod:`askhint_assets.pipeline.scoring`: a run's context and resources as the pipeline's
:class:`~askhint_assets.pipeline.scoring.Scorer`."""

from __future__ import annotations

from dagster import AssetExecutionContext

from askhint_assets.orchestration.resources import StoreResource, VLMResource, model_label
from askhint_assets.pipeline import scoring
from askhint_assets.pipeline.scoring import CachedRunner, ScoringTask, Unit
from askhint_assets.settings import PipelineSettings


def score_units(context: AssetExecutionContext, units: list[Unit], task: ScoringTask, store: StoreResource,
                vlm: VLMResource, shard: tuple[int, int] | None = None
                ) -> tuple[list[dict], CachedRunner, dict[str, str]]:
    """:func:`askhint_assets.pipeline.scoring.score_units` with the run's store, model (``shard``'s backend) and log."""
    by = scoring.Scorer(store.store(), vlm.get_backend(shard), model_label(vlm), vlm.batch_size, context.run_id,
                        context.log.info, context.log.warning)
    return scoring.score_units(units, task, by)


def check_prompt_length(s: PipelineSettings, task: ScoringTask, store: StoreResource, vlm: VLMResource) -> str:
    """:func:`askhint_assets.pipeline.scoring.check_prompt_length` with the resource's model."""
    return scoring.check_prompt_length(s, task, store.store(), vlm.backend, vlm.model_path, vlm.resolved_model_path)
