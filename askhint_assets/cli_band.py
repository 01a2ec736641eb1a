"""``askhint choose-band``: the uncertain band from a validation data set's whole-video scores.

Run the pipeline on a validation data set (a ``datasets:`` entry with ``video`` among the granularities: the demo
generated with another seed, or a list of training videos for UCF-Crime/XD-Violence in a ``folder`` data set),
then this command prints the ``scoring`` lines to put in the settings, ``band_source`` naming where they came
from. It refuses the data sets whose reports the settings produce with the band (their test annotations)
unless ``--allow-test`` says that data set is a validation split.
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
@click.option("--allow-test", is_flag=True, help="The data set is a validation split even though the settings "
              "use the band on it.")
def choose_band_cmd(name: str, config: Path | None, recall: float, false_alarm: float, question_set: str | None,
                    allow_test: bool) -> None:
    """Print scoring.uncertain_band and scoring.band_source chosen on a validation data set."""
    from askhint_assets import paths
    from askhint_assets.evaluation.band import choose_band
    from askhint_assets.orchestration.data import plan_id
    from askhint_assets.settings_file import load_settings
    from askhint_assets.store import Store
    from askhint_assets.store.predictions import whole_video_scores

    try:
        settings = load_settings(config)
        per = {s.dataset.name: s for s in settings.per_dataset()}
        if name not in per:
            raise InputError(f"no data set {name!r} in the settings (known: {', '.join(sorted(per))})",
                             field="dataset")
        uses_band = ("tree" in per[name].scoring.granularities or per[name].scoring.follow_up == "uncertain")
        if uses_band and not allow_test:
            raise InputError(f"{name} is scored with the band (tree or follow-ups): choosing the band on it would "
                             "tune on its annotations; name a validation data set, or pass --allow-test if "
                             f"{name} is one", field="dataset")
        df = whole_video_scores(Store(paths.db_path()), name, plan_id(per[name], "video"))
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
    except (AskHintError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    qs, model = sets[0]
    click.echo("# scoring settings chosen on a validation split (askhint choose-band)")
    click.echo(f"uncertain_band: [{low}, {high}]")
    click.echo(f'band_source: "validation {name}: {len(anomalous)} anomalous / {len(normal)} normal videos, '
               f'whole-video scores of {qs} ({model}), recall {recall}, false alarms {false_alarm}"')
