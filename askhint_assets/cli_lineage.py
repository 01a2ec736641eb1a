"""``askhint lineage``, ``askhint diff`` and ``askhint history``: where a result came from, read-only."""

from __future__ import annotations

import json
from typing import Any

import click

from askhint_assets import paths


def _store():
    from askhint_assets.store import Store

    return Store(paths.db_path())


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}"


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, allow_nan=False, default=str))


def lineage_text(d: dict[str, Any]) -> str:
    """The lineage dict as indented text, newest artefact first."""
    r = d["report"]
    m = r["metrics"]
    out = [
        f"report {r['report_id']}  ({r['created_at']}, source {r['source']})",
        f"  data set {r['dataset']}, template {r['template']}, granularity {r['granularity']}, "
        f"{r['n_videos']} videos, {r['n_frames']} frames",
        "  " + ", ".join(f"{k} {_pct(m.get(k))}" for k in ("frame_auc", "frame_ap", "video_auc")),
    ]
    if r.get("eval_settings"):
        out.append(f"  evaluation settings {json.dumps(r['eval_settings'], sort_keys=True)}")
    if r.get("smoke_model"):
        out.append("  smoke-test model: the numbers show the wiring works, not ASK-Hint's quality")
    if d.get("baseline"):
        b = d["baseline"]
        out.append(f"  abstract baseline {b['report_id']}: frame_auc {_pct(b['metrics'].get('frame_auc'))}")
    if p := d.get("predictions"):
        out += [
            f"predictions: {p['units']} units of {p['videos']} videos, written {p['first_written']} .. "
            f"{p['last_written']} in {len(p['runs'])} run(s); unparsed {p['unparsed']}, failed {p['failed_units']}",
        ]
    if pl := d.get("plan"):
        out.append(
            f"plan {pl['plan']} ({pl.get('granularity')}): {pl.get('units')} units, up to "
            f"{pl.get('max_units_per_video')} per video, {pl.get('min_frames_per_unit')}-"
            f"{pl.get('max_frames_per_unit')} frames per unit"
        )
        if pl.get("settings"):
            out.append(f"  settings {json.dumps(pl['settings'], sort_keys=True)}")
    if mo := d.get("model"):
        by = ", ".join(f"{a['backend']}/{a['model']} ({a['units']} units)" for a in mo["answered_by"]) or "-"
        out.append(f"model {mo['label']}: answered by {by}")
        for fp in mo.get("fingerprints") or []:
            out.append(f"  fingerprint {json.dumps(fp, sort_keys=True)}")
    if q := d.get("question_set"):
        out.append(f"Q* {q['question_set']} ({len(q['questions'])} questions, method {q['method']}, "
                   f"created {q['created_at']})")
        out += [f"  {i}. {text}" for i, text in enumerate(q["questions"], 1)]
    if c := d.get("clusters"):
        out.append(f"clusters {c['clustering_id']}: {len(c['clusters'])}")
        for cl in c["clusters"]:
            classes = sorted({x["class"] for x in cl["questions"]})
            chosen = sum(x["in_qstar"] for x in cl["questions"])
            out.append(f"  cluster {cl['cluster']}: {len(cl['questions'])} questions ({chosen} in Q*), "
                       f"classes {', '.join(classes)}")
    if cp := d.get("class_prompts"):
        out.append(f"class prompts {cp['version']} (prompt set {cp['prompt_set']}, created {cp['created_at']}, "
                   f"parent {cp['parent'] or '-'}, {cp['produced_by']})")
        out += [f"  {name}: {h}" for name, h in sorted((cp.get("files") or {}).items())]
        if cp["ancestors"]:
            out.append("  ancestors: " + " <- ".join(a["version"] for a in cp["ancestors"]))
    if t := d.get("templates"):
        how = "inferred from timestamps" if t["inferred"] else "recorded"
        out.append(f"templates {t['version'] or '?'} ({how}, created {t['created_at']})")
    if d.get("untraceable"):
        out.append("not traceable from the database:")
        out += [f"  - {g}" for g in d["untraceable"]]
    return "\n".join(out)


def diff_text(d: dict[str, Any]) -> str:
    a, b = d["a"], d["b"]
    out = [
        f"A {a['question_set']} (prompt version {a['prompt_version']}, {a['created_at']})",
        f"B {b['question_set']} (prompt version {b['prompt_version']}, {b['created_at']})",
        f"only in A ({len(d['only_in_a'])}):",
        *[f"  - {q}" for q in d["only_in_a"]],
        f"only in B ({len(d['only_in_b'])}):",
        *[f"  + {q}" for q in d["only_in_b"]],
        f"in both ({len(d['common'])}):",
        *[f"    {q}" for q in d["common"]],
    ]
    for k, (va, vb) in d["settings_changed"].items():
        out.append(f"setting {k}: {va} -> {vb}")
    for p in d["auc"]:
        diff = "n/a" if p["difference"] is None else f"{100 * p['difference']:+.2f}"
        same = "same videos" if p["same_videos"] else "videos differ"
        smoke = ", smoke-test model" if p["smoke_model"] else ""
        out.append(f"frame AUC on {p['dataset']} ({p['model']}, {p['granularity']} {p['plan'] or ''}, {same}{smoke}): "
                   f"A {_pct(p['auc_a'])}  B {_pct(p['auc_b'])}  B-A {diff}")
    if d["auc_note"]:
        out.append(d["auc_note"])
    return "\n".join(out)


def history_text(rows: list[dict[str, Any]], dataset: str | None) -> str:
    if not rows:
        return "no question sets yet"
    out = []
    for r in rows:
        auc = _pct(r.get("frame_auc")) if dataset else ", ".join(
            f"{k} {_pct(v)}" for k, v in r["frame_auc_by_dataset"].items()) or "-"
        out.append(f"{r['created_at']}  {r['question_set']}  {r['prompt_version']}  size {r['size']}  "
                   f"frame AUC {auc}")
    return "\n".join(out)


@click.command("lineage")
@click.option("--report", "report_id", help="Report id or unique prefix (default: the latest ASK-Hint report).")
@click.option("--dataset", help="Data set of the latest report (default: any).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def lineage_cmd(report_id: str | None, dataset: str | None, as_json: bool) -> None:
    """Trace an evaluation report back to its Q*, clusters, class-prompt version, plan and model."""
    from askhint_assets.store.lineage import lineage

    d = lineage(_store(), report_id=report_id, dataset=dataset)
    if as_json:
        _echo_json(d)
    else:
        click.echo(lineage_text(d))


@click.command("diff")
@click.argument("version_a")
@click.argument("version_b")
@click.option("--dataset", help="Compare AUC on this data set only.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def diff_cmd(version_a: str, version_b: str, dataset: str | None, as_json: bool) -> None:
    """Compare two Q* versions (ids or unique prefixes): questions and frame AUC."""
    from askhint_assets.store.lineage import diff

    d = diff(_store(), version_a, version_b, dataset=dataset)
    if as_json:
        _echo_json(d)
    else:
        click.echo(diff_text(d))


@click.command("history")
@click.option("--dataset", help="Only the prompt sets evaluated on this data set, with its frame AUC.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def history_cmd(dataset: str | None, as_json: bool) -> None:
    """Q* versions oldest first, with their prompt version and frame AUC."""
    from askhint_assets.store.lineage import history

    rows = history(_store(), dataset=dataset)
    if as_json:
        _echo_json(rows)
    else:
        click.echo(history_text(rows, dataset))
