"""Hugging Face's ``transformers serve`` (from the same side environment): its video decoder cannot load on
these machines (torchcodec without FFmpeg's libraries), so every video part fails; askhint then sends images,
says so once and records it in the fingerprint, and the demo completes (problem 7 of issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

from engine.demo import DemoHome, make_home
from engine.server import transformers_server


def test_the_demo_through_transformers_serve_goes_as_images(tmp_path: Path, cache: Path, smoke_dir: Path,
                                                             logs: Path, transformers_home: DemoHome) -> None:
    with transformers_server(logs / "transformers-serve.log") as server:
        model = {"backend": "openai", "path": str(smoke_dir), "base_urls": [server.base_url],
                 "api_key_env": "ASKHINT_NO_KEY"}
        home = make_home(tmp_path / "home", model, cache)
        out = home.materialize()
    text = out.stdout + out.stderr
    assert "fails on a video part" in text and "its frames go as images" in text
    (fp,) = [json.loads(f) for (f,) in home.query("SELECT DISTINCT fingerprint FROM responses")]
    assert fp["video_mode"] == "images" and fp["server"]["video"] is False and fp["server"]["timing"] == "none"
    got, ref = home.predictions("askhint"), transformers_home.predictions("askhint")
    assert set(got) == set(ref)  # every unit answered
    same = sum(got[k][1] == ref[k][1] for k in ref)
    print(f"transformers serve (images) vs transformers backend (video): {same}/{len(ref)} answers equal")
