"""``askhint plan``: what a run will cost, before it starts, without calling a model or decoding a frame.

For the settings at hand: videos (frame count, fps and size from the container headers, or from a
``video,num_frames`` list with ``--fps`` and ``--size``), the estimate of :mod:`askhint_assets.pipeline.plan`
(units, frames decoded, requests per template, video and prompt tokens; text tokens through the model's
tokenizer where one is at hand) and how many responses the cache already holds for this backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from askhint_assets.errors import AskHintError, InputError
from askhint_assets.pipeline.plan import PlanReport, PlanVideo, estimate, input_mode, pixel_bounds_for


def videos_from_headers(settings) -> list[PlanVideo]:
    """The data set's videos with frame count, fps and size from their headers (nothing decoded)."""
    from askhint_assets.datasets.registry import load_dataset, write_demo
    from askhint_assets.video.decode import probe

    ds = settings.dataset
    if not ds.root and not settings.dataset_root().exists():  # the generated demo, made as the pipeline would
        write_demo(ds.kind, settings.dataset_root())
    data = load_dataset(ds.kind, settings.dataset_root(), ds.annotations, on_error="skip")
    out = []
    for v in data.videos:
        info = probe(v.path)
        out.append(PlanVideo(v.video_id, info.num_frames, info.fps, info.width, info.height))
    return out


def videos_from_list(path: Path, fps: float, size: tuple[int, int]) -> list[PlanVideo]:
    """Videos from a ``video,num_frames`` CSV (the ``--frame-counts`` format) at one fps and size."""
    from askhint_assets.evaluation.score_files import read_frame_counts

    if not fps > 0:
        raise InputError(f"--fps must be positive, got {fps}", field="fps")
    return [PlanVideo(v, n, fps, *size) for v, n in sorted(read_frame_counts(path).items())]


def cached_responses(settings) -> int | None:
    """Responses the cache holds for the configured backend and model (openai: from any server it probed)."""
    from askhint_assets import paths
    from askhint_assets.store import Store

    db = paths.db_path()
    if not Path(db).exists():
        return None
    m = settings.model
    names = {m.path, Path(m.path).name}
    if settings.is_smoke_model:
        from askhint_assets.vlm.backends.registry import resolve_model_path

        names.add(Path(resolve_model_path(m.path)).name)
    held = 0
    for raw, n in Store(db).responses_per_fingerprint().items():
        fp = json.loads(raw)
        if fp.get("backend") == m.backend and fp.get("model") in names:
            held += n
    return held


def lines(settings, rep: PlanReport, source: str, cached: int | None) -> list[str]:
    lo, hi, where = pixel_bounds_for(settings)
    mode = input_mode(settings)
    m, sm = settings.model, settings.sampling
    out = [
        f"askhint plan ({source}; no model called, no frame decoded)",
        f"model: {m.backend} {m.path} ({m.family}); input: {mode}"
        + (" (one video per request: temporal patches and time positions)" if mode == "video"
           else " (one image per frame: about twice the visual tokens, no time positions)"),
        f"pixel bounds per frame: {lo}..{hi} ({where})",
        f"sampling: up to {sm.max_frames} frames, {sm.fallback_fps} fps for short ranges, longer side <= {sm.max_side}",
        f"videos: {rep.videos}, {rep.source_frames:,} frames in all",
    ]
    for g, n in rep.units.items():
        lo_t, mean_t, hi_t = rep.video_tokens[g]
        if g == "tree":
            out.append(f"granularity tree: {rep.tree_best:,} units at best (every video judged normal at its root), "
                       f"{n:,} at worst (every node split); the counts below take the worst case; video tokens per "
                       f"request min {lo_t:,} mean {mean_t:,.0f} max {hi_t:,}")
            continue
        out.append(f"granularity {g}: {n:,} units; video tokens per request min {lo_t:,} mean {mean_t:,.0f} "
                   f"max {hi_t:,}")
    out.append(f"frames decoded: {rep.frames_decoded:,}")
    at_most = {"askhint/stage2": " (at most: units judged abnormal)",
               "follow_up": " (at most: units whose joint score is uncertain, one per question)"}
    out.append("requests: " + ", ".join(f"{k} {v:,}" + at_most.get(k, "") for k, v in rep.requests.items()))
    if rep.text_tokens:
        out.append("text tokens per request: " + ", ".join(f"{k} {v}" for k, v in rep.text_tokens.items()))
        out.append("prompt tokens in all: " + ", ".join(f"{k} {v:,}" for k, v in rep.prompt_tokens.items()))
    out.append("response cache: " + ("no database yet" if cached is None else f"{cached:,} responses held for "
                                     "this backend and model"))
    out += [f"note: {n}" for n in rep.notes]
    return out


@click.command("plan")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Settings YAML (default: $ASKHINT_CONFIG, else the demo).")
@click.option("--frame-counts", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV video,num_frames instead of the data set's videos (with --fps and --size).")
@click.option("--fps", type=float, default=30.0, show_default=True, help="Frame rate of the listed videos.")
@click.option("--size", default="320x240", show_default=True, help="WIDTHxHEIGHT of the listed videos.")
@click.option("--tokenizer", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Model folder whose tokenizer counts the text tokens (default: the configured model's).")
def plan(config: Path | None, frame_counts: Path | None, fps: float, size: str, tokenizer: Path | None) -> None:
    """Print what a run of these settings will cost, without calling a model."""
    from askhint_assets.settings_file import load_settings

    try:
        settings = load_settings(config)
        for s in settings.per_dataset():
            if frame_counts is not None:
                try:
                    w, h = (int(x) for x in size.lower().split("x"))
                except ValueError:
                    raise InputError(f"--size must be WIDTHxHEIGHT, got {size!r}", field="size") from None
                videos, source = videos_from_list(frame_counts, fps, (w, h)), f"list {frame_counts}"
            else:
                videos, source = videos_from_headers(s), f"data set {s.dataset.name} at {s.dataset_root()}"
            tok = _tokenizer(s, tokenizer)
            rep = estimate(s, videos, tok)
            click.echo("\n".join(lines(s, rep, f"settings {settings.source}; {source}", cached_responses(s))))
    except AskHintError as e:
        raise click.ClickException(str(e)) from e


def _tokenizer(settings, folder: Path | None):
    """The tokenizer of ``folder`` or of the configured model where it is on disk, else None."""
    from transformers import AutoTokenizer

    if folder is None:
        _, _, where = pixel_bounds_for(settings)
        folder = Path(where) if Path(where).is_dir() else None
    if folder is None or not (folder / "tokenizer_config.json").is_file():
        return None
    return AutoTokenizer.from_pretrained(folder)
