"""``askhint plan``: units, frames, requests and tokens without a model call or a decoded frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from askhint_assets import cli_plan
from askhint_assets.cli import main
from askhint_assets.pipeline.plan import PlanVideo, estimate, input_mode
from askhint_assets.settings_file import load_settings
from askhint_assets.video import decode
from askhint_assets.video.sampling import SamplingConfig, plan_windows, sample_indices
from askhint_assets.vlm.preprocess import image_tokens, video_tokens
from support.ucf_frame_counts import counts


def settings_file(tmp_path: Path, **model) -> Path:
    data = {"dataset": {"kind": "folder", "root": str(tmp_path / "videos"), "annotations": str(tmp_path / "a.csv")},
            "sampling": {"max_frames": 128, "fallback_fps": 1.0, "max_side": 448},
            "scoring": {"granularities": ["video", "window"], "window_s": 4.0, "stride_s": 2.0},
            "model": {"backend": "transformers", "path": str(tmp_path / "no-model"), **model}}
    f = tmp_path / "settings.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


def test_estimate_from_a_frame_count_list(tmp_path: Path) -> None:
    s = load_settings(settings_file(tmp_path))
    lengths = [9000, 3834, 45]  # 5 min, the UCF mean, 1.5 s
    videos = [PlanVideo(f"v{i}", n, 30.0, 320, 240) for i, n in enumerate(lengths)]
    rep = estimate(s, videos)
    cfg = SamplingConfig(max_frames=128, fallback_fps=1.0, max_side=448)
    windows = [plan_windows(n, 30.0, "window", window_s=4.0, stride_s=2.0) for n in lengths]
    assert rep.units == {"video": 3, "window": sum(map(len, windows))}
    frames = {(i, int(f)) for i, n in enumerate(lengths) for f in sample_indices(n, 30.0, cfg)}
    frames |= {(i, int(f)) for i, ws in enumerate(windows) for w in ws
               for f in sample_indices(lengths[i], 30.0, cfg, start=w.start, end=w.end)}
    assert rep.frames_decoded == len(frames)
    units = rep.units["video"] + rep.units["window"]
    assert rep.requests == {"askhint/stage1": units, "askhint/stage2": units, "abstract": units}
    n128 = video_tokens(128, 240, 320, 3136, 12845056)["tokens"]  # the released checkpoint's bounds
    assert n128 == 6336 and rep.video_tokens["video"][2] == n128 + 2
    assert rep.text_tokens == {} and rep.notes  # no tokenizer here: said, not guessed


def test_tree_best_and_worst_case(tmp_path: Path) -> None:
    f = settings_file(tmp_path)
    data = yaml.safe_load(f.read_text())
    data["scoring"]["granularities"] = ["video", "window", "tree"]
    data["scoring"]["follow_up"] = "uncertain"
    f.write_text(yaml.safe_dump(data))
    s = load_settings(f)
    lengths = [9000, 3834, 45]
    rep = estimate(s, [PlanVideo(f"v{i}", n, 30.0, 320, 240) for i, n in enumerate(lengths)])
    windows = [len(plan_windows(n, 30.0, "window", window_s=4.0, stride_s=2.0)) for n in lengths]
    assert rep.tree_best == 3  # every root judged normal: one request per video
    assert rep.units["tree"] == sum(2 * w - 1 for w in windows)  # every node split: the full binary trees
    assert rep.units["tree"] > rep.units["window"]
    nq = 6  # the UCF prompt set's Q* size; follow-ups: at most one request per question for every unit
    assert rep.requests["follow_up"] == rep.requests["askhint/stage1"] * nq
    text = "\n".join(cli_plan.lines(s, rep, "test", None))
    assert "granularity tree: 3 units at best" in text and f"{rep.units['tree']:,} at worst" in text


def test_questions_per_request_come_from_the_settings_else_the_prompt_set(tmp_path: Path) -> None:
    f = settings_file(tmp_path)
    data = yaml.safe_load(f.read_text())
    data["dataset"]["prompt_set"] = "xd_violence"  # target_size 5 in its settings.yaml
    data["scoring"]["per_question"] = True
    f.write_text(yaml.safe_dump(data))
    vids = [PlanVideo("v", 9000, 30.0, 320, 240)]
    rep = estimate(load_settings(f), vids)
    assert rep.requests["per_question"] == rep.requests["askhint/stage1"] * 5
    data["questions"] = {"target_size": 3}
    f.write_text(yaml.safe_dump(data))
    rep = estimate(load_settings(f), vids)
    assert rep.requests["per_question"] == rep.requests["askhint/stage1"] * 3
    assert estimate(load_settings(f), vids, n_questions=7).requests["per_question"] == rep.requests["abstract"] * 7


def test_images_input_costs_about_twice_the_visual_tokens(tmp_path: Path) -> None:
    video = load_settings(settings_file(tmp_path, backend="openai", base_urls=["http://127.0.0.1:1/v1"]))
    images = load_settings(settings_file(tmp_path, backend="openai", base_urls=["http://127.0.0.1:1/v1"],
                                         video_input="images"))
    vids = [PlanVideo("v", 9000, 30.0, 320, 240)]
    assert input_mode(video) == "video" and input_mode(images) == "images"
    a, b = estimate(video, vids), estimate(images, vids)
    assert b.video_tokens["video"][0] == image_tokens(128, 240, 320)["tokens"] + 2 * 128
    assert b.video_tokens["video"][0] > 1.9 * a.video_tokens["video"][0]


def test_cli_reads_headers_only_and_prints_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "videos").mkdir()
    decode.write_video(tmp_path / "videos" / "clip.mp4", np.full((50, 64, 80, 3), 90, np.uint8), fps=25.0)
    (tmp_path / "a.csv").write_text("video,class,intervals\nclip,Normal,\n")
    monkeypatch.setattr(decode, "decode_frames", lambda *a, **k: pytest.fail("plan decoded frames"))
    monkeypatch.setenv("ASKHINT_HOME", str(tmp_path / "home"))
    out = CliRunner().invoke(main, ["plan", "--config", str(settings_file(tmp_path))])
    assert out.exit_code == 0, out.output
    assert "videos: 1, 50 frames in all" in out.output and "input: video" in out.output
    assert "granularity video: 1 units" in out.output and "response cache: no database yet" in out.output


def test_cli_with_a_frame_count_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lst = tmp_path / "counts.csv"
    lst.write_text("video,num_frames\n" + "".join(f"v{i},{n}\n" for i, n in enumerate(counts(4, 40_000))))
    monkeypatch.setenv("ASKHINT_HOME", str(tmp_path / "home"))
    args = ["plan", "--config", str(settings_file(tmp_path)), "--frame-counts", str(lst), "--fps", "30",
            "--size", "320x240"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    assert "videos: 4, 40,000 frames in all" in out.output
    bad = CliRunner().invoke(main, [*args[:-1], "320by240"])
    assert bad.exit_code != 0 and "--size must be WIDTHxHEIGHT" in bad.output
