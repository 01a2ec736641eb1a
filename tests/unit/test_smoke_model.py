"""The smoke Qwen2.5-VL: built like a real checkpoint, loaded by transformers, served by the backend."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from askhint_assets.demo import smoke_eval
from askhint_assets.demo import smoke_model as sm
from askhint_assets.demo import smoke_train as st
from askhint_assets.demo.synth import render_clip
from askhint_assets.prompts.templates import (
    STAGE1_CHOICES,
    YES_NO_CHOICES,
    default_templates,
    stage1_messages,
    stage2_messages,
    yes_no_messages,
)
from askhint_assets.vlm import families
from askhint_assets.vlm.backends.transformers_backend import TransformersBackend
from askhint_assets.vlm.types import Message, VLMBackend, VLMRequest
from tests.released_template import released_template

QS = ["Do you see punching, kicking, or wrestling between people?", "Do you see a sudden explosion?"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A 2-step build of the recipe's code path (the backend tests need a model, not a trained one)."""
    d = tmp_path_factory.mktemp("smoke") / "smoke-qwen2_5_vl"
    tok = st.build_tokenizer(d)
    st.build_model(d, tok)
    stats = st.train(d, steps=2, batch_size=2, log=None)
    assert stats["steps"] == 2 and math.isfinite(stats["loss"])
    return d


@pytest.fixture(scope="module")
def backend(model_dir) -> TransformersBackend:
    return TransformersBackend(str(model_dir), batch_size=4, max_new_tokens=8)


def _clip(seed: int, event: str | None = "Explosion", n: int = 16) -> np.ndarray:
    return render_clip(event, n, seed=seed)


def test_loads_like_a_real_checkpoint(model_dir) -> None:
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir)
    cfg = model.config
    assert cfg.model_type == "qwen2_5_vl"
    assert cfg.text_config.vocab_size == len(tok)
    for attr, token in (("video_token_id", "<|video_pad|>"), ("image_token_id", "<|image_pad|>"),
                        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")):
        assert getattr(cfg, attr) == tok.convert_tokens_to_ids(token)
    for token in families.QWEN_SPECIAL_TOKENS:
        assert tok.encode(token, add_special_tokens=False) == [tok.convert_tokens_to_ids(token)]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    json.loads((model_dir / "video_preprocessor_config.json").read_text())


def test_answer_words_are_single_tokens(model_dir) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    for w in (*STAGE1_CHOICES, *YES_NO_CHOICES):
        assert len(tok.encode(w, add_special_tokens=False)) == 1
        assert len(tok.encode(" " + w, add_special_tokens=False)) == 1
    # the answer after "assistant\n" tokenises the same alone and in context
    prompt = families.render_prompt("qwen2_5_vl", [Message("user", "x")], None)
    assert tok.encode(prompt + "Abnormal", add_special_tokens=False)[-1] == tok.convert_tokens_to_ids("Abnormal")


def test_chat_template_equals_render_prompt(model_dir) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    msgs = stage1_messages(default_templates(), QS)
    chat = [{"role": "system", "content": msgs[0].text},
            {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": msgs[1].text}]}]
    official = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert official == families.render_prompt("qwen2_5_vl", msgs, families.video_placeholder("qwen2_5_vl"))
    assert tok.chat_template == released_template()  # the committed checkpoint carries the released template


def test_backend_protocol_and_fingerprint(backend, model_dir) -> None:
    assert isinstance(backend, VLMBackend)
    fp = backend.fingerprint()
    assert fp["backend"] == "transformers" and fp["model"] == model_dir.name and fp["greedy"] is True
    assert (fp["min_pixels"], fp["max_pixels"]) == (sm.SMOKE_MIN_PIXELS, sm.SMOKE_MAX_PIXELS)
    assert fp == TransformersBackend(str(model_dir), batch_size=1, max_new_tokens=8).fingerprint()
    assert fp != TransformersBackend(str(model_dir), max_new_tokens=9).fingerprint()


def _stage1(seed: int, event: str | None = "Explosion", n: int = 16) -> VLMRequest:
    return VLMRequest(stage1_messages(default_templates(), QS), _clip(seed, event, n), frames_fps=2.0,
                      choices=STAGE1_CHOICES, max_new_tokens=4)


def test_stage1_text_and_logprobs(backend) -> None:
    (r,) = backend.generate([_stage1(1_000_001)])
    assert r.ok, r.error
    assert isinstance(r.text, str)
    lp = r.choice_logprobs
    assert set(lp) == set(STAGE1_CHOICES)
    assert all(math.isfinite(v) and v <= 0 for v in lp.values())
    assert 0 < sum(math.exp(v) for v in lp.values()) <= 1 + 1e-5
    assert r.latency_s > 0 and r.extra["video_tokens"] == 96 and r.extra["video_grid_thw"] == [8, 6, 8]


def test_batch_equals_one_by_one(backend) -> None:
    t = default_templates()
    reqs = [
        _stage1(1_000_002, "Fighting"),
        _stage1(1_000_003, None),
        VLMRequest(yes_no_messages(t, QS[0]), _clip(1_000_004, "Stealing"), frames_fps=3.0,
                   choices=YES_NO_CHOICES, max_new_tokens=6),
    ]
    together = backend.generate(reqs)
    alone = [backend.generate([r])[0] for r in reqs]
    for a, b in zip(together, alone, strict=True):
        assert a.ok and b.ok
        assert a.text == b.text
        for c in a.choice_logprobs:
            assert a.choice_logprobs[c] == pytest.approx(b.choice_logprobs[c], abs=1e-4)
    assert together[0].extra["batch_size"] == 3


def test_text_only_and_mixed_batch(backend) -> None:
    text = VLMRequest([Message("user", "Summarise these questions into one general question.")], None,
                      max_new_tokens=5)
    (alone,) = backend.generate([text])
    assert alone.ok and alone.choice_logprobs is None and alone.extra["new_tokens"] <= 5
    mixed = backend.generate([_stage1(1_000_005), text, _stage1(1_000_006, None, n=8)])
    assert all(r.ok for r in mixed)
    assert mixed[1].text == alone.text
    assert mixed[2].extra["video_grid_thw"] == [4, 6, 8]
    longer = VLMRequest(yes_no_messages(default_templates(), QS[1]), None, choices=YES_NO_CHOICES,
                        max_new_tokens=5)
    pair = backend.generate([text, longer])  # left padding of text-only prompts
    (longer_alone,) = backend.generate([longer])
    assert pair[0].text == alone.text and pair[1].text == longer_alone.text
    for c in YES_NO_CHOICES:
        assert pair[1].choice_logprobs[c] == pytest.approx(longer_alone.choice_logprobs[c], abs=1e-4)


def test_teacher_forced_choices(backend) -> None:
    groups = tuple(f"Group: {g}" for g in default_templates().groups)  # same first token "Group"
    msgs = stage2_messages(default_templates(), QS, "Abnormal")
    reqs = [VLMRequest(msgs, _clip(s), frames_fps=2.0, choices=groups, max_new_tokens=4)
            for s in (1_000_007, 1_000_008)]
    both = backend.generate(reqs)
    one = backend.generate(reqs[:1])[0]
    for r in both:
        assert r.ok and set(r.choice_logprobs) == set(groups)
        assert all(math.isfinite(v) and v < 0 for v in r.choice_logprobs.values())
    for g in groups:
        assert both[0].choice_logprobs[g] == pytest.approx(one.choice_logprobs[g], abs=1e-4)


def test_bad_request_does_not_sink_the_batch(backend) -> None:
    bad = VLMRequest(stage1_messages(default_templates(), QS), np.zeros((4, 8, 8), np.float32),
                     choices=STAGE1_CHOICES)
    out = backend.generate([_stage1(1_000_009), bad])
    assert out[0].ok and not out[1].ok and "frames" in out[1].error


def test_sampling_and_labels() -> None:
    assert st.sample_indices(32, 16).tolist() == list(range(1, 32, 2))
    assert st.sample_indices(5, 16).tolist() == [0, 1, 2, 3, 4]
    rng = np.random.default_rng(0)
    for i in range(6):
        frames, fps, event, shown = st.sample_clip(rng, i)
        assert frames.shape == (16, 96, 128, 3) and fps > 0
        assert shown == (event is not None)
    assert sm.stage2_answer("Explosion").startswith("Group: Public Safety Incidents\nReason: ")


def test_ensure_is_idempotent_and_atomic(tmp_path) -> None:
    kw = {"steps": 1, "batch_size": 2, "eval_clips": 0, "log": None}
    d = sm.ensure_smoke_model(tmp_path, **kw)
    assert d == tmp_path / sm.model_name(sm.recipe_hash(sm.recipe(1, 0, 2)))  # the recipe hash names it
    assert sm.is_complete(d)
    marker = json.loads((d / sm.MARKER).read_text())
    assert marker["askhint_smoke_test_model"] and "means nothing" in (d / sm.README).read_text()
    assert marker["weights_sha256"] == sm.weights_sha256(d)
    stamp = (d / "model.safetensors").stat().st_mtime_ns
    assert sm.ensure_smoke_model(tmp_path, **kw) == d
    assert (d / "model.safetensors").stat().st_mtime_ns == stamp  # nothing rebuilt
    (d / "tokenizer.json").unlink()  # incomplete → rebuilt
    sm.ensure_smoke_model(tmp_path, **kw)
    assert sm.is_complete(d) and (d / "tokenizer.json").is_file()
    left = sorted(p.name for p in tmp_path.iterdir())  # no tmp/old folder left; the lock and its holder note stay
    assert left == sorted([d.name, f".{d.name}.lock", f".{d.name}.lock.holder"])


def test_two_builds_from_the_recipe_are_bit_identical(tmp_path) -> None:
    """The full recipe's code path with 3 steps instead of SMOKE_TRAIN_STEPS (the full build takes
    minutes; `python -m askhint_assets.demo.smoke_model --rebuild` repeats it and compares with the fixture).
    The second build runs with more torch threads set outside: the recipe's own thread count must win."""
    import torch

    a = sm.build(tmp_path / "a", steps=3, batch_size=2, eval_clips=0, log=None)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        b = sm.build(tmp_path / "b", steps=3, batch_size=2, eval_clips=0, log=None)
    finally:
        torch.set_num_threads(old)
    assert sm.weights_sha256(a) == sm.weights_sha256(b)
    for name in ("tokenizer.json", "config.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    untrained = tmp_path / "untrained"
    st.build_model(untrained, st.build_tokenizer(untrained))
    assert sm.weights_sha256(untrained) != sm.weights_sha256(a)  # the check can fail: training moved the weights


def test_committed_fixture_is_the_current_recipe() -> None:
    """The model every clone uses is committed; it must match the recipe it claims (else: rebuild with
    `python -m askhint_assets.demo.smoke_model --rebuild --write-fixture`)."""
    fixtures = sorted(sm.FIXTURE_ROOT.glob(f"{sm.MODEL_PREFIX}-*"))
    assert [f.name for f in fixtures] == [sm.model_name()], "fixture and recipe differ: rebuild the fixture"
    d = fixtures[0]
    assert sm.is_complete(d, sm.recipe_hash())
    marker = json.loads((d / sm.MARKER).read_text())
    assert marker["recipe"] == json.loads(json.dumps(sm.recipe()))
    assert marker["train"]["steps"] == sm.SMOKE_TRAIN_STEPS
    assert sm.weights_sha256(d) == marker["weights_sha256"]
    assert sm.ensure_smoke_model(log=None) == d  # demo, tests and benchmarks resolve to it


def test_trained_fixture_separates_the_demo_classes(smoke_model_dir) -> None:
    """The committed model answers stage 1 and the abstract prompt on held-out synthetic clips (seeds the
    training never drew) well above chance: computed here through the backend, not read from the marker."""
    held_out = smoke_eval.evaluate(smoke_model_dir, n_clips=24, kinds=("stage1", "abstract"))
    for kind in ("stage1", "abstract"):
        assert held_out[kind]["positives"] > 0 and held_out[kind]["auc"] >= 0.95, held_out


def test_editing_the_prompt_store_leaves_the_model_untouched(tmp_path, monkeypatch) -> None:
    """The recipe, the tokenizer and the backend fingerprint do not read the live prompt store: with a
    question edited, one added and a file deleted there (through both ways of pointing at it), they are
    the same; an edit of the frozen corpus does change the recipe, so the check can fail."""
    import shutil

    from askhint_assets import paths

    h0, tok0 = sm.recipe_hash(), tmp_path / "tok0"
    st.build_tokenizer(tok0)
    fp0 = TransformersBackend(str(sm.ensure_smoke_model(log=None))).fingerprint()
    store = tmp_path / "prompts_store"
    shutil.copytree(paths.PROMPTS_STORE, store)
    q = store / "ucf_crime" / "class_questions.yaml"
    q.write_text(q.read_text().replace("Do you see", "Can you see", 1) + "Fighting2:\n  - Is anyone boxing?\n")
    (store / "xd_violence" / "taxonomy.yaml").unlink()
    monkeypatch.setattr(paths, "PROMPTS_STORE", store)
    monkeypatch.setenv("ASKHINT_PROMPTS_STORE", str(store))
    tok1 = tmp_path / "tok1"
    st.build_tokenizer(tok1)
    assert sm.recipe_hash() == h0
    assert (tok1 / "tokenizer.json").read_bytes() == (tok0 / "tokenizer.json").read_bytes()
    assert TransformersBackend(str(sm.ensure_smoke_model(log=None))).fingerprint() == fp0
    corpus = tmp_path / "corpus"
    shutil.copytree(sm.CORPUS_DIR, corpus)
    cq = corpus / "ucf_crime" / "class_questions.yaml"
    cq.write_text(cq.read_text().replace("Do you see", "Can you see", 1))
    monkeypatch.setattr(sm, "CORPUS_DIR", corpus)
    assert sm.recipe_hash() != h0


def test_the_recipe_hashes_the_training_code_and_what_it_trains_on(tmp_path, monkeypatch) -> None:
    """A change to smoke_train.py, or to the prompts it renders for training (here: the chat rendering),
    names a new model; the committed fixture then no longer matches and must be rebuilt."""
    h0 = sm.recipe_hash()
    code = tmp_path / "smoke_train.py"
    code.write_text(sm.TRAINING_CODE.read_text().replace("weight_decay=0.01", "weight_decay=0.02"))
    monkeypatch.setattr(sm, "TRAINING_CODE", code)
    assert sm.recipe_hash() != h0
    monkeypatch.undo()
    assert sm.recipe_hash() == h0
    render = families.render_prompt
    monkeypatch.setattr(families, "render_prompt", lambda *a, **k: render(*a, **k).replace("\n", "\n\n", 1))
    st.training_inputs_digest.cache_clear()
    try:
        assert sm.recipe_hash() != h0
    finally:
        monkeypatch.undo()
        st.training_inputs_digest.cache_clear()
    assert sm.recipe_hash() == h0
