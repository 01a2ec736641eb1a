"""``askhint choose-band``: the uncertain band from a validation data set's whole-video scores.

Run the pipeline on a validation data set (a ``datasets:`` entry with ``video`` among the granularities: the demo
generated with another seed, or a list of training videos for UCF-Crime/XD-Violence in a ``folder`` data set),
then this command prints the ``scoring`` lines to put in the settings, ``band_source`` naming where they came
from. Where the validation data set is also scored at ``tree`` granularity with every node asked (``uncertain_band``
low 0, so the band decides nothing there), the band's low and ``tree_frame_rule`` are chosen jointly by frame AUC
on its labels, and the grid searched is printed (as YAML comments). It refuses the data sets whose reports the
settings produce with the band (their test annotations) unless ``--allow-test`` says that data set is a validation
split.
"""

from __future__ import annotations

from pathlib import Path

import click

from askhint_assets.errors import AskHintError, InputError


@click.command("choose-band")
@click.option("--dataset", "name", required=True, help="The validation data set (its name in the settings).")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Settings YAML (default: $ASKHINT_CONFIG, else the demo).")
@click.option("--recall", type=float, default=0.95, show_default=True,
              help="Share of anomalous validation videos whose root must be split.")
@click.option("--false-alarm", type=float, default=0.05, show_default=True,
              help="Share of normal validation videos allowed to score above the band.")
@click.option("--question-set", default=None, help="Which Q* (when the data set was scored with several).")
@click.option("--auc-slack", type=float, default=1.0, show_default=True,
              help="With tree scores: take the fewest nodes per video within this many frame AUC points of the best "
              "(0: the best AUC, whatever it asks).")
@click.option("--allow-test", is_flag=True, help="The data set is a validation split even though the settings "
              "use the band on it.")
def choose_band_cmd(name: str, config: Path | None, recall: float, false_alarm: float, question_set: str | None,
                    auc_slack: float, allow_test: bool) -> None:
    """Print scoring.uncertain_band (and tree_frame_rule) with band_source, chosen on a validation data set."""
    from askhint_assets import paths
    from askhint_assets.evaluation.band import candidate_lows, choose_band, choose_tree_point, tree_grid_search
    from askhint_assets.pipeline.data import plan_id
    from askhint_assets.prompts.templates import Template
    from askhint_assets.refs import PredictionKey
    from askhint_assets.settings_file import load_settings
    from askhint_assets.store import Store
    from askhint_assets.store.predictions import node_scores, whole_video_scores
    from askhint_assets.store.videos import load_videos

    try:
        settings = load_settings(config)
        per = {s.dataset.name: s for s in settings.per_dataset()}
        if name not in per:
            raise InputError(f"no data set {name!r} in the settings (known: {', '.join(sorted(per))})",
                             field="dataset")
        sc = per[name].scoring
        full_tree = "tree" in sc.granularities and sc.uncertain_band[0] == 0.0  # every node asked: no band used
        uses_band = ("tree" in sc.granularities and not full_tree) or sc.follow_up == "uncertain"
        if uses_band and not allow_test:
            raise InputError(f"{name} is scored with the band (tree or follow-ups): choosing the band on it would "
                             "tune on its annotations; name a validation data set, or pass --allow-test if "
                             f"{name} is one", field="dataset")
        st = Store(paths.db_path())
        df = whole_video_scores(st, name, plan_id(per[name], "video"))
        if question_set:
            df = df.filter(df["question_set"] == question_set)
        sets = sorted(set(zip(df["question_set"], df["model"], strict=True)))
        if not sets:
            raise InputError(f"no whole-video scores of {name}: materialize its predictions with `video` among "
                             "scoring.granularities first", field="dataset")
        if len(sets) > 1:
            raise InputError(f"{name} was scored with several Q* / models {sets}: pass --question-set",
                             field="question_set")
        anomalous = [s for s, lab in zip(df["score"], df["label"], strict=True) if lab != "Normal"]
        normal = [s for s, lab in zip(df["score"], df["label"], strict=True) if lab == "Normal"]
        low, high = choose_band(anomalous, normal, recall, false_alarm)
        qs, model = sets[0]
        grid, point = [], None
        if "tree" in sc.granularities:
            ref = PredictionKey(dataset=name, question_set=qs, model=model, template=Template.ASKHINT)
            nodes = node_scores(st, ref, plan_id(per[name], "tree"))
            lows = candidate_lows(nodes, sc.uncertain_band[0], [low])
            grid = tree_grid_search(nodes, load_videos(st, name), lows, kernel=sc.smoothing) if nodes else []
            if grid:
                point = choose_tree_point(grid, auc_slack / 100, prefer_low=low)
                low, high = point.low, max(point.low, high)
    except (AskHintError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    source = (f"validation {name}: {len(anomalous)} anomalous / {len(normal)} normal videos, whole-video scores of "
              f"{qs} ({model}), ")
    if point is None:
        source += f"recall {recall}, false alarms {false_alarm}"
        if not full_tree:
            click.echo(f"# tree_frame_rule not chosen: score {name} with `tree` and uncertain_band [0.0, 1.0] (every "
                       "node asked) to choose it with the band's low")
    else:
        click.echo(f"# grid searched on {name} ({len(grid)} points): a tree splitting at score >= low, frames scored "
                   "by the rule; frame AUC on its labels, nodes asked per video")
        click.echo("# | low | tree_frame_rule | frame AUC | nodes per video |")
        for g in grid:
            mark = "  <- chosen" if g == point else ""
            click.echo(f"# | {g.low:.2f} | {g.rule} | {100 * g.frame_auc:.2f} | {g.nodes_per_video:.2f} |{mark}")
        source += (f"low and tree_frame_rule by frame AUC over {len(grid)} grid points of its full tree (fewest nodes "
                   f"within {auc_slack:g} AUC points of the best), false alarms {false_alarm}")
    click.echo("# scoring settings chosen on a validation split (askhint choose-band)")
    click.echo(f"uncertain_band: [{low}, {high}]")
    if point is not None:
        click.echo(f"tree_frame_rule: {point.rule}")
    click.echo(f'band_source: "{source}"')
