"""Typed settings: every bad value is refused when the settings load, naming the file, the line and the field.

The cases of issue 11 (item 3) first, each once as it was filed; then the other rules, and the guarantees
that the typed settings hash exactly as the untyped ones did.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from askhint_assets.datasets.registry import KIND_NAMES, DatasetKind
from askhint_assets.errors import InputError
from askhint_assets.evaluation.frames import smooth
from askhint_assets.settings import PipelineSettings, ScoringSettings
from askhint_assets.settings_file import load_settings
from askhint_assets.vlm.backends import registry
from tests.fakes import forget_backend

ROOT = Path(__file__).resolve().parents[2]


def _load(tmp_path: Path, text: str) -> PipelineSettings:
    p = tmp_path / "askhint.yaml"
    p.write_text(text)
    return load_settings(p)


def _refused(tmp_path: Path, text: str, line: int, field: str, match: str) -> InputError:
    """Loading ``text`` raises an InputError at ``line``/``field`` whose message starts ``path:line: field:``."""
    with pytest.raises(InputError) as info:
        _load(tmp_path, text)
    e = info.value
    where = f"{tmp_path / 'askhint.yaml'}:{line}: {field}: "
    assert (e.path, e.line, e.field) == (str(tmp_path / "askhint.yaml"), line, field), str(e)
    assert str(e).startswith(where), str(e)
    assert match in e.reason, str(e)
    return e


# ---- issue 11, item 3: each case as filed ---------------------------------------------------------------

ISSUE_CASES = {
    # a quoted number is text: refused (not read as the number), with a hint
    "max_frames_quoted": ("sampling: {max_frames: \"16\"}\n", 1, "sampling.max_frames", "without quotes"),
    # YAML 1.1 reads 1e3 (no dot) as the text '1e3'
    "max_frames_1e3": ("dataset: {name: d}\nsampling:\n  max_frames: 1e3\n", 3, "sampling.max_frames", "write 1000"),
    "max_frames_fraction": ("sampling:\n  max_frames: 16.5\n", 2, "sampling.max_frames", "whole number"),
    "inclusive_end_text": ("dataset:\n  name: d\n  inclusive_end: \"false\"\n", 3, "dataset.inclusive_end",
                           "true or false"),
    "smoothing_even": ("scoring: {window_s: 4.0,\n  smoothing: 4}\n", 2, "scoring.smoothing", "odd number"),
    "stride_zero": ("scoring:\n  stride_s: 0\n", 2, "scoring.stride_s", "must be > 0"),
    "stride_longer_than_window": ("scoring:\n  window_s: 2.0\n  stride_s: 3.0\n", 3, "scoring.stride_s",
                                  "<= window_s"),
    "two_model_sections": ("model: {batch_size: 2}\nsampling: {max_frames: 8}\nmodel: {batch_size: 8}\n", 3,
                           "model", "duplicate key 'model' (first at line 1)"),
    "batch_size_quoted": ("model:\n  backend: transformers\n  batch_size: \"4\"\n", 3, "model.batch_size",
                          "without quotes"),
    "ablation_size_quoted": ("questions:\n  ablation_sizes: [3, \"4\"]\n", 2, "questions.ablation_sizes[1]",
                             "whole number"),
    "min_cluster_size_unread": ("questions:\n  min_cluster_size: 3\n", 2, "questions.min_cluster_size",
                                "prompts_store/<prompt_set>/settings.yaml"),
    "min_samples_unread": ("questions: {min_samples: 2}\n", 1, "questions.min_samples", "clustering"),
    "cluster_selection_method_unread": ("\nquestions: {cluster_selection_method: leaf}\n", 2,
                                        "questions.cluster_selection_method", "clustering"),
}


@pytest.mark.parametrize("case", ISSUE_CASES, ids=list(ISSUE_CASES))
def test_issue_11_cases_are_refused_naming_file_line_and_field(tmp_path, case):
    _refused(tmp_path, *ISSUE_CASES[case])


# ---- the other rules ----------------------------------------------------------------------------------

OTHER_CASES = {
    "unknown_key": ("sampling:\n  max_frame: 8\n", 2, "sampling.max_frame", "unknown setting (known: max_frames"),
    "unknown_section": ("sampling: {}\nsamplng: {max_frames: 8}\n", 2, "samplng", "unknown section"),
    "source_is_not_a_section": ("source: x\n", 1, "source", "unknown section"),
    "duplicate_nested_key": ("scoring:\n  window_s: 4.0\n  window_s: 2.0\n", 3, "scoring.window_s",
                             "duplicate key 'window_s' (first at line 2)"),
    "duplicate_key_in_a_listed_data_set": ("datasets:\n  - name: a\n    name: b\n", 3, "datasets[0].name",
                                           "duplicate key 'name'"),
    "kind_choice": ("dataset: {kind: kinetics}\n", 1, "dataset.kind", "'ucf_crime', 'xd_violence' or 'folder'"),
    "folder_needs_root": ("dataset:\n  kind: folder\n", 1, "dataset.root", "needs `root`"),
    "unknown_backend": ("model:\n  backend: tgi\n", 2, "model.backend", "registered: transformers, openai, vllm"),
    "openai_needs_urls": ("model:\n  backend: openai\n  path: served\n", 1, "model.base_urls",
                          "needs at least one base URL"),
    "url_scheme": ("model: {backend: openai, base_urls: [gpu-0:8000/v1]}\n", 1, "model.base_urls", "http://"),
    "transformers_family": ("model:\n  family: internvl2_5\n", 2, "model.family", "runs qwen2_5_vl only"),
    "family_choice": ("model:\n  family: llava\n", 2, "model.family", "qwen2_5_vl, internvl2_5"),
    "dtype_choice": ("model: {dtype: fp8}\n", 1, "model.dtype", "'float32', 'bfloat16' or 'float16'"),
    "bool_as_number": ("scoring:\n  window_s: true\n", 2, "scoring.window_s", "must be a number"),
    "window_text": ("scoring:\n  window_s: four\n", 2, "scoring.window_s", "got the text 'four'"),
    "fps_quoted": ("sampling: {fallback_fps: \"4\"}\n", 1, "sampling.fallback_fps", "without quotes"),
    "min_over_max": ("sampling:\n  max_frames: 4\n  min_frames: 8\n", 3, "sampling.min_frames", "<= max_frames"),
    "one_frame": ("sampling:\n  max_frames: 1\n", 2, "sampling.max_frames", ">= 2"),
    "granularity_choice": ("scoring:\n  granularities: [video, clip]\n", 2, "scoring.granularities[1]", "'window'"),
    "granularity_twice": ("scoring:\n  granularities: [video, video]\n", 2, "scoring.granularities", "twice"),
    "no_granularity": ("scoring:\n  granularities: []\n", 2, "scoring.granularities", "at least one"),
    "negative_smoothing": ("scoring: {smoothing: -1}\n", 1, "scoring.smoothing", "odd number"),
    "band_reversed": ("scoring:\n  uncertain_band: [0.8, 0.2]\n", 2, "scoring.uncertain_band", "low <= high"),
    "band_over_one": ("scoring:\n  uncertain_band: [0.2, 1.5]\n", 2, "scoring.uncertain_band[1]", "<= 1"),
    "tree_rule_choice": ("scoring: {tree_frame_rule: mean}\n", 1, "scoring.tree_frame_rule", "'deepest'"),
    "follow_up_choice": ("scoring: {follow_up: always}\n", 1, "scoring.follow_up", "'uncertain'"),
    "shards_bound": ("execution:\n  shards: 0\n", 2, "execution.shards", ">= 1"),
    "per_question_text": ("scoring: {per_question: \"yes\"}\n", 1, "scoring.per_question", "true or false"),
    "section_not_a_mapping": ("sampling: [16]\n", 1, "sampling", "mapping of settings"),
    "listed_kind": ("datasets:\n  - {name: a}\n  - {name: b,\n     kind: xd}\n", 4, "datasets[1].kind",
                    "'xd_violence'"),
    "listed_name_key_part": ("datasets:\n  - name: a\n  - name: b-c\n", 3, "datasets[1].name", "asset-key"),
    "listed_prompt_set_key_part": ("datasets:\n  - {name: a, prompt_set: x.y}\n", 2, "datasets[0].prompt_set",
                                   "asset-key"),
    "listed_name_twice": ("datasets:\n  - name: a\n  - name: a\n", 3, "datasets[1].name", "used twice"),
    "listed_without_name": ("datasets:\n  - name: a\n  - kind: xd_violence\n", 3, "datasets[1].name",
                            "needs a `name`"),
    "dataset_and_datasets": ("dataset: {name: a}\ndatasets:\n  - name: b\n", 2, "datasets", "either `dataset:`"),
    "executor_choice": ("execution: {executor: ray}\n", 1, "execution.executor", "'celery'"),
    "celery_broker_scheme": ("execution:\n  executor: celery\n  celery:\n    broker: localhost:6379\n", 4,
                             "execution.celery.broker", "redis://"),
    "celery_unknown_key": ("execution:\n  celery: {brokers: redis://x}\n", 2, "execution.celery.brokers",
                           "unknown setting (known: broker, backend"),
    "celery_visibility_bound": ("execution: {celery: {visibility_timeout_s: 1}}\n", 1,
                                "execution.celery.visibility_timeout_s", ">= 5"),
    "bad_yaml": ("sampling: {max_frames: 16\nscoring: {}\n", 2, None, "not valid YAML"),
}


@pytest.mark.parametrize("case", OTHER_CASES, ids=list(OTHER_CASES))
def test_other_bad_settings_are_refused_naming_file_line_and_field(tmp_path, case):
    text, line, field, match = OTHER_CASES[case]
    if field is None:  # a syntax error: no field to name
        with pytest.raises(InputError, match=match) as info:
            _load(tmp_path, text)
        assert (info.value.path, info.value.line) == (str(tmp_path / "askhint.yaml"), line)
        return
    _refused(tmp_path, text, line, field, match)


def test_several_problems_report_the_first_by_line_and_count_the_rest(tmp_path):
    e = _refused(tmp_path, "model: {batch_size: 0}\nsampling:\n  max_frames: x\n", 1, "model.batch_size", ">= 1")
    assert "1 more problem(s)" in e.reason


def test_bad_settings_stop_the_code_location_from_loading(tmp_path):
    """`definitions` builds the Definitions at import: a bad file fails there, before any asset can run."""
    cfg = tmp_path / "askhint.yaml"
    cfg.write_text("dataset: {name: demo}\nscoring:\n  smoothing: 4\n")
    env = {**os.environ, "ASKHINT_CONFIG": str(cfg), "ASKHINT_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", "import askhint_assets.definitions"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    assert f"InputError: {cfg}:3: scoring.smoothing: must be 0 (no smoothing) or an odd number" in res.stderr


# ---- what is accepted, and how it is read --------------------------------------------------------------


def test_good_values_are_read_as_typed(tmp_path):
    s = _load(tmp_path, (
        "dataset: {name: d, inclusive_end: true}\n"
        "sampling: {max_frames: 8, fallback_fps: 2, max_side: null}\n"
        "scoring: {granularities: video, window_s: 3, stride_s: 1.5, smoothing: 5}\n"
        "questions: {ablation_sizes: 4, target_size: 5}\n"
        "model: {backend: openai, base_urls: http://h:8000/v1, path: served}\n"
        "execution:\n"
    ))
    assert s.dataset.inclusive_end is True and s.sampling.max_side is None
    assert s.scoring.granularities == ("video",) and s.questions.ablation_sizes == (4,)  # one value: a list of one
    assert s.model.base_urls == ("http://h:8000/v1",) and s.source == str(tmp_path / "askhint.yaml")
    # a whole number in a float setting stays an int: the plan hash of `window_s: 3` is what it always was
    assert type(s.scoring.window_s) is int and type(s.sampling.fallback_fps) is int
    assert type(s.scoring.stride_s) is float
    assert s.execution == PipelineSettings().execution  # an empty section: its defaults


def test_empty_file_and_no_file_give_the_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("ASKHINT_CONFIG", raising=False)
    assert load_settings() == PipelineSettings()
    empty = _load(tmp_path, "# nothing set\n")
    assert asdict(empty) == {**asdict(PipelineSettings()), "source": str(tmp_path / "askhint.yaml")}
    with pytest.raises(InputError, match="settings file not found"):
        load_settings(tmp_path / "missing.yaml")


def test_merge_keys_are_not_duplicates(tmp_path):
    s = _load(tmp_path, "datasets:\n  - &a {name: a, kind: xd_violence}\n  - <<: *a\n    name: b\n")
    assert [d.name for d in s.datasets] == ["a", "b"] and s.datasets[1].kind == "xd_violence"


def test_settings_objects_are_frozen_and_validate_when_built_in_code():
    s = PipelineSettings()
    with pytest.raises(AttributeError):
        s.model = None  # type: ignore[misc]
    with pytest.raises(ValueError, match="odd number"):
        ScoringSettings(smoothing=2)
    with pytest.raises(InputError, match=r"datasets\[0\]\.name"):
        PipelineSettings(datasets=(s.dataset.__class__(name="a-b"),))


def test_section_hashes_are_those_of_the_untyped_settings():
    """Asset code versions hash these: the values of the demo defaults, as computed before the typing. The model
    section's changed on purpose when model.revision and model.video_input were added and
    model.smoke_train_seconds removed (652ee3d7fb before), and when model.video_timing and model.max_model_len
    were added (3c9d8d6b86 before)."""
    s = PipelineSettings()
    assert s.section_hash("model") == "e5af6fdfee"
    assert s.section_hash("dataset") == "1af4095b06"


def test_smoothing_rule_matches_where_it_is_used():
    """The settings accept a kernel exactly when the evaluation can use it (0 and 1: no smoothing)."""
    for k in range(-3, 12):
        try:
            ScoringSettings(smoothing=k)
            accepted = True
        except ValueError:
            accepted = False
        try:
            if k > 1:  # frame_scores_for smooths only kernels > 1
                smooth(np.arange(7.0), k)
            usable = k >= 0
        except ValueError:
            usable = False
        assert accepted == usable, k


def test_choices_are_those_of_the_code_that_uses_them():
    from askhint_assets.settings import DatasetSettings, ModelSettings
    from askhint_assets.vlm.backends.transformers_backend import _DTYPES
    from askhint_assets.vlm.families import FAMILIES

    assert typing.get_args(DatasetKind) == KIND_NAMES
    assert typing.get_args(typing.get_type_hints(DatasetSettings)["kind"]) == KIND_NAMES
    assert typing.get_args(typing.get_type_hints(ModelSettings)["dtype"]) == tuple(_DTYPES)
    assert registry.BUILTIN_BACKENDS == ("transformers", "openai", "vllm")
    for name in registry.BUILTIN_BACKENDS:
        families = registry.get_backend_entry(name).families
        assert families is None or set(families) <= set(FAMILIES)


def test_a_registered_backend_name_is_a_valid_setting(tmp_path):
    registry.register_backend("settings_test_fake", lambda model, **_: None, local_model=False)
    try:
        assert _load(tmp_path, "model: {backend: settings_test_fake}\n").model.backend == "settings_test_fake"
    finally:
        forget_backend("settings_test_fake")
    _refused(tmp_path, "model: {backend: settings_test_fake}\n", 1, "model.backend", "unknown backend")


def test_example_configs_load():
    for p in sorted((ROOT / "configs").glob("*.yaml")):
        assert load_settings(p).source == str(p)
