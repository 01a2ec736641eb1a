"""How every artefact id is made: a prefix that says what it is and a content hash of what determined it.

The same ids are the Dagster data versions of the assets that produce them, so "did anything change?"
has one answer everywhere. Changing a rule here changes ids, and with them cached rows and staleness.
"""

from __future__ import annotations

from typing import Any

from askhint_assets.hashing import hash_obj
from askhint_assets.refs import EmbeddingsRef, PredictionsRef, SizePredictionsRef, as_dict


def class_prompts_version(content: dict) -> str:
    """A class-prompt version (taxonomy, class questions, Q* settings): ``cp-<hash>``."""
    return "cp-" + hash_obj(content)


def templates_version(content: dict) -> str:
    """A template version (system, stage-1/2, abstract texts): ``tp-<hash>``."""
    return "tp-" + hash_obj(content)


def embedder_name(fingerprint: dict) -> str:
    """A sentence embedder, as question embeddings name it: a 10-character hash of its fingerprint."""
    return hash_obj(fingerprint, length=10)


def embeddings_version(prompt_version: str, embedder_fingerprint: dict) -> str:
    """The question embeddings of a class-prompt version by one embedder (their data version)."""
    return hash_obj({"prompt": prompt_version, "embedder": embedder_fingerprint})


def clustering_id(embeddings_ref: EmbeddingsRef, cluster_settings: dict, labels: list[int]) -> str:
    """A clustering of one embedding set: ``cl-<hash>`` of the input (as its plain dict), the settings and the
    labels."""
    return "cl-" + hash_obj({"emb": as_dict(embeddings_ref), "cfg": cluster_settings, "labels": labels})


def question_set_id(questions: list[str]) -> str:
    """A question set (Q*, an ablation size): ``qs-<hash>`` of the questions in order."""
    return "qs-" + hash_obj(questions)


def dataset_index_version(fingerprint: str | None, rows: list[dict[str, Any]]) -> str:
    """A data set's index: the data set's own fingerprint where it has one, else a hash of the index rows."""
    return fingerprint or hash_obj(rows)


def sampled_frames_version(plans: dict[str, str], unit_keys: list[tuple]) -> str:
    """The sampled frames of a data set: a hash of its plans and every unit's ``(plan, video, unit, frames)``."""
    return hash_obj({"plans": plans, "units": unit_keys})


def plan_id(plan_settings: dict) -> str:
    """A scoring plan (sampling, granularity, window): ``pl-<hash>``."""
    return "pl-" + hash_obj(plan_settings, length=10)


def report_id(ref: PredictionsRef | SizePredictionsRef, plan: str, metric_rows: list[dict[str, Any]], *,
              ablation: bool = False) -> str:
    """An evaluation report (``ev-``), or one size of the prompt-count ablation (``ab-``): a hash of the prediction
    reference (as its plain dict), the plan and the metrics."""
    return ("ab-" if ablation else "ev-") + hash_obj({"ref": as_dict(ref), "plan": plan, "metrics": metric_rows})


def scores_report_id(settings: dict[str, Any]) -> str:
    """A report of ``askhint evaluate`` over score files: a hash of its inputs' hashes and settings."""
    return hash_obj(settings)


def generated_prompt_set_name(prompt_set: str, questions: dict[str, Any], generation_settings: dict) -> str:
    """The folder name of a prompt set generated from ``prompt_set``: ``<prompt_set>_generated_<hash>``."""
    return f"{prompt_set}_generated_{hash_obj([questions, generation_settings], length=8)}"


def predictions_version(rows: list[dict[str, Any]], template: str, question_set: str, model_fingerprint: Any,
                        templates_version: str) -> str:
    """A prediction set's data version (no prefix): a hash of the question set, the model's fingerprint, the
    templates' version and the scores, those of ``template`` first, then those of each other template the rows
    hold (follow-ups) with their score path. Scores are rounded to 9 places, so float noise changes nothing."""
    scores = sorted(
        (r["plan"], r["video_id"], r["unit"], round(r["score"], 9), r["answer"], r["group_name"]) for r in rows
        if r["template"] == template
    )
    for other in sorted({r["template"] for r in rows} - {template}):
        scores += sorted((other, r["plan"], r["video_id"], r["unit"], round(r["score"], 9), r["score_path"])
                         for r in rows if r["template"] == other)
    return hash_obj({"qs": question_set, "model": model_fingerprint, "tpl": templates_version, "s": scores})
