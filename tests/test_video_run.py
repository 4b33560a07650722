"""Videos through `nst-fast run`, the Python API and `nst-fast eval --video`: a folder with a photo,
videos and a corrupt one; timing, sound and names survive; reruns skip; the options go through.

Tiny clips (48x36 and an odd 47x35, 6 frames at 30000/1001 fps) made here with PyAV, and a
random-weight transformer network, so the whole file runs in seconds."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

av = pytest.importorskip("av", reason="video needs PyAV: pip install 'nst-fast[video]'")
pytest.importorskip("cv2", reason="video needs OpenCV: pip install 'nst-fast[video]'")

from nst_fast.clips import pan_frames, write_clip  # noqa: E402
from nst_fast.cli import main  # noqa: E402

FRAMES = 6


def scene(h=120, w=160, seed=0) -> np.ndarray:
    """Smooth colours with some structure, for the flow to follow."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 10, w // 10, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


@pytest.fixture(scope="module")
def net(tmp_path_factory, vgg_weights):
    """A random transformer network, saved as <style>.safetensors (the cheapest real model)."""
    from nst_fast.models import save_model
    from nst_fast.transformer_net import TransformerNet

    path = tmp_path_factory.mktemp("nets") / "toy.safetensors"
    torch.manual_seed(0)
    save_model(path, TransformerNet(), {"method": "transformer", "encoder_id": vgg_weights.encoder_id})
    return path


@pytest.fixture
def folder(tmp_path):
    """in/photo.png, in/clip.mp4 (48x36, no sound), in/sub/odd.mkv (47x35, AAC tone), in/broken.mp4."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(scene(30, 40)).save(src / "photo.png")
    write_clip(src / "clip.mp4", pan_frames(scene(), (48, 36), FRAMES), tone=None)
    write_clip(src / "sub" / "odd.mkv", pan_frames(scene(seed=1), (47, 35), FRAMES), pix_fmt="yuv444p")
    good = (src / "clip.mp4").read_bytes()
    (src / "broken.mp4").write_bytes(good[: len(good) // 3])  # truncated: the index but no frames
    return src


def invoke(*args):
    return CliRunner().invoke(main, ["run", "-m", "transformer", "-s", "toy", "--backend", "torch",
                                     *map(str, args)])


def times(path):
    """Each frame's time (s), the container's duration (us), and (audio samples, rate) or None."""
    with av.open(str(path)) as c:
        frame_times = [f.time for f in c.decode(video=0)]
        duration = c.duration
    with av.open(str(path)) as c:
        audio = None
        if c.streams.audio:
            audio = sum(f.samples for f in c.decode(c.streams.audio[0])), c.streams.audio[0].rate
    return frame_times, duration, audio


def test_folder_with_photo_videos_and_a_corrupt_one(folder, tmp_path, net):
    out, report = tmp_path / "out", tmp_path / "report.json"
    result = invoke(folder, "--model", net, "-o", out, "--report", report, "--verbose",
                    "--contact-sheet", tmp_path / "sheet.jpg")
    assert result.exit_code == 1, result.output  # one file failed, as for photos
    assert Image.open(tmp_path / "sheet.jpg").size[1] < 600  # one row, the photo: videos are left out
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "nst-fast.json")
    assert made == ["clip.mp4", "photo.png", "sub/odd.mkv"]  # names and containers kept, nothing partial
    assert Image.open(out / "photo.png").size == (40, 30)
    for rel in ("clip.mp4", "sub/odd.mkv"):
        src_times, src_duration, src_audio = times(folder / rel)
        got_times, got_duration, got_audio = times(out / rel)
        assert len(got_times) == FRAMES
        assert got_times == pytest.approx(src_times, abs=1e-3), rel  # each frame at its input time
        assert got_duration == pytest.approx(src_duration, abs=2e4), rel
        assert got_audio == src_audio, rel  # the tone copied (None: no sound, none added)
    assert times(out / "sub/odd.mkv")[2] is not None
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(folder / "broken.mp4") in errors[0], errors
    assert "truncated" in errors[0] or "cannot read" in errors[0] or "no frame" in errors[0], errors
    assert "3 done, 0 skipped, 1 failed" in result.output
    assert f"2 videos: {2 * FRAMES} frames in" in result.output and "frames/s" in result.output
    assert any(line.startswith(f"done: {folder / 'clip.mp4'}") and f"{FRAMES} frames" in line
               for line in result.output.splitlines())

    rows = {row["input"]: row for row in json.loads(report.read_text())["files"]}
    clip = rows[str(folder / "clip.mp4")]
    assert clip["status"] == "done" and clip["frames"] == FRAMES and clip["seconds"] > 0
    assert clip["fps"] == pytest.approx(FRAMES / clip["seconds"], rel=0.01)
    assert rows[str(folder / "broken.mp4")]["status"] == "failed" and rows[str(folder / "broken.mp4")]["frames"] is None
    assert "frames" not in rows[str(folder / "photo.png")]

    again = invoke(folder, "--model", net, "-o", out)
    assert again.exit_code == 1 and "0 done, 3 skipped, 1 failed" in again.output, again.output


def test_stabilize_options_go_through_and_are_recorded(folder, tmp_path, net):
    clip = folder / "clip.mp4"
    decoded = {}
    for flag in ("--stabilize", "--no-stabilize"):
        out = tmp_path / flag
        result = invoke(clip, "--model", net, "-o", out, flag, "--stability", 0.9, "--crf", 10)
        assert result.exit_code == 0, result.output
        with av.open(str(out / "clip.mp4")) as c:
            decoded[flag] = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
        recorded = json.loads((out / "nst-fast.json").read_text())["settings"]["video"]
        assert recorded == {"stabilize": flag == "--stabilize", "stability": 0.9, "crf": 10}
    stable, plain = decoded["--stabilize"], decoded["--no-stabilize"]
    diffs = [np.abs(a - b).mean() for a, b in zip(stable, plain)]
    print("stabilised vs plain, mean difference per frame:", diffs)
    # the first frame has nothing to blend with (it differs by the encoder's choices only); later
    # ones are blended with the warped past
    assert diffs[0] < 3 and min(diffs[2:]) > 2 * diffs[0], diffs
    # other video settings into the same folder would mix two looks: refused, as for photos
    refused = invoke(clip, "--model", net, "-o", tmp_path / "--stabilize", "--stability", 0.5)
    assert refused.exit_code == 2 and "stability" in refused.output, refused.output


def test_bad_video_options_are_usage_errors(folder, tmp_path, net):
    result = invoke(folder / "clip.mp4", "--model", net, "-o", tmp_path / "o", "--stability", 1.0)
    assert result.exit_code == 2 and "--stability" in result.output


def test_python_api_stylizes_a_video(folder, tmp_path, net):
    import nst_fast
    from nst_fast.errors import OptionError, VideoError

    with nst_fast.Stylizer("toy", method="transformer", model=net, backend="torch", max_size=24) as stylizer:
        result = stylizer.stylize_video(folder / "clip.mp4", tmp_path / "clip.mkv", stabilize=True)
        assert result.frames == FRAMES and result.fps > 0
        assert any("downscaled from 48x36 to 24x18" in note for note in result.notes)
        with av.open(str(tmp_path / "clip.mkv")) as c:
            assert (c.streams.video[0].width, c.streams.video[0].height) == (24, 18)
        with pytest.raises(VideoError, match="broken.mp4"):
            stylizer.stylize_video(folder / "broken.mp4", tmp_path / "broken.mp4")
        with pytest.raises(OptionError, match="stability"):
            stylizer.stylize_video(folder / "clip.mp4", tmp_path / "x.mp4", stability=-0.1)
    assert not (tmp_path / "broken.mp4").exists()
    summary = nst_fast.run_folder(folder / "clip.mp4", tmp_path / "api", "toy", method="transformer", model=net,
                                  backend="torch", stabilize=False, progress=False)
    assert summary.count("done") == 1 and summary.jobs[0].frames == FRAMES


def test_interrupt_during_a_video_leaves_it_not_started(folder, tmp_path):
    from nst_fast import batch

    jobs = batch.plan([folder / "clip.mp4", folder / "sub" / "odd.mkv"], tmp_path / "out")

    def interrupted(job):
        raise KeyboardInterrupt

    class Idle:  # no photos in this run: the runner is only started and closed
        def activate(self): ...
        def close(self): ...

    summary = batch.run(jobs, Idle(), progress=False, video=interrupted)
    assert summary.interrupted and summary.count("pending") == 2  # the second one never started
    assert "2 not started" in summary.line()


def test_dry_run_describes_videos(folder, tmp_path, net, capsys):
    result = invoke(folder, "--model", net, "-o", tmp_path / "out", "--dry-run")
    assert result.exit_code == 1
    assert f"would stylise: {folder / 'clip.mp4'} -> {tmp_path / 'out' / 'clip.mp4'} (video 48x36, " in result.output
    assert f"would fail: {folder / 'broken.mp4'}: cannot read this video" in result.output
    assert not (tmp_path / "out").exists()


def test_gatys_refuses_videos_but_does_the_photos(folder, tmp_path):
    from nst_fast import api, batch

    jobs = batch.plan([folder], tmp_path / "out")
    batch.refuse([j for j in jobs if j.is_video], api.NO_GATYS_VIDEO)
    assert [j.status for j in jobs if j.is_video] == ["failed"] * 3
    assert all(j.status == "pending" for j in jobs if not j.is_video)


def test_eval_video_measures_warping_error_plain_and_stabilised(folder, tmp_path, net):
    pytest.importorskip("skimage", reason="eval needs scikit-image")
    styles = tmp_path / "styles"
    styles.mkdir()
    for seed, name in enumerate(["toy", "other", "third"]):
        Image.fromarray(scene(64, 64, seed + 5)).save(styles / f"{name}.png")
    result = CliRunner().invoke(main, ["eval", "--video", str(folder / "clip.mp4"), "--styles-dir", str(styles),
                                       "-s", "toy", "-m", "transformer", "--transformers", str(net.parent),
                                       "-o", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval" / "video.json").read_text())
    rows = {r["variant"]: r for r in report["results"]}
    assert set(rows) == {"plain", "stabilised"}
    for row in rows.values():
        assert row["frames"] == FRAMES and row["warping_error"] > 0
        assert set(row["style"]) == {"VGG statistics", "Lab colour + LBP texture"}
    assert rows["stabilised"]["warping_error"] != rows["plain"]["warping_error"]
    assert "warping error" in result.output and (tmp_path / "eval" / "video.md").is_file()


def test_without_the_extra_each_video_is_one_error_and_the_photos_are_done(folder, tmp_path, net, monkeypatch):
    from nst_fast import video
    from nst_fast.errors import NSTError

    def missing():
        raise NSTError("video needs PyAV and OpenCV (no module 'av'): pip install 'nst-fast[video]'")

    monkeypatch.setattr(video, "import_av", missing)
    result = invoke(folder, "--model", net, "-o", tmp_path / "out")
    assert result.exit_code == 1 and "1 done, 0 skipped, 3 failed" in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 3 and all("pip install 'nst-fast[video]'" in line for line in errors), errors
    assert (tmp_path / "out" / "photo.png").is_file()
