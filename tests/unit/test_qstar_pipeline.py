"""Q* in the pipeline layer, without Dagster: the LLM rewrite's fallback rules with a fake request runner, and
the whole embeddings → clusters → Q* path over a temporary store with made-up embeddings."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from askhint_assets import ids
from askhint_assets.hashing import hash_obj
from askhint_assets.pipeline.qstar import guiding_question_set, rewrite_clusters, select_qstar
from askhint_assets.pipeline.questions import cluster_stored_questions
from askhint_assets.prompts.loader import load_prompt_set
from askhint_assets.prompts.versions import class_prompt_content
from askhint_assets.questions.compress import Selected
from askhint_assets.refs import ClustersRef, EmbeddingsRef, as_dict
from askhint_assets.store import Store
from askhint_assets.store.prompts import record_prompt_version, store_embeddings
from askhint_assets.vlm.types import VLMRequest, VLMResponse

ROOT = Path(__file__).resolve().parents[2]

# four clusters of two or three questions; two picks each
QIDS = list("abcdefghij")
TEXTS = [f"Does {x} happen?" for x in QIDS]
CLASSES = ["Fight", "Fight", "Fight", "Theft", "Theft", "Fire", "Fire", "Crash", "Crash", "Crash"]
MEMBERS = {0: "abc", 1: "de", 2: "fg", 3: "hij"}


def _selected() -> list[Selected]:
    out = []
    for c, members in MEMBERS.items():
        for first in members[:2]:
            i = QIDS.index(first)
            out.append(Selected(TEXTS[i], c, 1.0, (first, *(m for m in members if m != first)), i))
    return out


def _runner(answers: dict[int, VLMResponse], sent: list[VLMRequest]):
    """A request runner answering each cluster's request (found by its first member's text) from ``answers``."""

    def run(requests):
        out = []
        for r in requests:
            sent.append(r)
            c = next(c for c, m in MEMBERS.items() if TEXTS[QIDS.index(m[0])] in r.messages[-1].text)
            out.append(answers[c])
        return out

    return run


def test_a_short_or_repeating_answer_keeps_the_clusters_picks():
    answers = {
        0: VLMResponse("1. Is someone hitting a person?\n2. Is a crowd gathering?"),  # good
        1: VLMResponse("- Is something taken?"),  # one of two questions
        2: VLMResponse("Is a CROWD gathering?\nIs there smoke?"),  # repeats what cluster 0 now holds
        3: VLMResponse("does a happen?\nIs a car overturned?"),  # repeats a pick cluster 0 dropped (other case)
    }
    sent: list[VLMRequest] = []
    rw = rewrite_clusters(_selected(), QIDS, CLASSES, TEXTS, _runner(answers, sent))
    assert len(sent) == 4 and all("Write 2 general" in r.messages[-1].text for r in sent)
    assert rw.status["cluster 0"] == "llm"
    assert rw.status["cluster 1"].startswith("fallback: 1 of 2 questions")
    assert rw.status["cluster 2"] == "fallback: repeats a question of another cluster: 'Is a CROWD gathering?'"
    assert rw.status["cluster 3"] == "fallback: repeats a question of another cluster: 'does a happen?'"
    picks = [s.question for s in _selected()]
    assert rw.questions == ("Is someone hitting a person?", "Is a crowd gathering?", *picks[2:])
    assert rw.classes == ("Fight", "Fight", "Theft", "Theft", "Fire", "Fire", "Crash", "Crash")
    assert "LLM summary of 3 questions" in rw.lines[0] and rw.lines[2].endswith("from Theft; LLM fallback)_")


def test_a_failed_or_question_less_answer_keeps_the_picks_and_a_cluster_of_several_classes_names_them():
    answers = {
        0: VLMResponse("", ok=False, error="timeout"),
        1: VLMResponse("I cannot tell."),
        2: VLMResponse("Is something burning?\nIs there smoke?"),
        3: VLMResponse("Is a car overturned?\nDo vehicles collide?"),
    }
    sel = [s if s.cluster != 2 else Selected(s.question, 2, 1.0, (*s.source_ids, "j"), s.index) for s in _selected()]
    rw = rewrite_clusters(sel, QIDS, CLASSES, TEXTS, _runner(answers, []))
    assert rw.status["cluster 0"] == "fallback: summary request failed: timeout"
    assert re.match(r"fallback: the answer has no question", rw.status["cluster 1"])
    assert rw.status["cluster 2"] == rw.status["cluster 3"] == "llm"
    assert rw.classes[4:6] == ("Fire, Crash", "Fire, Crash")  # its members' classes, in question order


def _stored_clusters(tmp_path: Path) -> tuple[Store, dict]:
    """The UCF prompt set's questions in a fresh store, embedded as their class's axis plus a little noise,
    and clustered: the ``question_clusters`` reference."""
    st = Store(tmp_path / "db.duckdb")
    ps = load_prompt_set(ROOT / "prompts_store" / "ucf_crime")
    content = class_prompt_content(ps)
    version = ids.class_prompts_version(content)
    record_prompt_version(st, version=version, prompt_set=ps.name, kind="class_prompts", content=content, files={})
    rows = content["questions"]
    axes = {c: i for i, c in enumerate(dict.fromkeys(r["class"] for r in rows))}
    rng = np.random.default_rng(0)
    vectors = np.stack([np.eye(len(axes))[axes[r["class"]]] + 0.05 * rng.standard_normal(len(axes)) for r in rows])
    store_embeddings(st, version, "made-up", rows, vectors)
    ref = EmbeddingsRef(prompt_set=ps.name, version=version, embedder="made-up")
    return st, ClustersRef(ps.name, version, "made-up", cluster_stored_questions(st, ref).clustering_id)


class Summariser:
    """A text backend answering every summary request with as many new questions as it asks for."""

    backend_name = "fake"
    model_name = "fake-llm"

    def __init__(self) -> None:
        self.sent = 0

    def fingerprint(self) -> dict:
        return {"backend": "fake", "model": self.model_name}

    def generate(self, requests):
        self.sent += len(requests)
        out = []
        for r in requests:
            n = int(re.search(r"Write (\d+) general", r.messages[-1].text).group(1))
            tag = hash_obj(r.messages[-1].text, length=6)
            out.append(VLMResponse("\n".join(f"Is event {tag}-{i} shown?" for i in range(n))))
        return out


def test_guiding_question_set_selects_records_and_rewrites_through_a_backend(tmp_path):
    st, ref = _stored_clusters(tmp_path)
    plain = guiding_question_set(st, ref, "centrality")
    selected, _, _ = select_qstar(st, ref, 6)
    assert plain.questions == tuple(s.question for s in selected) and plain.target_size == 6 and plain.n_clusters >= 2
    assert plain.question_set == ids.question_set_id(list(plain.questions)) and plain.produced_by is None
    row = st.query("SELECT method, settings FROM question_sets WHERE question_set = ?", [plain.question_set]).to_dicts()
    assert row[0]["method"] == "centrality" and json.loads(row[0]["settings"])["target_size"] == 6

    assert len(guiding_question_set(st, ref, "centrality", 4).questions) == 4  # the settings' size wins
    assert as_dict(plain.ref(ref)) == {  # the guiding_questions value, as the dict it was before typed references
        "question_set": plain.question_set, "questions": list(plain.questions), "prompt_set": ref.prompt_set,
        "prompt_version": ref.version, "clustering_id": ref.clustering_id, "target_size": 6,
        "n_clusters": plain.n_clusters, "question_classes": list(plain.classes)}

    backend = Summariser()
    llm = guiding_question_set(st, ref, "llm", backend=backend, model_label="fake-llm (fake)", run_id="t")
    assert llm.produced_by == "method llm, model fake-llm (fake)" and set(llm.cluster_status.values()) == {"llm"}
    assert len(llm.questions) == 6 and all(q.startswith("Is event ") for q in llm.questions)
    assert llm.stats.sent == backend.sent == len(llm.cluster_status)
    written = llm.ref(ref)
    assert (written.method, written.produced_by, written.cluster_status) == ("llm", llm.produced_by, llm.cluster_status)
    assert pickle.loads(pickle.dumps(written)) == written and hash(written) == hash(llm.ref(ref))
    again = guiding_question_set(st, ref, "llm", backend=backend, model_label="fake-llm (fake)")
    assert again.question_set == llm.question_set and again.stats.sent == 0 and backend.sent == llm.stats.sent

    with pytest.raises(ValueError, match="needs backend"):
        guiding_question_set(st, ref, "llm")
    with pytest.raises(ValueError, match="takes no backend"):
        guiding_question_set(st, ref, "centrality", backend=backend)
