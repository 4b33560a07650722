"""The traps a new user fell into (issue 19), one test or more per item, with small random-weight
models and tiny images so each runs in seconds."""
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from nst_fast.cli import main


def image(path, h=16, w=16, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


# --- 1. presets: a user folder, never the bundled one; files and names work as -s ------------------


def test_presets_go_to_the_user_folder_and_never_into_the_bundled_one(tmp_path, vgg_weights, user_home,
                                                                       decoder_file):
    from nst_fast.styles import PRESETS

    bundled = digests(PRESETS)
    paintings = tmp_path / "paintings"
    image(paintings / "candy.png", 40, 48)
    image(paintings / "sub" / "mosaic.jpg", 40, 48, seed=1)  # subfolders are walked
    whole = (image(paintings / "broken.png", 40, 48, seed=2)).read_bytes()
    (paintings / "broken.png").write_bytes(whole[: len(whole) // 2])  # truncated: skipped with a line
    result = invoke("presets", paintings)
    assert result.exit_code == 1, result.output  # one image failed, the others were made
    assert "broken.png" in result.output and "skipped" in result.output
    made = user_home / "styles"
    assert sorted(p.name for p in made.iterdir()) == ["candy.safetensors", "mosaic.safetensors"]
    assert digests(PRESETS) == bundled

    refused = invoke("presets", paintings, "-o", PRESETS)
    assert refused.exit_code == 2 and "never written" in refused.output
    assert digests(PRESETS) == bundled

    photo = image(tmp_path / "p.png")
    by_name = invoke("run", photo, "-s", "candy", "--model", decoder_file, "-o", tmp_path / "a")
    assert by_name.exit_code == 0, by_name.output
    elsewhere = tmp_path / "mine"
    assert invoke("presets", paintings, "-o", elsewhere).exit_code == 1
    by_file = invoke("run", photo, "-s", elsewhere / "mosaic.safetensors", "--model", decoder_file,
                     "-o", tmp_path / "b")
    assert by_file.exit_code == 0, by_file.output
    assert (tmp_path / "b" / "p.png").is_file()


# --- 8. the output layout does not depend on how many PATHS are given ------------------------------


def test_adding_a_path_does_not_move_the_outputs_of_the_others(tmp_path, decoder_file):
    photos, more = tmp_path / "photos", tmp_path / "more"
    image(photos / "a.png")
    image(photos / "sub" / "b.png", seed=1)
    image(more / "c.png", seed=2)
    single = image(tmp_path / "d.png", seed=3)
    out = tmp_path / "out"
    common = ["-s", photos / "a.png", "--model", decoder_file, "-o", out]
    first = invoke("run", photos, *common)
    assert first.exit_code == 0 and "2 done" in first.output, first.output
    second = invoke("run", photos, more, single, *common)
    assert second.exit_code == 0 and "2 done, 2 skipped" in second.output, second.output  # nothing redone
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == ["a.png", "c.png", "d.png", "sub/b.png"]


# --- 2. the output folder records its settings; other settings stop, the same ones resume ---------


def test_other_settings_into_the_same_output_stop_and_the_same_resume(tmp_path, decoder_file):
    photos, out = tmp_path / "photos", tmp_path / "out"
    image(photos / "a.png")
    image(photos / "b.png", seed=1)
    style1, style2 = image(tmp_path / "s1.png", seed=2), image(tmp_path / "s2.png", seed=3)
    common = [photos, "--model", decoder_file, "-o", out]
    assert invoke("run", *common, "-s", style1).exit_code == 0
    made = (out / "a.png").read_bytes()
    recorded = json.loads((out / "nst-fast.json").read_text())["settings"]
    assert recorded["method"] == "adain" and recorded["style"][0].startswith("s1 (")
    assert recorded["alpha"] == 1.0 and recorded["max_size"] == 1024 and len(recorded["weights_sha256"]) == 16

    for other in (["-s", style2], ["-s", style1, "--alpha", "0.5"], ["-s", style1, "--format", "jpg"],
                  ["-s", style1, "--max-size", "512"]):
        refused = invoke("run", *common, *other)
        assert refused.exit_code == 2 and "other settings" in refused.output, (other, refused.output)
        assert invoke("run", *common, *other, "--dry-run").exit_code == 2  # a dry run says so too
    assert (out / "a.png").read_bytes() == made

    again = invoke("run", *common, "-s", style1)  # the same command resumes
    assert again.exit_code == 0 and "0 done, 2 skipped" in again.output, again.output
    redo = invoke("run", *common, "-s", style2, "--overwrite")
    assert redo.exit_code == 0 and "2 done" in redo.output, redo.output
    assert (out / "a.png").read_bytes() != made
    assert invoke("run", *common, "-s", style2).exit_code == 0  # the manifest now names style 2


# --- 3. earlier output folders inside the input are not stylised again -----------------------------


def test_earlier_output_folders_inside_the_input_are_not_walked(tmp_path, decoder_file):
    inp = tmp_path / "inp"
    image(inp / "a.png")
    common = [inp, "-s", inp / "a.png", "--model", decoder_file]
    assert invoke("run", *common, "-o", inp / "styl").exit_code == 0
    second = invoke("run", *common, "-o", inp / "styl2")
    assert second.exit_code == 0 and "1 done, 0 skipped, 0 failed" in second.output, second.output
    assert second.output.count("not walking") == 1 and str(inp / "styl") in second.output
    assert sorted(str(p.relative_to(inp)) for p in inp.rglob("*.png")) == ["a.png", "styl/a.png", "styl2/a.png"]


# --- 4. output places are checked before any work; no traceback for an OS error --------------------


@pytest.fixture
def unwritable(tmp_path):
    """A folder no file can be created in, even by root (who ignores permission bits)."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if not Path("/sys").is_dir() or os.access("/sys", os.W_OK) and _creatable(Path("/sys")):
        pytest.skip("running as root with no read-only folder to test against")
    yield Path("/sys")


def _creatable(folder):
    import tempfile

    try:
        fd, name = tempfile.mkstemp(dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def one_error_line(result, place):
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.output  # not a traceback
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(place) in errors[0] and "cannot write there" in errors[0], result.output


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
@pytest.mark.parametrize("option", ["-o", "--report", "--contact-sheet"])
def test_run_checks_its_output_places_before_any_work(tmp_path, decoder_file, unwritable, option, dry_run):
    photo = image(tmp_path / "p.png")
    place = unwritable / ("out" if option == "-o" else "r.json" if option == "--report" else "sheet.jpg")
    outputs = {"-o": tmp_path / "out"}
    outputs[option] = place
    args = [a for k, v in outputs.items() for a in (k, v)]
    result = invoke("run", photo, "-s", photo, "--model", decoder_file, *args, *dry_run)
    one_error_line(result, place)
    assert "done" not in result.output and "would stylise" not in result.output
    assert not (tmp_path / "out").exists()


def test_other_commands_check_their_output_places_first(tmp_path, unwritable):
    photo = image(tmp_path / "p.png")
    for args, place in [(["export", "-m", "adain", "-o", unwritable / "exp"], unwritable / "exp"),
                        (["samples", unwritable / "photos"], unwritable / "photos"),
                        (["presets", tmp_path, "-o", unwritable / "presets"], unwritable / "presets"),
                        (["gatys", photo, photo, "--steps", "1", "-o", unwritable / "g.png"], unwritable / "g.png")]:
        one_error_line(invoke(*args), place)


def test_an_os_error_during_the_work_is_one_line(tmp_path, decoder_file, monkeypatch):
    import errno

    from nst_fast import batch

    def full_disk(summary, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(batch, "write_report", full_disk)
    photo = image(tmp_path / "p.png")
    result = invoke("run", photo, "-s", photo, "--model", decoder_file, "-o", tmp_path / "out",
                    "--report", tmp_path / "r.json")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"error: {tmp_path / 'r.json'}: No space left on device" in result.output


# --- 6. an interrupt at any moment: exit 130 with the summary ---------------------------------------


def _interrupted_while_loading(monkeypatch, how):
    import signal
    import time

    from nst_fast import methods

    def loading(*args, **kwargs):
        if how == "SIGTERM":
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, handled as the command's handler says
            time.sleep(5)
        raise KeyboardInterrupt

    monkeypatch.setattr(methods, "adain_runner", loading)


@pytest.mark.parametrize("how", ["Ctrl-C", "SIGTERM"])
def test_an_interrupt_while_loading_exits_130_with_the_summary(tmp_path, decoder_file, monkeypatch, how):
    _interrupted_while_loading(monkeypatch, how)
    photo = image(tmp_path / "p.png")
    image(tmp_path / "q.png", seed=1)
    result = invoke("run", tmp_path / "p.png", tmp_path / "q.png", "-s", photo, "--model", decoder_file,
                    "-o", tmp_path / "out", "--report", tmp_path / "r.json")
    assert result.exit_code == 130, result.output
    assert "Aborted" not in result.output
    assert "interrupted: 0 done, 0 skipped, 0 failed" in result.output and "2 not started" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["interrupted"] and report["summary"]["not_started"] == 2


def test_an_interrupt_before_planning_exits_130(tmp_path, monkeypatch):
    from nst_fast import batch

    def walking(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "plan", walking)
    photo = image(tmp_path / "p.png")
    result = invoke("run", photo, "-s", photo, "-o", tmp_path / "out")
    assert result.exit_code == 130 and "interrupted before any work started" in result.output, result.output


def test_run_help_lists_130():
    assert "130 interrupted" in " ".join(invoke("run", "--help").output.split())


# --- 7. tiles too small to share the overlap are refused --------------------------------------------


def test_tiles_smaller_than_twice_the_overlap_are_refused(tmp_path, decoder_file):
    from nst_fast.tiling import MIN_TILE, OVERLAP, Grid

    assert MIN_TILE >= 2 * OVERLAP
    with pytest.raises(ValueError, match="cannot share"):
        Grid(1024, 1024, MIN_TILE - 8)
    assert len(Grid(1024, 1024, MIN_TILE)) == 49  # 7 x 7: about 3x the pixels, not 30x
    photo = image(tmp_path / "p.png")
    for size in (64, MIN_TILE - 1):
        refused = invoke("run", photo, "-s", photo, "--model", decoder_file, "--tile-size", size, "-o", tmp_path / "o")
        assert refused.exit_code == 2 and f"at least {MIN_TILE}" in refused.output, refused.output
    assert f"at least {MIN_TILE}" in invoke("run", "--help").output
    ok = invoke("run", photo, "-s", photo, "--model", decoder_file, "--tile-size", MIN_TILE, "-o", tmp_path / "o")
    assert ok.exit_code == 0, ok.output


# --- 5. AdaIN at strength 0 is the photo; small strengths stay close --------------------------------


def test_alpha_zero_gives_the_photo_back(tmp_path, decoder_file):
    photo = image(tmp_path / "p.png", 24, 32)
    result = invoke("run", photo, "-s", image(tmp_path / "s.png", seed=1), "--model", decoder_file,
                    "--alpha", "0", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "p.png")), np.asarray(Image.open(photo)))


def test_small_strengths_stay_close_to_the_photo_with_the_bundled_decoder(data_dir):
    """Measured on 6 photos at 512 px (bench/strength.py): median 24.0 dB at 0.25, 18.0 at 0.5."""
    from nst_fast.images import load_image
    from nst_fast.methods import adain_runner

    photo = load_image(data_dir / "photos" / "newyork.jpg", 192)

    def psnr(alpha):
        with adain_runner(["starry_night"], alpha=alpha) as runner:
            out = runner.stylize(photo)
        return 10 * np.log10(255 ** 2 / max(np.mean((out.astype(float) - photo) ** 2), 1e-9))

    at = {alpha: psnr(alpha) for alpha in (0.0, 0.25, 0.5, 1.0)}
    assert at[0.0] > 80  # the photo itself
    assert at[0.25] > 20 and at[0.25] > at[0.5] > at[1.0]
    assert at[0.25] - at[1.0] == pytest.approx(20 * np.log10(4), abs=0.5)  # error scales with alpha


# --- 9. the smaller ones -----------------------------------------------------------------------------


def test_contact_sheet_says_when_it_shows_only_some(tmp_path, decoder_file):
    for i in range(25):
        image(tmp_path / "in" / f"{i:02d}.png", seed=i)
    result = invoke("run", tmp_path / "in", "-s", tmp_path / "in" / "00.png", "--model", decoder_file,
                    "-o", tmp_path / "out", "--contact-sheet", tmp_path / "sheet.jpg")
    assert result.exit_code == 0, result.output
    assert "(the first 24 of 25 images)" in result.output


def test_an_empty_input_is_an_error(tmp_path, decoder_file):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    style = image(tmp_path / "s.png")
    result = invoke("run", tmp_path / "empty", "-s", style, "--model", decoder_file, "-o", tmp_path / "out")
    assert result.exit_code == 2 and "no images or videos found in" in result.output, result.output


def test_style_image_errors_say_it_is_the_style(tmp_path, decoder_file):
    photo = image(tmp_path / "p.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    for method in (["--model", decoder_file], ["-m", "gatys", "--steps", "1"]):
        result = invoke("run", photo, "-s", tmp_path / "bad.png", *method, "-o", tmp_path / "out")
        assert result.exit_code == 2, result.output
        assert f"error: style {tmp_path / 'bad.png'}: not an image" in result.output, result.output


def test_weights_without_metadata_say_so(tmp_path):
    import torch
    from safetensors.torch import save_file

    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(1)}, str(bare))
    photo = image(tmp_path / "p.png")
    result = invoke("run", photo, "-s", photo, "--model", bare, "-o", tmp_path / "out")
    assert result.exit_code == 2 and "has no nst-fast metadata" in result.output and "None" not in result.output


def test_the_nan_message_suggests_fp32_only_to_a_reduced_precision_run():
    from nst_fast.batch import reason
    from nst_fast.runners.base import NonFiniteOutput

    assert "--fp32" not in reason(NonFiniteOutput("x", [0], half=False))
    assert "--fp32" in reason(NonFiniteOutput("x", [0], half=True))


def test_an_export_disagreement_is_a_readable_line():
    from export.validate import Check, check_line
    from dataclasses import asdict

    check = Check("adain_stylizer", "fp32", "onnxruntime", "coffee", 64, 64, 0.9, 40, 21.5, True)
    assert check_line(asdict(check)) == check.line() and "{" not in check_line(asdict(check))


def test_gatys_draws_no_bar_into_a_redirected_stderr(tmp_path):
    photo = image(tmp_path / "p.png", 24, 24)
    result = invoke("gatys", photo, photo, "--steps", "2", "-o", tmp_path / "g.png")
    assert result.exit_code == 0, result.output
    assert "step/s" not in result.output and "gatys:" not in result.output


def test_an_image_name_as_output_folder_is_refused(tmp_path, decoder_file):
    photo = image(tmp_path / "p.png")
    result = invoke("run", photo, "-s", photo, "--model", decoder_file, "-o", tmp_path / "result.jpg")
    assert result.exit_code == 2 and "give a folder" in result.output and not (tmp_path / "result.jpg").exists()


def test_first_use_export_is_said_and_counted_in_the_summary(tmp_path, vgg_weights, monkeypatch):
    import re
    import time

    from nst_fast.models import save_model
    from nst_fast.transformer_net import TransformerNet

    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("NST_FAST_GRAPH_CACHE", str(tmp_path / "cache"))  # nothing exported yet
    model = tmp_path / "net.safetensors"
    save_model(model, TransformerNet(), {"method": "transformer", "encoder_id": vgg_weights.encoder_id})
    photo = image(tmp_path / "p.png")
    start = time.perf_counter()
    result = invoke("run", photo, "-m", "transformer", "-s", "any", "--model", model, "--backend", "onnxruntime",
                    "-o", tmp_path / "out")
    elapsed = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    assert "for first use" in result.output  # not a terminal, so no bar: a line instead
    reported = float(re.search(r"failed in ([\d.]+) s", result.output)[1])
    assert reported >= 0.8 * elapsed  # the export's seconds count


def test_presets_of_a_folder_without_images_is_an_error(tmp_path, vgg_weights):
    (tmp_path / "none").mkdir()
    result = invoke("presets", tmp_path / "none", "-o", tmp_path / "out")
    assert result.exit_code == 2 and "no images found" in result.output, result.output
