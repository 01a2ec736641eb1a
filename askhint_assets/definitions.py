"""The one Definitions of the askhint code location."""

from __future__ import annotations

import dagster as dg

from askhint_assets.config import PipelineSettings, load_settings
from askhint_assets.orchestration.automation import build_prompt_store_sensor, nightly_reevaluation, with_automation
from askhint_assets.orchestration.checks import build_checks
from askhint_assets.orchestration.data import build_data_assets
from askhint_assets.orchestration.evaluation import build_evaluation_assets
from askhint_assets.orchestration.predictions import build_prediction_assets
from askhint_assets.orchestration.prompts import build_prompt_assets
from askhint_assets.orchestration.resources import resources_for


def build_defs(s: PipelineSettings | None = None) -> dg.Definitions:
    """Assets (with automation conditions), checks, the prompt-store sensor, the nightly schedule and
    resources for the given settings (default: ``$ASKHINT_CONFIG`` or the demo)."""
    s = s or load_settings()
    assets = [
        *build_prompt_assets(s),
        *build_data_assets(s),
        *build_prediction_assets(s),
        *build_evaluation_assets(s),
    ]
    return dg.Definitions(
        assets=with_automation(assets),
        asset_checks=build_checks(),
        sensors=[build_prompt_store_sensor(s)],
        schedules=[nightly_reevaluation],
        resources=resources_for(s),
        executor=dg.in_process_executor,
    )


defs = build_defs()
