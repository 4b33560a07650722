"""`nst-fast run` end to end on a folder of awkward files, with small random-weight models so the
test does not depend on the shipped weights (those are tested in test_bundled.py)."""
import re

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from nst_fast.adain import Decoder
from nst_fast.cli import main
from nst_fast.manifest import MANIFEST
from nst_fast.models import save_model
from nst_fast.transformer_net import TransformerNet


def write_tree(root):
    """Good files of many kinds, plus broken ones; returns {relative output path: (w, h)} expected."""
    rng = np.random.default_rng(0)
    noise = lambda h, w, c=3: rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    (root / "sub" / "deep").mkdir(parents=True)
    Image.fromarray(noise(30, 41)).save(root / "a.jpg")
    Image.fromarray(noise(25, 20, 4), "RGBA").save(root / "sub" / "b.png")
    Image.fromarray(noise(17, 23)[..., 0], "L").save(root / "sub" / "grey.png")
    Image.fromarray(noise(20, 20)).convert("CMYK").save(root / "sub" / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display: a 30 x 20 file shows as 20 x 30
    Image.fromarray(noise(20, 30)).save(root / "sub" / "deep" / "rotated.jpg", exif=exif)
    Image.fromarray(noise(12, 9)).save(root / "sub" / "deep" / "odd.bmp")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image, and not an image extension: ignored")
    return {"a.jpg": (41, 30), "sub/b.png": (20, 25), "sub/grey.png": (23, 17), "sub/cmyk.jpg": (20, 20),
            "sub/deep/rotated.jpg": (20, 30), "sub/deep/odd.png": (9, 12)}


def outputs(root):
    """Every file under `root` but the output manifest (tested in test_traps.py)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def test_run_folder_end_to_end(tmp_path, decoder_file):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    expected = write_tree(src)
    style = tmp_path / "style.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(style)
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}

    args = ["run", str(src), "--style", str(style), "--model", str(decoder_file), "-o", str(out), "--batch-size", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output  # some files failed
    assert outputs(out) == sorted(expected)  # only complete outputs, no temporary files
    for rel, size in expected.items():
        with Image.open(out / rel) as im:
            assert im.size == size, rel
            assert im.mode == "RGB"
    for bad, reason in [("broken.jpg", "not an image|cannot identify|truncated"), ("empty.png", "empty")]:
        line = next(l for l in result.output.splitlines() if bad in l)
        assert line.startswith("error: ") and str(src / bad) in line and re.search(reason, line), line
    assert "6 done, 0 skipped, 2 failed" in result.output
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before  # inputs untouched

    # A rerun skips what is done and retries only what failed.
    again = CliRunner().invoke(main, args)
    assert "0 done, 6 skipped, 2 failed" in again.output, again.output


def test_output_folder_inside_input_is_not_walked(tmp_path, decoder_file):
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(src / "x.png")
    style = src / "x.png"
    args = ["run", str(src), "--style", str(style), "--model", str(decoder_file), "-o", str(src / "out")]
    assert CliRunner().invoke(main, args).exit_code == 0
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0 and "0 done, 1 skipped, 0 failed" in second.output, second.output
    assert outputs(src) == ["out/x.png", "x.png"]


def test_same_folder_output_never_overwrites_inputs(tmp_path, decoder_file):
    Image.fromarray(np.full((16, 16, 3), 50, np.uint8)).save(tmp_path / "x.png")
    before = (tmp_path / "x.png").read_bytes()
    result = CliRunner().invoke(main, ["run", str(tmp_path / "x.png"), "--style", str(tmp_path / "x.png"),
                                       "--model", str(decoder_file), "-o", str(tmp_path), "--overwrite"])
    assert result.exit_code == 1 and "would overwrite an input" in result.output
    assert (tmp_path / "x.png").read_bytes() == before


def test_output_never_replaces_another_input(tmp_path, decoder_file):
    """x.bmp would become x.png, and --format png would turn y.jpg into the input y.png."""
    for name in ["x.bmp", "x.png", "y.jpg", "y.png"]:
        Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(tmp_path / name)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = CliRunner().invoke(main, ["run", str(tmp_path), "--style", str(tmp_path / "x.png"), "--format", "png",
                                       "--model", str(decoder_file), "-o", str(tmp_path), "--overwrite"])
    assert result.exit_code == 1 and result.output.count("would overwrite an input") == 4, result.output
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_output_name_collisions_are_refused_up_front(tmp_path, decoder_file):
    """a.jpg and a.png would both become a.jpg: the second is an error naming the first, the first
    is stylised, and nothing is overwritten."""
    src = tmp_path / "in"
    src.mkdir()
    for name in ["a.jpg", "a.png", "b.png"]:
        Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(src / name)
    result = CliRunner().invoke(main, ["run", str(src), "--style", str(src / "b.png"), "--format", "jpg",
                                       "--model", str(decoder_file), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    error = next(line for line in result.output.splitlines() if line.startswith("error:"))
    assert str(src / "a.png") in error and "collides with that of" in error and str(src / "a.jpg") in error
    assert "2 done, 0 skipped, 1 failed" in result.output
    assert outputs(tmp_path / "out") == ["a.jpg", "b.jpg"]


def test_tiny_and_thin_images(tmp_path, decoder_file):
    sizes = {"dot.png": (1, 1), "line.png": (40, 1), "small.png": (5, 5), "thin.png": (300, 9)}
    for name, (w, h) in sizes.items():
        Image.fromarray(np.full((h, w, 3), 200, np.uint8)).save(tmp_path / name)
    result = CliRunner().invoke(main, ["run", *[str(tmp_path / n) for n in sizes], "--style", str(tmp_path / "thin.png"),
                                       "--model", str(decoder_file), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for name, size in sizes.items():
        assert Image.open(tmp_path / "out" / name).size == size


def test_several_folders_with_equal_names_collide_and_are_refused(tmp_path, decoder_file):
    """Each folder's contents go directly under -o (README's layout rule), so a/same.png and
    b/same.png want the same output: the second is refused, nothing is overwritten; a folder given
    twice is done once."""
    for folder in ["a", "b"]:
        (tmp_path / folder).mkdir()
        Image.fromarray(np.full((16, 16, 3), 10, np.uint8)).save(tmp_path / folder / "same.png")
    result = CliRunner().invoke(main, ["run", str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "a"),
                                       "--style", str(tmp_path / "a" / "same.png"), "--model", str(decoder_file),
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "collides with that of" in result.output and "1 done, 0 skipped, 1 failed" in result.output
    assert outputs(tmp_path / "out") == ["same.png"]


def run_png(tmp_path, decoder_file, name, *extra):
    out = tmp_path / name
    result = CliRunner().invoke(main, ["run", str(tmp_path / "p.png"), "--model", str(decoder_file), *extra,
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    return np.asarray(Image.open(out / "p.png"), dtype=np.int16)


def test_style_weights_alpha_and_preserve_color_take_effect(tmp_path, decoder_file):
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(tmp_path / "s1.png")
    Image.fromarray((rng.random((24, 32, 3)) * [255, 40, 40]).astype(np.uint8)).save(tmp_path / "s2.png")  # red
    s1, s2 = ["--style", str(tmp_path / "s1.png")], ["--style", str(tmp_path / "s2.png")]

    only1 = run_png(tmp_path, decoder_file, "only1", *s1)
    weighted = run_png(tmp_path, decoder_file, "w10", *s1, *s2, "--style-weight", "1", "--style-weight", "0")
    mixed = run_png(tmp_path, decoder_file, "mix", *s1, *s2)
    assert np.abs(weighted - only1).max() <= 1  # weight 0 removes a style
    assert np.abs(mixed - only1).mean() > 2  # and weight > 0 brings it in

    content_only = run_png(tmp_path, decoder_file, "a0", *s2, "--alpha", "0")
    other_style = run_png(tmp_path, decoder_file, "a0b", *s1, "--alpha", "0")
    assert np.abs(content_only - other_style).max() <= 1  # alpha 0: the style plays no part
    half = run_png(tmp_path, decoder_file, "a5", *s2, "--alpha", "0.5")
    full = run_png(tmp_path, decoder_file, "a1", *s2)
    assert 0 < np.abs(half - content_only).mean() < np.abs(full - content_only).mean()

    # a random decoder cannot show colour; test_bundled checks --preserve-color with the real one
    assert np.abs(run_png(tmp_path, decoder_file, "pc", *s2, "--preserve-color") - full).mean() > 1

    bad = CliRunner().invoke(main, ["run", str(tmp_path / "p.png"), *s1, *s2, "--style-weight", "1"])
    assert bad.exit_code == 2 and "--style-weight" in bad.output


def test_transformer_method_with_given_weights(tmp_path, vgg_weights):
    model = tmp_path / "net.safetensors"
    save_model(model, TransformerNet(), {"method": "transformer", "encoder_id": vgg_weights.encoder_id})
    Image.fromarray(np.zeros((20, 28, 3), np.uint8)).save(tmp_path / "p.jpg")
    result = CliRunner().invoke(main, ["run", str(tmp_path / "p.jpg"), "-m", "transformer", "-s", "any",
                                       "--model", str(model), "--alpha", "0.7", "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "o" / "p.jpg").size == (28, 20)


def test_clear_errors_for_bad_style_and_bad_weights(tmp_path, decoder_file):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "p.png")
    result = CliRunner().invoke(main, ["run", str(tmp_path / "p.png"), "-s", "no_such_style",
                                       "--model", str(decoder_file)])
    assert result.exit_code == 2 and "no_such_style: no such style image or preset" in result.output
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    result = CliRunner().invoke(main, ["run", str(tmp_path / "p.png"), "-s", str(tmp_path / "p.png"),
                                       "--model", str(broken)])
    assert result.exit_code == 2 and f"{broken}: not a readable safetensors file" in result.output


def test_decoder_for_another_encoder_is_refused(tmp_path):
    model = tmp_path / "other.safetensors"
    save_model(model, Decoder(), {"method": "adain", "encoder_id": "vgg19-torchvision:0123456789abcdef"})
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "p.png")
    result = CliRunner().invoke(main, ["run", str(tmp_path / "p.png"), "-s", str(tmp_path / "p.png"),
                                       "--model", str(model)])
    assert result.exit_code == 2 and "trained against VGG encoder 'vgg19-torchvision" in result.output


def test_gatys_command(tmp_path):
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(tmp_path / "c.png")
    Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)).save(tmp_path / "s.png")
    result = CliRunner().invoke(main, ["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"),
                                       "-o", str(tmp_path / "g.png"), "--steps", "3"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "g.png").size == (40, 32)


def test_samples_and_presets_commands(tmp_path, vgg_weights):
    result = CliRunner().invoke(main, ["samples", str(tmp_path / "photos")])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "photos").glob("*.png"))) == 5
    result = CliRunner().invoke(main, ["presets", str(tmp_path / "photos"), "-o", str(tmp_path / "presets")])
    assert result.exit_code == 0, result.output
    from nst_fast.styles import load_preset

    preset = load_preset(tmp_path / "presets" / "coffee.safetensors", vgg_weights.encoder_id)
    assert preset.mean.shape == (1, 512)


def test_info_names_weights_and_presets():
    result = CliRunner().invoke(main, ["info"])
    assert result.exit_code == 0, result.output
    assert "VGG weights:" in result.output and "style presets" in result.output


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_finishes_the_images_in_flight_and_a_rerun_the_rest(tmp_path, vgg_weights, signum):
    import json
    import signal
    import subprocess
    import sys
    import time

    model = tmp_path / "net.safetensors"
    save_model(model, TransformerNet(), {"method": "transformer", "encoder_id": vgg_weights.encoder_id})
    (tmp_path / "in").mkdir()
    rng = np.random.default_rng(0)
    count = 400  # enough that the run is still going when the signal lands, even on a fast machine
    for i in range(count):
        # small, so that the rerun's 400 - 3 images take seconds
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), np.uint8)).save(tmp_path / "in" / f"{i:03d}.png")
    out = tmp_path / "out"
    args = [sys.executable, "-m", "nst_fast.cli", "run", str(tmp_path / "in"), "-m", "transformer", "-s", "any",
            "--model", str(model), "--backend", "torch", "--batch-size", "2", "--format", "png", "-o", str(out),
            "--report", str(tmp_path / "report.json")]
    # a shell that starts a job in the background (CI runners may) ignores SIGINT in it and its
    # children, and Python then never installs its Ctrl-C handler: give the child a terminal's default
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore)
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.png"))) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(getattr(signal, signum))
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted:" in stdout + stderr and "not started" in stdout + stderr
    report = json.loads((tmp_path / "report.json").read_text())
    statuses = {f["status"] for f in report["files"]}
    written = sorted(out.glob("*.png"))
    assert 3 <= len(written) < count and not list(out.glob(".*.part"))
    for path in written:
        assert Image.open(path).size == (64, 48)  # complete, decodable
    assert statuses == {"done", "not started"} and report["summary"]["interrupted"]
    assert report["summary"]["done"] == len(written)

    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert len(list(out.glob("*.png"))) == count
