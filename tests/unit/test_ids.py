"""Ids are stored and compared across runs: the values of the rules in :mod:`askhint_assets.ids` are pinned
here (computed by the expressions they replaced), so a changed rule fails instead of silently orphaning rows."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from askhint_assets import ids
from askhint_assets.prompts.templates import Template
from askhint_assets.refs import EmbeddingsRef, FrozenDict, PredictionsRef, SizePredictionsRef, as_dict

FINGERPRINT = {"model": "all-MiniLM-L6-v2", "dim": 384}


def test_embedding_ids():
    assert ids.embedder_name(FINGERPRINT) == "e4244ee726"
    assert ids.embeddings_version("cp-1", FINGERPRINT) == "28adb19a27fe3d3c"


def test_data_set_versions():
    rows = [{"dataset": "d", "video_id": "v", "status": "ok"}]
    assert ids.dataset_index_version(None, rows) == "a933e7e03987a199"
    assert ids.dataset_index_version("fp-of-the-data-set", rows) == "fp-of-the-data-set"
    assert ids.sampled_frames_version({"video": "pl-1"}, [("pl-1", "v", "0", "fk")]) == "888df1ff7955ff5d"


def test_generated_prompt_set_name():
    assert ids.generated_prompt_set_name("ucf", {"Fight": ["Q?"]}, {"max_new_tokens": 256}) == "ucf_generated_ee090ca3"


def test_scores_report_id():
    assert ids.scores_report_id({"a": 1, "skipped": []}) == "c60d492d57e8d6b8"


def test_predictions_version():
    """Pinned from the expression run_predictions computed inline before it became ids.predictions_version."""
    rows = [
        {"plan": "pl-w", "video_id": "v", "unit": 0, "score": 0.25, "answer": "Normal", "group_name": None,
         "template": "askhint", "score_path": None},
        {"plan": "pl-w", "video_id": "v", "unit": 1, "score": 0.9, "answer": "Abnormal", "group_name": "Fighting",
         "template": "askhint", "score_path": None},
        {"plan": "pl-w", "video_id": "v", "unit": 1, "score": 0.7, "answer": "Abnormal", "group_name": None,
         "template": "follow_up", "score_path": "per_question"},
    ]
    assert ids.predictions_version(rows, "askhint", "qs-1", {"model": "m"}, "tp-1") == "3624c8253b0ad59e"


def test_ids_of_a_reference_are_those_of_the_dict_it_replaced():
    """Clustering and report ids hash a typed reference as the plain dict the asset returned before
    (pinned values: :mod:`askhint_assets.ids` at main before ``refs.py``, fed those dicts)."""
    emb = EmbeddingsRef(prompt_set="ucf_crime", version="cp-1", embedder="e4244ee726")
    assert ids.clustering_id(emb, {"min_cluster_size": 2}, [0, 1, 0]) == "cl-05490d388a52e438"
    pred = PredictionsRef(dataset="d", plans=FrozenDict({"window": "pl-w", "video": "pl-v"}), question_set="qs-1",
                          templates_version="tp-1", model="m", template=Template.ASKHINT, smoke_model=True)
    rows = [{"metric": "frame_auc", "value": 0.5}]
    assert ids.report_id(pred, "pl-w", rows) == "ev-0ca578d2a57a596f"
    assert ids.report_id(dataclasses.replace(pred, template=Template.FOLLOW_UP), "pl-w", rows) == "ev-6a0272040246cf0a"
    shard = pred.with_shard((0, 2), "sv", {"units": 1})  # a shard's fields are not part of the prediction set
    assert ids.report_id(shard.without_shard(), "pl-w", rows) == "ev-0ca578d2a57a596f"
    size = SizePredictionsRef(dataset="d", question_set="qs-2", model="m", template=Template.ASKHINT,
                              smoke_model=False, templates_version="tp-1")
    assert ids.report_id(size, "pl-v", rows, ablation=True) == "ab-ac95f8942dbd5457"


def test_references_are_frozen_hashable_and_pickle():
    pred = PredictionsRef(dataset="d", plans=FrozenDict({"window": "pl-w"}), question_set="qs-1",
                          templates_version="tp-1", model="m", template=Template.ASKHINT, smoke_model=False)
    shard = pred.with_shard((1, 2), "sv", {"units": 3, "seconds": 0.5})
    for ref in (pred, shard):
        assert pickle.loads(pickle.dumps(ref)) == ref and hash(pickle.loads(pickle.dumps(ref))) == hash(ref)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pred.model = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        pred.plans["video"] = "pl-v"  # type: ignore[index]
    assert pred.plans == {"window": "pl-w"} and as_dict(shard)["shard"] == [1, 2]
