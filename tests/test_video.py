"""Video: timing, sound, rotation and odd sizes survive; flicker goes down; bad files are one error.

Clips are made here: a photo (from the shared data, else a generated one) panned and zoomed at an
odd size, 30000/1001 fps, with a sine tone."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av", reason="video needs PyAV: pip install 'nst-fast[video]'")
pytest.importorskip("cv2", reason="video needs OpenCV: pip install 'nst-fast[video]'")

from nst_fast.clips import NTSC, pan_frames, write_clip  # noqa: E402
from nst_fast.content_stats import MovingAverage  # noqa: E402
from nst_fast.errors import VideoError  # noqa: E402
from nst_fast.temporal import MotionTracker, warping_error  # noqa: E402
from nst_fast.video import VideoOptions, runner_batch, stylize_video  # noqa: E402

SIZE = (97, 65)  # odd on both sides
QUIET = dict(progress=False)


@pytest.fixture(scope="module")
def photo(request) -> np.ndarray:
    """A real photo where the shared data is at hand, else sinusoidal stripes with blobs."""
    from nst_fast.images import load_image

    try:
        folder = request.getfixturevalue("data_dir")
    except pytest.skip.Exception:
        y, x = np.mgrid[0:300, 0:450] / 40.0
        rng = np.random.default_rng(1)
        channels = [np.sin(x * a + y * b + p) for a, b, p in rng.uniform(0.2, 1.5, (3, 3))]
        return ((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8)
    return load_image(folder / "photos" / "chicago.jpg", 450)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, photo):
    """20 frames at 97x65 (H.264 4:4:4, which holds odd sizes), NTSC rate, AAC tone."""
    path = tmp_path_factory.mktemp("clips") / "pan.mp4"
    write_clip(path, pan_frames(photo, SIZE, 20), pix_fmt="yuv444p")
    return path


def decode(path):
    """(frames as uint8 RGB, their times in seconds) of a file's video stream."""
    with av.open(str(path)) as c:
        frames = [(f.to_ndarray(format="rgb24"), f.time) for f in c.decode(video=0)]
    return [f for f, _ in frames], [t for _, t in frames]


def audio_of(path):
    """(codec, samples decoded, sample rate) of a file's first audio stream."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(stream))
        return stream.codec_context.name, samples, stream.rate


def invert(frames):
    return [255 - f for f in frames]


def test_frames_timing_audio_and_size_survive(clip, tmp_path):
    out = tmp_path / "out" / "pan.mp4"
    result = stylize_video(clip, out, invert, VideoOptions(stabilize=False, **QUIET))
    src_frames, src_times = decode(clip)
    got_frames, got_times = decode(out)
    assert result.frames == len(got_frames) == len(src_frames) == 20
    assert got_times == pytest.approx(src_times, abs=1e-4)  # every frame at its input time
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        assert b.streams.video[0].average_rate == NTSC
        assert b.duration == pytest.approx(a.duration, abs=1e4)  # microseconds
    assert audio_of(out) == audio_of(clip)  # same codec, sample count and rate: copied
    assert result.audio == ["copied aac"] and result.codec == "libx264"
    # odd size: padded to even for yuv420p, the frame itself intact
    assert got_frames[0].shape == (66, 98, 3) and any("padded" in n for n in result.notes)
    diffs = [np.abs(g[:65, :97].astype(int) - (255 - s)).mean() for g, s in zip(got_frames, src_frames)]
    assert max(diffs) < 4  # the inverted frames, through yuv420p at crf 18


def test_variable_frame_rate_keeps_each_time(photo, tmp_path):
    pts = [0, 1, 2, 4, 5, 8, 9, 10, 14, 15]
    src = tmp_path / "vfr.mkv"
    write_clip(src, pan_frames(photo, (96, 64), len(pts)), pts=pts)
    out = tmp_path / "vfr_out.mkv"
    stylize_video(src, out, invert, VideoOptions(**QUIET))
    assert decode(out)[1] == pytest.approx(decode(src)[1], abs=1e-3)  # mkv keeps milliseconds


def test_rotation_is_applied_to_the_pixels(tmp_path):
    frame = np.zeros((32, 64, 3), np.uint8)
    frame[:8, :8] = 255  # a white corner, top left as stored
    src = tmp_path / "rotated.mp4"
    write_clip(src, [frame] * 3, rotation=90, tone=None)
    out = tmp_path / "upright.mp4"
    stylize_video(src, out, lambda frames: frames, VideoOptions(stabilize=False, **QUIET))
    got = decode(out)[0][0]
    assert got.shape == (64, 32, 3)  # displayed 90 degrees counter-clockwise: portrait
    assert got[-8:, :8].mean() > 200 and got[:8, :8].mean() < 50  # the corner went to bottom left
    with av.open(str(out)) as c:
        assert next(c.decode(video=0)).rotation == 0  # upright pixels, no display matrix left


def flicker(frames):
    """A stand-in for per-frame stylisation: a fine texture (blurred noise) chosen anew for every frame."""
    import cv2

    rng = np.random.default_rng()
    out = []
    for f in frames:
        texture = cv2.GaussianBlur(rng.normal(0, 1, f.shape).astype(np.float32), (0, 0), 1.5)
        out.append(np.clip(f + texture * (25 / texture.std()), 0, 255).astype(np.uint8))
    return out


def test_stabilised_warping_error_is_lower(clip, tmp_path):
    inputs = [f[:65, :97] for f in decode(clip)[0]]
    errors = {}
    for stabilize in (False, True):
        out = tmp_path / f"{stabilize}.mp4"
        stylize_video(clip, out, flicker, VideoOptions(stabilize=stabilize, **QUIET))
        errors[stabilize] = warping_error(inputs, [f[:65, :97] for f in decode(out)[0]])
    assert errors[True] < 0.6 * errors[False], errors  # the target: at least 40 % lower


def test_restored_detail_keeps_the_texture_energy(photo):
    import cv2

    from nst_fast.temporal import Stabilizer

    frames = list(pan_frames(photo, (96, 64), 12))
    fresh = flicker(frames)
    detail = lambda f: np.abs(cv2.Laplacian(f.astype(np.float32), cv2.CV_32F)).mean()  # noqa: E731
    last = {}
    for restore in (False, True):
        tracker, stabilizer = MotionTracker(), Stabilizer(restore=restore)
        last[restore] = [stabilizer(s, tracker(f)) for f, s in zip(frames, fresh)][-1]
    # blending evens the texture out (on the real photo to under half, on the synthetic stripes less);
    # restoring gives most of it back (the gain is capped at 2, and this texture, new in every
    # frame, would need 3.5: real stylisations are partly stable)
    assert detail(last[False]) < 0.7 * detail(fresh[-1])
    assert detail(last[True]) > 1.5 * detail(last[False])
    assert detail(last[True]) > 0.7 * detail(fresh[-1])


@pytest.mark.slow
def test_stabilised_adain_flickers_less(clip, tmp_path, vgg_weights):
    from nst_fast.content_stats import AdaINRunnerStatistics
    from nst_fast.methods import adain_runner

    inputs = [f[:65, :97] for f in decode(clip)[0]]
    errors = {}
    with adain_runner(["starry_night"]) as runner:
        for name, stabilize, hook in [("plain", False, None), ("stable", True, None),
                                      ("smoothed", True, AdaINRunnerStatistics(runner))]:
            out = tmp_path / f"{name}.mp4"
            stylize_video(clip, out, runner_batch(runner), VideoOptions(stabilize=stabilize, **QUIET), hook)
            errors[name] = warping_error(inputs, [f[:65, :97] for f in decode(out)[0]])
    assert errors["stable"] < 0.6 * errors["plain"], errors
    assert errors["smoothed"] < 0.6 * errors["plain"], errors


def test_moving_average_restarts_at_cuts():
    average = MovingAverage(0.5)
    mean = np.array([[0.0], [2.0], [10.0], [10.0]], np.float32)
    std = mean + 1
    got_mean, got_std = average(mean, std, [True, False, True, False])
    assert got_mean[:, 0].tolist() == [0.0, 1.0, 10.0, 10.0]
    assert got_std[:, 0].tolist() == [1.0, 2.0, 11.0, 11.0]
    assert average(np.array([[20.0]]), np.array([[21.0]]), [False])[0][0, 0] == 15.0  # carries over batches


def test_scene_cut_resets_stabilisation(photo, tmp_path):
    other = np.ascontiguousarray(np.rot90(photo, 2)[:, ::-1] // 2 + 100)  # a different, brighter scene
    frames = list(pan_frames(photo, (96, 64), 8)) + list(pan_frames(other, (96, 64), 8))
    tracker = MotionTracker()
    cuts = [i for i, f in enumerate(frames) if (m := tracker(f)) is not None and m.cut]
    assert cuts == [8]
    src = tmp_path / "cut.mp4"
    write_clip(src, frames, tone=None)
    out = tmp_path / "cut_out.mp4"
    result = stylize_video(src, out, lambda fs: fs, VideoOptions(stability=0.9, **QUIET))
    assert result.cuts == 1
    got, source = decode(out)[0], decode(src)[0]
    assert np.abs(got[8].astype(int) - source[8]).mean() < 3  # no ghost of the previous scene


@pytest.mark.parametrize("faststart", [False, True])
def test_truncated_video_is_one_clear_error(clip, tmp_path, faststart):
    src = tmp_path / "cut_short.mp4"
    if faststart:  # index first: the frames' data is what goes missing
        write_clip(src, decode(clip)[0], options={"movflags": "faststart"})
    else:
        src.write_bytes(clip.read_bytes())
    data = src.read_bytes()
    src.write_bytes(data[: len(data) * 6 // 10])
    out = tmp_path / "out" / "cut_short.mp4"
    with pytest.raises(VideoError, match=str(src)):
        stylize_video(src, out, invert, VideoOptions(**QUIET))
    assert not out.exists()
    assert not out.parent.exists() or not list(out.parent.iterdir())  # no partial file either


def test_not_a_video_is_one_clear_error(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n")
    with pytest.raises(VideoError, match=f"{fake}: cannot read this video"):
        stylize_video(fake, tmp_path / "out.mp4", invert, VideoOptions(**QUIET))


def test_interrupted_run_leaves_no_partial_file(clip, tmp_path):
    calls = []

    def interrupted(frames):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return frames

    out = tmp_path / "out" / "pan.mp4"
    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip, out, interrupted, VideoOptions(batch_size=2, **QUIET))
    assert list(out.parent.iterdir()) == []


def test_audio_reencoded_where_the_container_cannot_hold_it(photo, tmp_path):
    if "libvpx-vp9" not in av.codecs_available or "libopus" not in av.codecs_available:
        pytest.skip("this PyAV build lacks libvpx-vp9 or libopus")
    src = tmp_path / "aac.mkv"
    write_clip(src, pan_frames(photo, (96, 64), 6), rate=Fraction(25))
    out = tmp_path / "aac.webm"  # WebM holds Opus or Vorbis, not AAC
    result = stylize_video(src, out, invert, VideoOptions(**QUIET))
    assert result.codec == "libvpx-vp9" and result.audio == ["re-encoded aac to opus"]
    codec, samples, rate = audio_of(out)
    _, src_samples, _ = audio_of(src)
    assert codec == "opus" and rate == 48000 and abs(samples - src_samples) <= 960  # one Opus frame
    assert len(decode(out)[0]) == 6
