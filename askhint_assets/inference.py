"""Scoring units with a template: requests → cached responses → parsed, scored prediction rows.

Two templates share this code: ``askhint`` (the two-stage template with the guiding questions Q*)
and ``abstract`` (the paper's baseline, "Is there an anomaly?"). Stage 1 asks Normal/Abnormal and
the score is P(Abnormal) normalised against P(Normal) from the answer-token log-probabilities
(the parsed answer where a backend gives none). Stage 2 (group + rationale) is asked only for units
judged abnormal, and only with the ``askhint`` template.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import TypeVar

import numpy as np

from askhint_assets.pipeline.runner import CachedRunner
from askhint_assets.prompts.templates import (
    STAGE1_CHOICES,
    YES_NO_CHOICES,
    Template,
    Templates,
    abstract_messages,
    stage1_messages,
    stage2_messages,
    yes_no_messages,
)
from askhint_assets.store import now
from askhint_assets.video.units import Unit
from askhint_assets.vlm.context import Prompt
from askhint_assets.vlm.parse import parse_stage1, parse_stage2, parse_yes_no
from askhint_assets.vlm.score import abnormal_probability, aggregate_question_scores, yes_probability
from askhint_assets.vlm.types import VLMRequest, VLMResponse

T = TypeVar("T")
R = TypeVar("R")

TEMPLATES = (Template.ASKHINT, Template.ABSTRACT)  # per_question: see predict_per_question
ABSTRACT_QUESTION_SET = "abstract"


def prediction_row(u: Unit, *, question_set: str, model: str, template: str, run_id: str, **fields) -> dict:
    """One ``predictions`` row for unit ``u``; stage-2 fields default to empty."""
    return {
        "dataset": u.dataset,
        "plan": u.plan,
        "video_id": u.video_id,
        "unit": u.unit,
        "start_frame": u.start_frame,
        "end_frame": u.end_frame,
        "question_set": question_set,
        "model": model,
        "template": template,
        "group_name": None,
        "rationale": None,
        "raw_stage2": None,
        "stage2_request": None,
        "score_reason": None,
        **fields,
        "run_id": run_id,
        "created_at": now(),
    }


def score_reason(source: str, responses: Sequence[VLMResponse]) -> str | None:
    """Why a unit was not scored from log-probabilities (None when it was).

    ``answer``: the answer text decided the score (0 or 1), because the backend gave no log-probabilities
    for the choices (the server's reason where it said one, e.g. a server that ignores ``logprobs``).
    """
    if source == "logprobs":
        return None
    if source == "failed":
        return next((r.error for r in responses if not r.ok), None)
    said = [r.extra.get("no_logprobs") for r in responses if r.ok and r.choice_logprobs is None]
    why = next((w for w in said if w), None) or ("no log-probabilities for the choices in the response"
                                                  if said else "the choices were not in the returned top tokens")
    return why if source == "answer" else f"{why}; the answer did not parse either"


def _chunks(items: Sequence[Unit], size: int) -> Iterator[Sequence[Unit]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def prefetched(items: Iterable[T], load: Callable[[T], R]) -> Generator[tuple[T, R], None, None]:
    """Yield ``(item, load(item))`` in order, loading the next item in a background thread meanwhile.

    While the caller works on item i, ``load(item i+1)`` runs on one worker thread; at most one item is
    loaded ahead (bounded memory). An exception from ``load`` is raised when its item is reached. The
    worker is shut down (pending loads cancelled) when the generator ends, raises or is closed: wrap it
    in ``contextlib.closing`` so that also happens when the caller's loop body raises.
    """
    it = iter(items)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="askhint-prefetch")
    try:
        ahead: tuple[T, Future[R]] | None = None
        for item in it:
            ahead = (item, pool.submit(load, item))
            break
        while ahead is not None:
            item, fut = ahead
            ahead = None
            for nxt in it:  # start the next load before handing this item out
                ahead = (nxt, pool.submit(load, nxt))
                break
            yield item, fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _loaded_chunks(
    units: Sequence[Unit], chunk_size: int, load_frames: Callable[[str], np.ndarray | None], prefetch: bool
) -> Generator[tuple[Sequence[Unit], dict[str, np.ndarray]], None, None]:
    """Chunks of ``units`` with their frames by ``frames_key`` (the next chunk's loaded meanwhile if ``prefetch``);
    a unit for which ``load_frames`` returns ``None`` (its video could not be decoded) is left out."""

    def load(chunk: Sequence[Unit]) -> dict[str, np.ndarray]:
        loaded = {key: load_frames(key) for key in dict.fromkeys(u.frames_key for u in chunk)}
        return {key: frames for key, frames in loaded.items() if frames is not None}

    chunks = _chunks(list(units), chunk_size)
    pairs = prefetched(chunks, load) if prefetch else ((chunk, load(chunk)) for chunk in chunks)
    try:  # units whose frames could not be had (``load_frames`` gave None) are left out
        for chunk, frames in pairs:
            kept = [u for u in chunk if u.frames_key in frames]
            if kept:
                yield kept, frames
    finally:
        pairs.close()  # both are generators: this stops the prefetch thread


def predict(
    units: Sequence[Unit],
    *,
    template: str,
    templates: Templates,
    questions: Sequence[str],
    question_set: str,
    model: str,
    runner: CachedRunner,
    load_frames: Callable[[str], np.ndarray | None],
    max_new_tokens_stage2: int = 64,
    chunk_size: int = 16,
    on_rows: Callable[[list[dict]], None] | None = None,
    prefetch: bool = True,
    stage2_for: Callable[[Unit], bool] | None = None,
) -> list[dict]:
    """Score every unit; rows are handed to ``on_rows`` chunk by chunk (so progress is kept).

    ``stage2_for``: which abnormal units are asked stage 2 (default: all; a tree asks it only at its leaves).

    A unit whose stage-1 request failed (after the backend's retries) comes back with
    ``score_source="failed"`` and is not handed to ``on_rows``. With ``prefetch``, the next chunk's
    frames are loaded in a background thread while the model answers the current chunk.
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES}")
    if template == Template.ASKHINT and not questions:
        raise ValueError("the askhint template needs at least one guiding question")
    qs = list(questions)
    all_rows: list[dict] = []
    with closing(_loaded_chunks(units, chunk_size, load_frames, prefetch)) as loaded:
        for chunk, frames in loaded:
            all_rows.extend(_predict_chunk(chunk, frames, template, templates, qs, question_set, model, runner,
                                           max_new_tokens_stage2, on_rows, stage2_for))
    return all_rows


def _predict_chunk(
    chunk: Sequence[Unit],
    frames: dict[str, np.ndarray],
    template: str,
    templates: Templates,
    qs: list[str],
    question_set: str,
    model: str,
    runner: CachedRunner,
    max_new_tokens_stage2: int,
    on_rows: Callable[[list[dict]], None] | None,
    stage2_for: Callable[[Unit], bool] | None = None,
) -> list[dict]:
    """:func:`predict` on one chunk whose frames are loaded: stage 1, stage 2 where abnormal, rows."""

    def request(u: Unit, messages, choices, max_new_tokens: int) -> VLMRequest:
        return VLMRequest(
            messages=messages,
            frames=frames[u.frames_key],
            frames_fps=u.frames_fps,
            frames_key=u.frames_key,
            choices=choices,
            max_new_tokens=max_new_tokens,
        )

    msgs1 = stage1_messages(templates, qs) if template == Template.ASKHINT else abstract_messages(templates)
    stage1 = runner.run([request(u, msgs1, STAGE1_CHOICES, 4) for u in chunk])
    rows = []
    need_stage2: list[int] = []
    for i, (u, (h1, r1)) in enumerate(zip(chunk, stage1, strict=True)):
        answer = parse_stage1(r1.text) if r1.ok else None
        scored = abnormal_probability(r1.choice_logprobs if r1.ok else None, answer)
        rows.append(
            prediction_row(
                u,
                question_set=question_set,
                model=model,
                template=template,
                run_id=runner.run_id,
                score=float(scored.score),
                score_source=scored.source if r1.ok else "failed",
                score_reason=score_reason(scored.source if r1.ok else "failed", [r1]),
                answer=answer,
                parse_ok=answer is not None,
                raw_stage1=r1.text if r1.ok else f"ERROR: {r1.error}",
                stage1_request=h1,
            )
        )
        abnormal = answer == templates.abnormal_word or (answer is None and scored.score >= 0.5)
        if template == Template.ASKHINT and r1.ok and abnormal and (stage2_for is None or stage2_for(u)):
            need_stage2.append(i)
    if need_stage2:
        reqs = []
        for i in need_stage2:
            u = chunk[i]
            msgs2 = stage2_messages(templates, qs, templates.abnormal_word)
            reqs.append(request(u, msgs2, None, max_new_tokens_stage2))
        for i, (h2, r2) in zip(need_stage2, runner.run(reqs), strict=True):
            row = rows[i]
            row["stage2_request"] = h2
            if not r2.ok:
                row["raw_stage2"] = f"ERROR: {r2.error}"
                row["parse_ok"] = False
                continue
            parsed = parse_stage2(r2.text, tuple(templates.groups))
            row["raw_stage2"] = r2.text
            row["group_name"] = parsed.group
            row["rationale"] = parsed.rationale
            row["parse_ok"] = bool(row["parse_ok"] and parsed.ok)
    if on_rows:  # units whose stage-1 request failed are not stored: a rerun asks them again
        on_rows([r for r in rows if r["score_source"] != "failed"])
    return rows


_SOURCE_STRENGTH = {"none": 0, "answer": 1, "logprobs": 2}


def _weakest(sources) -> str:
    """The least reliable score source among a unit's questions (none < answer < logprobs)."""
    return min(sources, key=_SOURCE_STRENGTH.__getitem__)


def predict_per_question(
    units: Sequence[Unit],
    *,
    templates: Templates,
    questions: Sequence[str],
    question_set: str,
    model: str,
    runner: CachedRunner,
    load_frames: Callable[[str], np.ndarray | None],
    aggregate: str = "max",
    chunk_size: int = 16,
    on_rows: Callable[[list[dict]], None] | None = None,
    prefetch: bool = True,
) -> list[dict]:
    """Per-question mode: each Q* question asked on its own (Yes/No) over the same frames.

    A unit's score aggregates P(Yes) over the questions: ``max`` (any cue fires; default) or ``mean``.
    Each question is its own cached request, so editing one question re-asks only that question.
    ``answer`` is Abnormal when any question was answered Yes; ``rationale`` lists those questions.
    ``prefetch``: as in :func:`predict`.
    """
    if not questions:
        raise ValueError("per-question mode needs at least one guiding question")
    qs = list(questions)
    all_rows: list[dict] = []
    with closing(_loaded_chunks(units, chunk_size, load_frames, prefetch)) as loaded:
        for chunk, frames in loaded:
            reqs = [
                VLMRequest(
                    messages=yes_no_messages(templates, q),
                    frames=frames[u.frames_key],
                    frames_fps=u.frames_fps,
                    frames_key=u.frames_key,
                    choices=YES_NO_CHOICES,
                    max_new_tokens=4,
                )
                for u in chunk
                for q in qs
            ]
            answers = runner.run(reqs)
            rows = []
            for i, u in enumerate(chunk):
                per_q = answers[i * len(qs) : (i + 1) * len(qs)]
                failed = any(not r.ok for _, r in per_q)
                parsed = [parse_yes_no(r.text) if r.ok else None for _, r in per_q]
                scored = [
                    yes_probability(r.choice_logprobs if r.ok else None, p)
                    for (_, r), p in zip(per_q, parsed, strict=True)
                ]
                source = "failed" if failed else _weakest(s.source for s in scored)
                yes = [q for q, p in zip(qs, parsed, strict=True) if p]
                rows.append(
                    prediction_row(
                        u,
                        question_set=question_set,
                        model=model,
                        template=Template.PER_QUESTION,
                        run_id=runner.run_id,
                        score=float(aggregate_question_scores([s.score for s in scored], aggregate)),
                        score_source=source,
                        score_reason=score_reason(source, [r for _, r in per_q]),
                        answer=templates.abnormal_word if yes else templates.normal_word,
                        rationale="; ".join(yes) or None,
                        parse_ok=all(p is not None for p in parsed),
                        raw_stage1=json.dumps([r.text if r.ok else f"ERROR: {r.error}" for _, r in per_q]),
                        stage1_request=json.dumps([h for h, _ in per_q]),
                    )
                )
            if on_rows:
                on_rows([r for r in rows if r["score_source"] != "failed"])
            all_rows.extend(rows)
    return all_rows


def prompts_to_check(template: str, t: Templates, questions: list[str], prompt_dir: Path,
                     count: Callable[[str], int]) -> list[Prompt]:
    """The prompts ``template`` sends (with Q*), each with the file and item to blame when it is too long:
    the longest question (``class_questions.yaml``) where it has more tokens than the template's own text,
    else the template (``templates.yaml``)."""
    qs = questions or [""]
    longest_q = max(qs, key=count)

    def blame(text: str) -> tuple[Path, str]:
        if questions and count(longest_q) >= count(text):
            return prompt_dir / "class_questions.yaml", longest_q
        return prompt_dir / "templates.yaml", text

    if template == Template.ABSTRACT:
        return [Prompt("abstract", abstract_messages(t), *blame(t.abstract))]
    if template == Template.PER_QUESTION:
        return [Prompt("per-question", yes_no_messages(t, longest_q), *blame(t.yes_no))]
    return [Prompt("askhint stage 1", stage1_messages(t, questions), *blame(t.stage1)),
            Prompt("askhint stage 2", stage2_messages(t, questions, t.abnormal_word), *blame(t.stage2))]
