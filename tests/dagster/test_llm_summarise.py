"""`questions.method: llm` through the Dagster prompt chain: each merged cluster is rewritten by the
configured model (a fake here), a junk answer falls back to the deterministic picks, a rerun sends nothing,
and the default `centrality` never touches the model."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from askhint_assets import paths
from askhint_assets.hashing import hash_obj
from askhint_assets.orchestration import resources
from askhint_assets.orchestration.prompts import build_prompt_assets, guiding_code_version
from askhint_assets.pipeline.qstar import select_qstar
from askhint_assets.refs import ClustersRef, QStarRef
from askhint_assets.settings import PipelineSettings
from askhint_assets.settings_file import load_settings
from askhint_assets.store import Store
from askhint_assets.vlm.backends import registry
from askhint_assets.vlm.types import VLMRequest, VLMResponse
from tests.fakes import forget_backend, registered_backend

ROOT = Path(__file__).resolve().parents[2]
CHAIN = ["class_prompts", "question_embeddings", "question_clusters", "guiding_questions"]


class SummaryBackend:
    """Answers a summary request with N made-up questions, except the first request it ever gets (junk)."""

    backend_name = "fake"
    model_name = "fake-llm"

    def __init__(self) -> None:
        self.sent: list[VLMRequest] = []

    def fingerprint(self) -> dict:
        return {"backend": "fake", "model": self.model_name}

    def generate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
        out = []
        for r in requests:
            self.sent.append(r)
            assert r.frames is None
            if len(self.sent) == 1:
                out.append(VLMResponse("I am not sure what you mean."))
                continue
            n = int(re.search(r"Write (\d+) general", r.messages[-1].text).group(1))
            tag = hash_obj(r.messages[-1].text, length=6)
            out.append(VLMResponse("\n".join(f"{i}. Does the video show event {tag}-{i}?" for i in range(1, n + 1))))
        return out


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ASKHINT_HOME", str(tmp_path))
    monkeypatch.setenv("ASKHINT_PROMPTS_STORE", str(tmp_path / "prompts_store"))
    monkeypatch.delenv("ASKHINT_CONFIG", raising=False)
    shutil.copytree(ROOT / "prompts_store", tmp_path / "prompts_store")
    return tmp_path


def _materialize(s: PipelineSettings, backend: str) -> dg.ExecuteInProcessResult:
    """The prompt chain with the settings' resources, the VLM resource set to the registered ``backend``."""
    vlm = resources.VLMResource.from_settings(replace(s.model, backend=backend))
    return dg.materialize(build_prompt_assets(s), selection=CHAIN, resources={**resources.resources_for(s), "vlm": vlm})


def _qstar(res: dg.ExecuteInProcessResult) -> QStarRef:
    return res.output_for_node("guiding_questions")


def _metadata(res: dg.ExecuteInProcessResult) -> dict:
    (mat,) = [m for m in res.get_asset_materialization_events() if m.asset_key == dg.AssetKey("guiding_questions")]
    return mat.materialization.metadata


@pytest.fixture()
def summary_backend():
    """A SummaryBackend registered as ``summary_fake``: ``(name, backend)``."""
    backend = SummaryBackend()
    with registered_backend("summary_fake", backend) as name:
        yield name, backend


@pytest.mark.slow  # materializes the prompt chain (embedder) several times
def test_llm_method_summarises_clusters_falls_back_on_junk_and_reruns_for_free(home, summary_backend):
    name, backend = summary_backend
    (home / "askhint.yaml").write_text("questions: {method: llm}\n")
    s = load_settings(home / "askhint.yaml")

    first = _materialize(s, name)
    assert first.success
    q = _qstar(first)
    assert len(q.questions) == q.target_size == 6
    status = q.cluster_status
    first_status, *others = status.values()
    assert first_status.startswith("fallback: ") and "no question" in first_status
    assert set(others) == {"llm"} and len(status) == len(backend.sent) >= 2
    assert q.produced_by == "method llm, model smoke-qwen2_5_vl (smoke test) (summary_fake)"

    # the fallback cluster keeps exactly its deterministic picks; the others are the model's questions
    st = Store(paths.db_path())
    clusters: ClustersRef = first.output_for_node("question_clusters")
    assert (clusters.clustering_id, clusters.version) == (q.clustering_id, q.prompt_version)
    selected, _, _ = select_qstar(st, clusters, 6)
    picks0 = [sel.question for sel in selected if sel.cluster == 0]
    assert list(q.questions[: len(picks0)]) == picks0
    assert all(x.startswith("Does the video show event") for x in q.questions[len(picks0) :])

    row = st.query("SELECT method, settings FROM question_sets WHERE question_set = ?", [q.question_set]).to_dicts()
    assert row[0]["method"] == "llm"
    assert json.loads(row[0]["settings"])["produced_by"].startswith("method llm, model ")
    md = _metadata(first)
    assert md["produced_by"].value == q.produced_by and md["requests_sent"].value == len(backend.sent)
    assert md["cluster_status"].value == status and md["size"].value == 6

    sent = len(backend.sent)
    again = _materialize(s, name)
    assert again.success and len(backend.sent) == sent
    assert _qstar(again).question_set == q.question_set and _metadata(again)["requests_sent"].value == 0


def test_centrality_default_never_builds_the_model_and_keeps_its_code_version(home):
    def no_model(model, **options):
        raise AssertionError("centrality must not build a backend")

    registry.register_backend("no_model", no_model, local_model=False, replace=True)
    s = load_settings()
    assets = {a.key.path[-1]: a for a in build_prompt_assets(s) if isinstance(a, dg.AssetsDefinition)}
    gq = assets["guiding_questions"]
    assert "vlm" not in gq.required_resource_keys
    assert gq.code_versions_by_key[gq.key] == "3-" + hash_obj({"target": None, "method": "centrality"}, length=8)
    try:
        res = _materialize(s, "no_model")
    finally:
        forget_backend("no_model")
    assert res.success
    q = _qstar(res)
    assert len(q.questions) == 6 and q.produced_by is None and q.method is None
    assert "produced_by" not in _metadata(res)

    llm = PipelineSettings(questions=type(s.questions)(method="llm"))
    assert guiding_code_version(llm) != guiding_code_version(s)
    other_model = PipelineSettings(questions=llm.questions, model=type(s.model)(path="/models/other"))
    assert guiding_code_version(other_model) != guiding_code_version(llm)
