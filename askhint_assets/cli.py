"""The ``askhint`` command line. Thin: parsing, metrics and files live in the library modules."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from askhint_assets import ids
from askhint_assets.datasets.registry import KIND_NAMES
from askhint_assets.errors import AskHintError, InputError

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
@click.group()
def main() -> None:
    """askhint: training-free video anomaly detection with a video VLM (ASK-Hint)."""


class _KindChoice(click.Choice):
    """The data set kinds of the registry, spelled as in the settings (``ucf_crime``); the older CLI spelling
    with a hyphen (``ucf-crime``) is still accepted."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return super().convert(value.replace("-", "_") if isinstance(value, str) else value, param, ctx)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6f}"
    return str(v)


@main.command("evaluate")
@click.option("--dataset", type=_KindChoice(KIND_NAMES), required=True, help="Annotation format (data set kind).")
@click.option("--annotations", type=_FILE, required=True, help="Ground-truth annotation file.")
@click.option(
    "--scores",
    type=_FILE,
    required=True,
    help="CSV/Parquet: video,frame,score (per frame) or video,start_frame,end_frame,score (windows).",
)
@click.option("--frame-counts", type=_FILE, help="CSV video,num_frames (frame counts of the video files).")
@click.option(
    "--frame-counts-from-scores",
    is_flag=True,
    help="Per-frame score files only: take max(frame)+1 as each video's length. Hides truncated score "
    "files, so it is off unless asked for.",
)
@click.option("--inclusive-end", is_flag=True, help="Read interval ends as included (default: end excluded).")
@click.option("--window-rule", type=click.Choice(["mean", "max"]), default="mean", show_default=True)
@click.option("--threshold", type=float, default=0.5, show_default=True, help="False-alarm threshold.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=0, help="Video bootstrap resamples for a CI.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--skip-missing", is_flag=True, help="Warn about annotated videos without scores, not fail.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="Append rows to eval_reports.")
@click.pass_context
def evaluate_cmd(ctx: click.Context, **opts: Any) -> None:
    """Pooled frame-level AUC/AP of external scores against a data set's ground truth."""
    from askhint_assets.pipeline.external_scores import evaluate_score_file

    as_json = opts.pop("as_json")
    try:
        report, rows = evaluate_score_file(**opts, warn=lambda message: click.echo(message, err=True))
    except AskHintError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    click.echo(json.dumps(report, allow_nan=False) if as_json else _table(report, rows))


def _table(report: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        ("dataset", report["dataset"]),
        ("videos", f"{report['n_videos']} ({report['n_anomalous_videos']} anomalous, {report['n_skipped']} skipped)"),
        ("frames", f"{report['n_frames']} ({report['n_anomalous_frames']} anomalous)"),
        ("intervals", report["interval_convention"]),
    ]
    lines += [(r["metric"], _fmt(r["value"])) for r in rows]
    width = max(len(k) for k, _ in lines)
    out = [f"{'metric':<{width}}  value"] + [f"{k:<{width}}  {v}" for k, v in lines]
    out += [f"note: {n}" for n in report["notes"]]
    out.append(f"AP: {report['ap_kind']}")
    return "\n".join(out)


@main.command("generate-questions")
@click.option("--prompt-set", "prompt_set", required=True, help="Source prompt set (a folder of the prompt store).")
@click.option("--classes", help="Comma-separated classes to generate (default: all); the others keep their questions.")
@click.option("--out", help="Name of the new prompt set, letters, digits and _ (default: "
              "<prompt-set>_generated_<short hash>).")
@click.pass_context
def generate_questions_cmd(ctx: click.Context, prompt_set: str, classes: str | None, out: str | None) -> None:
    """Ask the configured model (settings file ASKHINT_CONFIG, section model) for 3-5 yes/no questions per class.

    Writes a NEW prompt set in the prompt store (ASKHINT_PROMPTS_STORE): a copy of PROMPT_SET with
    class_questions.yaml replaced, for review; never overwrites an existing folder. Requests go
    through the DuckDB cache, so a rerun sends nothing. If any class gets fewer than 3 valid
    questions, nothing is written and the command exits 1 listing those classes (greedy answers are
    cached: change the model or its settings to get different ones).
    """
    try:
        code = _generate_questions(prompt_set, classes, out)
    except AskHintError as exc:
        click.echo(f"error: {exc}", err=True)
        code = 2
    if code:
        ctx.exit(code)


def _new_prompt_dir(store_dir: Path, name: str) -> Path:
    """``store_dir/name``, refused when the name is not a plain folder name or the folder exists."""
    from askhint_assets.settings import KEY_PART

    if not KEY_PART.match(name or ""):
        raise InputError(f"--out must be letters, digits and _ starting with a letter (a prompt set name is an "
                         f"asset-key prefix when several data sets are listed), got {name!r}")
    dest = store_dir / name
    if dest.exists():
        raise InputError(f"prompt set folder {dest} already exists; choose another --out (nothing was written)")
    return dest


def _generate_questions(prompt_set: str, classes: str | None, out: str | None) -> int:
    """Generate, validate, write and record; returns the exit code (1: some class failed)."""
    import shutil
    import uuid

    from askhint_assets import paths
    from askhint_assets.pipeline.runner import CachedRunner
    from askhint_assets.prompts.loader import load_prompt_set
    from askhint_assets.prompts.versions import class_prompt_content
    from askhint_assets.questions import generate
    from askhint_assets.settings_file import load_settings
    from askhint_assets.store import Store, now
    from askhint_assets.store.prompts import record_prompt_version
    from askhint_assets.vlm.backends.registry import backend_for

    s = load_settings()
    store_dir = paths.prompts_store()
    ps = load_prompt_set(store_dir / prompt_set)
    chosen = [c.strip() for c in classes.split(",") if c.strip()] if classes else list(ps.classes)
    unknown = [c for c in chosen if c not in ps.classes]
    if unknown or not chosen:
        raise InputError(f"--classes: unknown {unknown or chosen}; {prompt_set} has {list(ps.classes)}")
    if out is not None:
        _new_prompt_dir(store_dir, out)  # fail before any request

    backend = backend_for(s.model)
    requests = generate.class_requests(ps, chosen)
    runner = CachedRunner(backend, Store(paths.db_path()), run_id=f"generate-questions-{uuid.uuid4().hex[:8]}",
                          batch_size=s.model.batch_size)
    answers = dict(zip(requests, (r for _, r in runner.run(list(requests.values()))), strict=True))
    kept_curated = [q for c, qs in ps.class_questions.items() if c not in requests for q in qs]
    results = generate.validate_answers(answers, taken=kept_curated)

    st = runner.stats
    click.echo(f"model {backend.model_name} ({backend.backend_name}): {st.requests} request(s), "
               f"{st.sent} sent, {st.cache_hits} from the cache")
    for c, r in results.items():
        click.echo(f"{'ok  ' if r.ok else 'FAIL'} {c}: {len(r.questions)} question(s) kept")
        for q in r.questions:
            click.echo(f"       - {q}")
        for problem in r.problems:
            click.echo(f"       ! {problem}")
    failed = [c for c, r in results.items() if not r.ok]
    if failed:
        click.echo(f"error: fewer than {generate.MIN_QUESTIONS} valid questions for {', '.join(failed)}; "
                   "nothing was written", err=True)
        return 1

    questions = {c: results[c].questions if c in results else ps.class_questions[c] for c in ps.classes}
    gen_settings = generate.generation_settings(ps, list(requests))
    name = out or ids.generated_prompt_set_name(prompt_set, questions, gen_settings)
    dest = _new_prompt_dir(store_dir, name)
    header = {
        "model": f"{backend.model_name} ({backend.backend_name})",
        "backend_fingerprint": backend.fingerprint(),
        "settings": gen_settings,
        "date": now().isoformat(timespec="seconds"),
        "curated (not generated)": [c for c in ps.classes if c not in requests] or "none",
    }
    tmp = store_dir / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        shutil.copytree(store_dir / prompt_set, tmp)
        (tmp / "class_questions.yaml").write_text(generate.render_class_questions(questions, header), encoding="utf-8")
        new_ps = load_prompt_set(tmp)  # the loader's validation, before the folder appears
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    content = class_prompt_content(new_ps)
    version = ids.class_prompts_version(content)
    record_prompt_version(
        Store(paths.db_path()), version=version, prompt_set=new_ps.name, kind="class_prompts", content=content,
        files=new_ps.files, parent=ids.class_prompts_version(class_prompt_content(ps)),
        produced_by=f"model {backend.model_name} ({backend.backend_name}), "
                    f"settings {json.dumps(gen_settings, sort_keys=True)}",
    )
    click.echo(f"wrote prompt set {dest} (class-prompt version {version}); review its class_questions.yaml, "
               f"then use it with `dataset: {{prompt_set: {name}}}` in the settings file named by ASKHINT_CONFIG")
    return 0


def _register() -> None:
    from askhint_assets.cli_band import choose_band_cmd
    from askhint_assets.cli_lineage import diff_cmd, history_cmd, lineage_cmd
    from askhint_assets.cli_ops import observe_cmd, report_cmd, update_cmd, worker_cmd
    from askhint_assets.cli_plan import plan as plan_cmd

    main.add_command(plan_cmd)
    main.add_command(update_cmd)
    main.add_command(observe_cmd)
    main.add_command(report_cmd)
    main.add_command(lineage_cmd)
    main.add_command(diff_cmd)
    main.add_command(history_cmd)
    main.add_command(worker_cmd)
    main.add_command(choose_band_cmd)


_register()


def run() -> None:
    """Console entry point: user-caused errors print ``error: ...`` and exit 2."""
    from askhint_assets.cli_ops import run_cli

    run_cli(main)


if __name__ == "__main__":
    run()
