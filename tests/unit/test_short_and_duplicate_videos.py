"""A video whose data ends before its header's count, and video ids claimed by several files (issue #22)."""

from __future__ import annotations

import warnings
from pathlib import Path

import av
import numpy as np
import pytest

from askhint_assets.datasets import folder, ucf_crime, xd_violence
from askhint_assets.datasets.base import VideoRecord
from askhint_assets.errors import InputError, VideoError
from askhint_assets.video.decode import probe, write_video
from askhint_assets.video.frame_cache import FrameCache
from askhint_assets.video.sampling import SamplingConfig
from askhint_assets.video.units import extract_units, plan_units

FRAMES = 326


def faststart_cut(path: Path, keep_bytes: int, frames: int = FRAMES, fps: float = 25.0) -> Path:
    """A ``frames``-frame H.264 mp4 with its index first (``movflags=faststart``), cut to ``keep_bytes``:
    the header still lists every frame, the data holds only the first ones."""
    rng = np.random.default_rng(0)
    src = write_video(path.with_name("src_" + path.name), rng.integers(0, 256, (frames, 48, 64, 3), np.uint8), fps)
    with av.open(str(src)) as i, av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as o:
        out = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux(i.streams.video[0]):
            if p.dts is not None:
                p.stream = out
                o.mux(p)
    src.unlink()
    path.write_bytes(path.read_bytes()[:keep_bytes])
    return path


def decodable(path: Path) -> int:
    """Independent reference: the frames plain PyAV decodes before the data ends."""
    n = 0
    try:
        with av.open(str(path)) as c:
            for _ in c.decode(video=0):
                n += 1
    except av.FFmpegError:
        pass
    return n


@pytest.fixture(scope="module")
def short_video(tmp_path_factory) -> tuple[Path, int]:
    d = tmp_path_factory.mktemp("short")
    full = faststart_cut(d / "full.mp4", 1 << 40)
    p = d / "clip.mp4"
    p.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    n = decodable(p)
    assert 0 < n < FRAMES // 2, n  # else the cut tests nothing
    return p, n


def test_the_probe_counts_what_decodes_and_keeps_the_headers_claim(short_video):
    p, n = short_video
    info = probe(p)
    assert (info.num_frames, info.header_frames, info.frames_from) == (n, FRAMES, "counted")


def test_the_data_set_keeps_the_frames_it_has_with_a_warning_naming_both_counts(short_video, tmp_path):
    p, n = short_video
    (tmp_path / "clip.mp4").write_bytes(p.read_bytes())
    (tmp_path / "annotations.csv").write_text("video,class,intervals\nclip,Normal,\n")
    with pytest.warns(UserWarning) as w:
        ds = folder.load(tmp_path)
    assert [v.num_frames for v in ds.videos] == [n]
    note = f"video 'clip' ({tmp_path / 'clip.mp4'}): its header lists {FRAMES} frames but only {n} decode"
    assert ds.notes and ds.notes[0].startswith(note), ds.notes
    assert any(note in str(x.message) for x in w)


def test_units_planned_past_what_decodes_fail_the_video_instead_of_repeating_a_frame(short_video, tmp_path):
    p, n = short_video
    header_trusting = VideoRecord("clip", "Normal", path=p, num_frames=FRAMES, fps=25.0)
    units = plan_units(header_trusting, "k", SamplingConfig(max_frames=16, max_side=32), "video", 4.0, None)
    assert int(units[0].indices.max()) >= n
    with pytest.raises(VideoError, match=rf"only {n} frames decode, but the units were planned up to frame"):
        extract_units(p, units, FrameCache(tmp_path / "cache"), 32)
    assert not list((tmp_path / "cache").glob("*.npz"))


def _tiny(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, np.zeros((4, 16, 16, 3), np.uint8), 4)


def test_a_folder_id_claimed_by_several_files_names_every_file(tmp_path):
    files = [tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4", tmp_path / "clip.avi"]
    for f in files:
        _tiny(f)
    ann = tmp_path / "annotations.csv"
    ann.write_text("video,class,intervals\nclip,Normal,\n")
    with pytest.raises(InputError) as e:
        folder.load(tmp_path)
    assert str(e.value).startswith(f"{ann}:2: video: video id 'clip' is claimed by 3 files: ")
    assert all(str(f) in str(e.value) for f in files), str(e.value)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        ds = folder.load(tmp_path, on_error="skip")
    assert ds.videos == [] and [k for k, _ in ds.skipped] == ["clip"]


def test_ucf_crime_duplicates_follow_the_class_folder_rule_with_a_warning(tmp_path):
    kept, dropped = tmp_path / "Abuse" / "Abuse001_x264.mp4", tmp_path / "Other" / "Abuse001_x264.mp4"
    for f in (kept, dropped):
        _tiny(f)
    (tmp_path / ucf_crime.ANNOTATION_FILE).write_text("Abuse001_x264.mp4  Abuse  0  2  -1  -1\n")
    with pytest.warns(UserWarning, match="dropped"):
        ds = ucf_crime.load(tmp_path)
    assert [v.path for v in ds.videos] == [kept]
    assert ds.notes == [f"video id 'Abuse001_x264' is claimed by 2 files: took {kept} (under a folder named like "
                        f"its class), dropped {dropped}"]
    _tiny(tmp_path / "Abuse" / "more" / "Abuse001_x264.mp4")  # two under a class folder: no rule decides
    with pytest.raises(InputError, match="is claimed by 3 files"):
        ucf_crime.load(tmp_path)


def test_xd_violence_duplicates_name_every_file(tmp_path):
    name = "v1__#1_label_A"
    files = [tmp_path / f"{name}.mp4", tmp_path / "sub" / f"{name}.mp4"]
    for f in files:
        _tiny(f)
    (tmp_path / xd_violence.ANNOTATION_FILE).write_text("")
    with pytest.raises(InputError) as e:
        xd_violence.load(tmp_path)
    assert f"video id {name!r} is claimed by 2 files" in str(e.value)
    assert all(str(f) in str(e.value) for f in files)


def test_a_video_symlink_loop_and_a_dangling_link_say_so(tmp_path: Path) -> None:
    loop = tmp_path / "loop.mp4"
    loop.symlink_to(loop)
    with pytest.raises(VideoError, match="a symlink loop"):
        probe(loop)
    dangling = tmp_path / "gone.mp4"
    dangling.symlink_to(tmp_path / "nowhere.mp4")
    with pytest.raises(VideoError, match=r"a symlink to a missing file \(.*nowhere\.mp4\)"):
        probe(dangling)


def test_a_file_name_with_a_leading_space_is_named(tmp_path: Path) -> None:
    (tmp_path / " clip.mp4").write_bytes(b"x")
    with pytest.warns(UserWarning, match=r" clip\.mp4: the file name starts or ends with a space"):
        folder.index_videos(tmp_path)
