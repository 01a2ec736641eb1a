"""The one Definitions of the askhint code location.

Built from the chain layout (:func:`askhint_assets.orchestration.chain.layout`): each prompt set's chain
(prompt store → class prompts → embeddings → clusters → Q*, with its checks and sensor) and each data set's
chain (index → frames → predictions → report, with its checks), every key, input, group and check target
decided while building, then merged with the schedule, the resources and the executor. One data set
keeps the plain keys (``guiding_questions``); a ``datasets:`` list puts each chain under its name.
"""

from __future__ import annotations

import dagster as dg

from askhint_assets.orchestration.automation import build_prompt_store_sensor, nightly_reevaluation
from askhint_assets.orchestration.chain import ChainNames, DatasetChain, layout
from askhint_assets.orchestration.checks import build_dataset_checks, build_prompt_checks
from askhint_assets.orchestration.data import build_data_assets
from askhint_assets.orchestration.evaluation import build_evaluation_assets
from askhint_assets.orchestration.executors import executor_for
from askhint_assets.orchestration.predictions import build_prediction_assets
from askhint_assets.orchestration.prompts import build_prompt_assets
from askhint_assets.orchestration.resources import resources_for
from askhint_assets.settings import PipelineSettings
from askhint_assets.settings_file import load_settings


def prompt_chain(s: PipelineSettings, names: ChainNames) -> dg.Definitions:
    """One prompt set's chain with its checks and its prompt-store sensor."""
    return dg.Definitions(
        assets=build_prompt_assets(s, names),
        asset_checks=build_prompt_checks(names),
        sensors=[build_prompt_store_sensor(s, names)],
    )


def dataset_chain(chain: DatasetChain) -> dg.Definitions:
    """One data set's chain (data, inference, evaluation) with its checks, reading its prompt chain."""
    return dg.Definitions(
        assets=[
            *build_data_assets(chain.settings, chain.names),
            *build_prediction_assets(chain),
            *build_evaluation_assets(chain),
        ],
        asset_checks=build_dataset_checks(chain.names),
    )


def build_defs(
    s: PipelineSettings | None = None, resources: dict[str, dg.ConfigurableResource] | None = None
) -> dg.Definitions:
    """Assets (with automation conditions), checks, the prompt-store sensor(s), the nightly schedule and
    resources for the given settings (default: ``$ASKHINT_CONFIG`` or the demo). ``resources`` replace the
    settings' ones by key (a test's ``vlm=VLMResource(backend=<a registered fake>)``): the asset graph and
    its code versions stay those of the settings."""
    s = s or load_settings()
    prompt_chains, data_chains = layout(s)
    return dg.Definitions.merge(
        *(prompt_chain(one, names) for one, names in prompt_chains.values()),
        *(dataset_chain(chain) for chain in data_chains),
        dg.Definitions(schedules=[nightly_reevaluation], resources={**resources_for(s), **(resources or {})},
                       executor=executor_for(s)),
    )


defs = build_defs()
