"""What a prediction asset says about its rows, and its data version, from hand-built rows (no Dagster)."""

from __future__ import annotations

import dataclasses

import pytest

from askhint_assets import ids
from askhint_assets.errors import PipelineError
from askhint_assets.hashing import hash_obj
from askhint_assets.pipeline.prediction_summary import gather_shard_refs, summarise_predictions
from askhint_assets.pipeline.runner import RunStats
from askhint_assets.refs import FramesRef, FrozenDict, PredictionsRef, as_dict


def _row(video: str, unit: int, score: float, *, template: str = "askhint", source: str = "logprobs",
         group: str | None = None, parse_ok: bool = True, path: str | None = None) -> dict:
    return {"plan": "pl-w", "video_id": video, "unit": unit, "score": score,
            "answer": "Abnormal" if group else "Normal", "group_name": group,
            "rationale": f"why {video}/{unit}" if group else None, "template": template,
            "score_source": source, "parse_ok": parse_ok, "score_path": path}


ROWS = [_row("a", 0, 0.1), _row("a", 1, 0.9, group="Fighting"), _row("b", 0, 0.5, source="answer", parse_ok=False),
        _row("b", 1, 0.7, group="Theft", source="answer")]
COMMON = dict(template="askhint", question_set="qs-1", templates_version="tp-1",
              frames=FramesRef("toy", FrozenDict({"window": "pl-w"})), model="m", smoke=True,
              fingerprint={"backend": "x"})


def _version(rows: list[dict], **kw) -> str:
    return ids.predictions_version(rows, kw.get("template", "askhint"), kw.get("question_set", "qs-1"),
                                   kw.get("fingerprint", {"backend": "x"}), kw.get("templates_version", "tp-1"))


def test_summary_counts_units_sources_and_samples_the_rationales():
    run = RunStats(requests=6, cache_hits=2, sent=4, failed=0)
    s = summarise_predictions(ROWS, run=run, seconds=1.23456, **COMMON)
    assert s.stats == {"units": 4, "videos": 2, "requests": 6, "cache_hits": 2, "requests_sent": 4, "unparsed": 1,
                       "seconds": 1.23}
    assert s.sources == {"logprobs": 2, "answer": 2}
    assert s.sample == [{"video": "a", "unit": 1, "score": 0.9, "group": "Fighting", "why": "why a/1"},
                        {"video": "b", "unit": 1, "score": 0.7, "group": "Theft", "why": "why b/1"}]
    assert s.ref == PredictionsRef(dataset="toy", plans=FrozenDict({"window": "pl-w"}), question_set="qs-1",
                                   templates_version="tp-1", model="m", template="askhint", smoke_model=True)
    # the dict the asset returned before typed references (report ids hash it)
    assert as_dict(s.ref) == {"dataset": "toy", "plans": {"window": "pl-w"}, "question_set": "qs-1",
                              "templates_version": "tp-1", "model": "m", "template": "askhint", "smoke_model": True}
    assert s.version == _version(ROWS) and s.failed_units == 0


def test_at_most_eight_rationales_are_sampled():
    rows = [_row("v", i, 0.9, group="Fighting") for i in range(12)]
    s = summarise_predictions(rows, run=RunStats(), seconds=0, **COMMON)
    assert [r["unit"] for r in s.sample] == list(range(8))


def test_a_shard_carries_its_version_and_counts_for_the_gathering_asset():
    s = summarise_predictions(ROWS, run=RunStats(), seconds=0.5, shard=(1, 3), **COMMON)
    assert s.ref.shard == (1, 3) and s.ref.scores_version == s.version and s.ref.stats == s.stats
    assert s.ref.without_shard() == summarise_predictions(ROWS, run=RunStats(), seconds=0.5, **COMMON).ref


def test_failed_requests_raise_and_say_what_is_kept():
    rows = [*ROWS, _row("c", 0, 0.5, source="failed")]
    with pytest.raises(PipelineError) as e:
        summarise_predictions(rows, run=RunStats(requests=5, sent=3, failed=2), seconds=0, **COMMON)
    assert str(e.value) == ("askhint: 2 model request(s) failed after retries (1 unit(s) unscored); the 4 other "
                            "units are stored. Materialize again to retry only the failed requests.")
    assert e.value.metadata == {"failed_requests": 2, "sent": 3}


def test_the_version_depends_on_the_scores_not_on_row_order_or_float_noise():
    base = _version(ROWS)
    assert _version(list(reversed(ROWS))) == base
    assert _version([{**ROWS[0], "score": 0.1 + 1e-12}, *ROWS[1:]]) == base  # rounded to 9 places
    assert _version([{**ROWS[0], "score": 0.1 + 1e-6}, *ROWS[1:]]) != base
    assert _version([{**ROWS[1], "group_name": "Theft"}, ROWS[0], *ROWS[2:]]) != base
    for changed in ({"question_set": "qs-2"}, {"fingerprint": {"backend": "y"}}, {"templates_version": "tp-2"}):
        assert _version(ROWS, **changed) != base, changed
    assert _version([{**r, "rationale": "other"} for r in ROWS]) == base  # rationales are not scores


def test_the_version_includes_the_follow_up_rows_with_their_path():
    follow = [_row("a", 0, 0.4, template="follow_up", path="joint")]
    with_follow = _version([*ROWS, *follow])
    assert with_follow != _version(ROWS)
    assert _version([*ROWS, {**follow[0], "score_path": "per_question"}]) != with_follow
    assert _version([*follow, *ROWS]) == with_follow


def _shards(**changed) -> dict[str, PredictionsRef]:
    """Two shards' references, ``a`` (rows of video a) and ``b`` (video b; with ``changed`` fields)."""
    a = summarise_predictions(ROWS[:2], run=RunStats(requests=2, sent=2), seconds=2.0, shard=(0, 2), **COMMON)
    b = summarise_predictions(ROWS[2:], run=RunStats(requests=3, cache_hits=1, sent=2), seconds=5.0, shard=(1, 2),
                              **{**COMMON, **changed})
    return {"askhint_predictions__shard_1": b.ref, "askhint_predictions__shard_0": a.ref}


def test_gathering_sums_the_shards_and_versions_them_in_name_order():
    shards = _shards()
    g = gather_shard_refs(shards)
    whole = summarise_predictions(ROWS, run=RunStats(), seconds=0, **COMMON)
    assert g.ref == whole.ref  # the shard fields are dropped
    assert g.totals == {"units": 4, "videos": 2, "requests": 5, "cache_hits": 1, "requests_sent": 4, "unparsed": 1}
    assert g.version == hash_obj([shards[k].scores_version for k in sorted(shards)])
    assert [r["shard"] for r in g.shards] == sorted(shards) and g.shards[1]["seconds"] == 5.0
    assert g.slowest_seconds == 5.0


def test_a_shard_from_other_settings_or_no_units_anywhere_stops_the_gathering():
    with pytest.raises(PipelineError, match=r"shard askhint_predictions__shard_1 differs from the others in "
                                            r"\['question_set'\]; materialize every shard again"):
        gather_shard_refs(_shards(question_set="qs-2"))
    empty = {k: dataclasses.replace(r, stats=FrozenDict({**r.stats, "units": 0})) for k, r in _shards().items()}
    with pytest.raises(PipelineError, match="no scoring units for data set toy in any shard: every video failed"):
        gather_shard_refs(empty)
