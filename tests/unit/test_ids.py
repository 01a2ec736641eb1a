"""Ids are stored and compared across runs: the values of the rules in :mod:`askhint_assets.ids` are pinned
here (computed by the expressions they replaced), so a changed rule fails instead of silently orphaning rows."""

from __future__ import annotations

from askhint_assets import ids

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
