"""The AdaIN training loop: it lowers its loss, resumes exactly, and writes loadable weights."""
import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from nst_fast.adain import MARGIN, Decoder
from nst_fast.errors import NSTError, WeightsError
from nst_fast.models import load_decoder
from training.data import ImageFolder
from training.train_adain import AdaINConfig, step_losses, train


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for kind in ["content", "style"]:
        (root / kind / "nested").mkdir(parents=True)
        for i in range(6):
            smooth = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            Image.fromarray(smooth).resize((80, 60), Image.BICUBIC).save(root / kind / "nested" / f"{i}.jpg")
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(root / "style" / "grey.png")  # skipped with a warning
    (root / "content" / "broken.jpg").write_bytes(b"nope")  # skipped with a warning
    return root


def config(folders, out, steps):
    return AdaINConfig(str(folders / "content"), str(folders / "style"), out=str(out), steps=steps,
                       batch_size=2, crop=32, checkpoint_every=2, threads=None, margin=False,
                       sample_size=40)


def final_weights(out):
    decoder, meta = load_decoder(out / "adain_decoder.safetensors")
    return decoder.state_dict(), meta


def test_resume_gives_the_same_weights_as_an_unbroken_run(folders, tmp_path, vgg_weights):
    with pytest.warns(UserWarning, match="skipping"):
        train(config(folders, tmp_path / "straight", 4))
    train(config(folders, tmp_path / "broken", 2))
    train(config(folders, tmp_path / "broken", 4))  # resumes from the step-2 checkpoint
    straight, meta = final_weights(tmp_path / "straight")
    resumed, _ = final_weights(tmp_path / "broken")
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)
    assert meta["encoder_id"] == vgg_weights.encoder_id and meta["steps"] == "4"
    log = [json.loads(l) for l in (tmp_path / "broken" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]


def test_ema_weights_are_the_average_and_resume_exactly(folders, tmp_path):
    for out, stops in [("straight", [4]), ("broken", [2, 4])]:
        for steps in stops:
            cfg = config(folders, tmp_path / out, steps)
            cfg.ema, cfg.lr = 0.5, 1e-2
            train(cfg)
    straight, _ = final_weights(tmp_path / "straight")
    resumed, _ = final_weights(tmp_path / "broken")
    state = torch.load(tmp_path / "straight" / "checkpoints" / "step0000004.pt", weights_only=False)
    assert int(state["averaged"]["n_averaged"]) == 4
    raw_moved = False
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)
        average = state["averaged"][f"module.{key}"]
        torch.testing.assert_close(straight[key], average.half().float(), rtol=0, atol=0)  # the file holds the average
        raw_moved |= not torch.equal(average.half(), state["model"][key].half())
    assert raw_moved  # and the average is not the last step's weights


def test_an_interrupt_says_where_the_run_was_checkpointed(folders, tmp_path, monkeypatch):
    from nst_fast import interrupts
    from training import train_adain

    calls = []

    def interrupted_at_step_three(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return step_losses(*args)

    monkeypatch.setattr(train_adain, "step_losses", interrupted_at_step_three)
    said = []
    with pytest.raises(SystemExit), interrupts.stopping_cleanly(said.append):
        train(config(folders, tmp_path, 10))
    assert len(said) == 1 and "interrupted after step 2" in said[0] and str(tmp_path / "checkpoints") in said[0]
    assert (tmp_path / "checkpoints" / "step0000002.pt").exists()


def test_loss_falls(folders, tmp_path):
    cfg = config(folders, tmp_path, 30)
    cfg.lr = 1e-3
    train(cfg)
    log = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    first, last = np.mean([r["loss"] for r in log[:5]]), np.mean([r["loss"] for r in log[-5:]])
    assert last < 0.5 * first


def test_corrupt_checkpoint_is_named(folders, tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step0000002.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="step0000002.pt: not a usable checkpoint"):
        train(config(folders, tmp_path, 4))


def test_samples_and_loss_plot_are_written(folders, tmp_path):
    cfg = config(folders, tmp_path, 3)
    cfg.sample_every, cfg.sample_size = 2, 48
    train(cfg)
    sheets = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert sheets == ["step0000002.png", "step0000003.png"]  # every 2 steps and at the end
    with Image.open(tmp_path / "samples" / sheets[0]) as sheet:
        assert sheet.width > 6 * 48 and sheet.height > 4 * 48  # photo, reconstruction, styles; a row per photo
    assert (tmp_path / "losses.png").stat().st_size > 0


def test_init_starts_from_the_given_decoder(folders, tmp_path):
    train(config(folders, tmp_path / "first", 2))
    cfg = config(folders, tmp_path / "second", 1)
    cfg.init, cfg.lr = str(tmp_path / "first" / "adain_decoder.safetensors"), 0.0  # lr 0: nothing moves
    train(cfg)
    started, _ = final_weights(tmp_path / "first")
    ended, meta = final_weights(tmp_path / "second")
    for key in started:
        torch.testing.assert_close(ended[key], started[key], rtol=0, atol=0)
    assert meta["steps"] == "1"


def test_identity_pairs_teach_the_decoder_to_invert_the_encoder(folders, tmp_path):
    cfg = config(folders, tmp_path, 25)
    cfg.identity_pairs, cfg.identity_weight, cfg.lr = 2, 1000.0, 1e-3
    cfg.content_weight = cfg.style_weight = 0.0  # the pixel term alone
    train(cfg)
    log = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    first, last = np.mean([r["identity"] for r in log[:5]]), np.mean([r["identity"] for r in log[-5:]])
    assert last < 0.5 * first


def test_more_identity_pairs_than_the_batch_is_an_error(folders, tmp_path):
    cfg = config(folders, tmp_path, 1)
    cfg.identity_pairs = 3
    with pytest.raises(NSTError, match="identity_pairs must lie in 0..batch_size"):
        train(cfg)


def test_sample_photos_no_larger_than_the_margin_are_an_error(folders, tmp_path):
    cfg = config(folders, tmp_path, 1)
    cfg.sample_size = 32  # the sheets decode as the product does, with 32 px of mirror image around
    with pytest.raises(NSTError, match="sample_size must exceed"):
        train(cfg)


def test_invert_stage_learns_to_decode_each_photo_from_its_own_features(folders, tmp_path, vgg_weights):
    cfg = config(folders, tmp_path, 24)
    cfg.stage, cfg.lr, cfg.sample_every, cfg.sample_size = "invert", 3e-4, 12, 40
    train(cfg)
    # Judged on the same crops before and after: the crops a run draws depend on the folder's path
    # (a temporary directory), and batch-to-batch losses moved by as much as 24 steps do (the mean of
    # the last 5 logged feature terms over the first 5: 0.71 in one directory, 0.96 in another). On
    # fixed crops, over 6 directories: pixel 0.22-0.31 of the untrained decoder's, feature 0.73-0.86.
    photos = ImageFolder(cfg.content, cfg.crop).batch(8, 1, 0)
    vgg = vgg_weights.build("relu4_1")
    torch.manual_seed(0)
    with torch.no_grad():
        before = step_losses(cfg, vgg, Decoder(cfg.upsample), photos)[1]
        after = step_losses(cfg, vgg, load_decoder(tmp_path / "adain_decoder.safetensors")[0], photos)[1]
    for term in ("pixel", "feature"):
        assert after[term] < (0.7 if term == "pixel" else 0.95) * before[term], (term, before, after)
    log = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    # the sample sheets' reconstruction PSNR is logged with the steps that write a sheet
    assert [r["step"] for r in log if "inversion_db" in r] == [12, 24]
    assert all(5 < r["inversion_db"] < 60 for r in log if "inversion_db" in r)
    assert (tmp_path / "samples" / "step0000024.png").is_file()


def test_unknown_stage_is_an_error(folders, tmp_path):
    cfg = config(folders, tmp_path, 1)
    cfg.stage = "distil"
    with pytest.raises(NSTError, match="stage must be adain or invert"):
        train(cfg)


def test_a_folder_inside_a_tar_archive_gives_the_crops_of_the_folder(folders, tmp_path):
    import random
    import tarfile

    archive = tmp_path / "train.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(folders / "content", arcname="content")
        tar.add(folders / "style", arcname="style")
    with pytest.warns(UserWarning, match="skipping"):  # broken.jpg, as in the folder
        from_folder, from_archive = ImageFolder(folders / "content", 32), ImageFolder(archive / "content", 32)
    assert len(from_archive) == len(from_folder) == 6  # only content/, not style/ beside it
    for seed in range(3):
        np.testing.assert_array_equal(from_archive.random_crop(random.Random(seed)),
                                      from_folder.random_crop(random.Random(seed)))
    for a, b in zip(from_archive.samples(48), from_folder.samples(48)):
        np.testing.assert_array_equal(a, b)


def test_missing_folder_and_broken_archive_are_named(tmp_path):
    with pytest.raises(NSTError, match=r"nope: no such folder of training images"):
        ImageFolder(tmp_path / "nope", 32)
    (tmp_path / "bad.tar").write_bytes(b"not a tar archive" * 100)
    with pytest.raises(NSTError, match=r"bad\.tar: not a readable tar archive"):
        ImageFolder(tmp_path / "bad.tar" / "content", 32)


def test_cli_trains_from_an_archive_until_its_minutes_are_spent(folders, tmp_path):
    """--minutes ends the run as --steps would: last samples, then the weights; the archive paths
    pass the CLI's checks."""
    import tarfile

    from click.testing import CliRunner

    from nst_fast.cli import main

    archive = tmp_path / "train.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(folders / "content" / "nested", arcname="content")
        tar.add(folders / "style" / "nested", arcname="style")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "adain", "--content", str(archive / "content"), "--style",
                                       str(archive / "style"), "-o", str(out), "--steps", "100000", "--minutes",
                                       "0.0001", "--crop", "32", "--no-margin", "--batch-size", "2", "--sample-size", "40"])
    assert result.exit_code == 0, result.output
    _, meta = final_weights(out)
    assert meta["steps"] == "1"  # 6 ms: spent within the first step
    assert [p.name for p in (out / "samples").iterdir()] == ["step0000001.png"]
    assert len((out / "log.jsonl").read_text().splitlines()) == 1


def test_per_tap_style_norm_logs_the_relative_style_loss(folders, tmp_path):
    # lr 0: both runs see the same decoder and batches, so only the style term's scale differs
    runs = {}
    for norm in ("none", "per_tap"):
        cfg = config(folders, tmp_path / norm, 2)
        cfg.style_norm, cfg.lr = norm, 0.0
        train(cfg)
        runs[norm] = [json.loads(line) for line in (tmp_path / norm / "log.jsonl").read_text().splitlines()]
    for raw, relative in zip(runs["none"], runs["per_tap"]):
        assert raw["content"] == pytest.approx(relative["content"], rel=1e-5)
        # relative to the styles' own statistics: four taps of order one, not hundreds on the 0-255 encoder
        assert 0 < relative["style"] < 4 < raw["style"]
    cfg = config(folders, tmp_path / "bad", 1)
    cfg.style_norm = "per-tap"
    with pytest.raises(NSTError, match="style_norm must be per_tap or none"):
        train(cfg)


@pytest.mark.parametrize("knob, term", [("gram_weight", "gram"), ("grid_weight", "grid")])
def test_extra_weights_add_a_logged_term_to_the_loss(folders, tmp_path, knob, term):
    # lr 0: both runs see the same decoder and batches, so the losses differ by the extra term alone
    runs = {}
    for weight in (0.0, 2.5):
        cfg = config(folders, tmp_path / str(weight), 2)
        setattr(cfg, knob, weight)
        cfg.lr = 0.0
        train(cfg)
        runs[weight] = [json.loads(line) for line in (tmp_path / str(weight) / "log.jsonl").read_text().splitlines()]
    for off, on in zip(runs[0.0], runs[2.5]):
        assert off[term] == 0 and on[term] > 0
        assert on["style"] == pytest.approx(off["style"], rel=1e-5)
        assert on["loss"] == pytest.approx(off["loss"] + 2.5 * on[term], rel=1e-4)


def test_periodic_detail_measures_a_pattern_in_step_with_the_cells():
    from nst_fast.losses import periodic_detail

    rng = torch.Generator().manual_seed(0)
    photo = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 132, 132, generator=rng), 5, stride=1)[..., :128, :128]
    dots = torch.zeros(1, 1, 8, 8)
    dots[..., 3, 5] = 0.2
    gridded = photo + dots.repeat(1, 1, 16, 16)
    assert periodic_detail(photo) < 2 / (16 * 16)  # nothing repeats: about 1 / blocks
    assert periodic_detail(gridded) > 10 * periodic_detail(photo)
    assert periodic_detail(gridded * 7 + 3) == pytest.approx(periodic_detail(gridded).item(), rel=1e-4)
    gridded.requires_grad_(True)
    periodic_detail(gridded).backward()  # a loss: gradients reach the pixels
    assert gridded.grad.abs().sum() > 0


def test_the_margin_encodes_crops_as_the_product_encodes_photos(folders, tmp_path, vgg_weights):
    cfg = config(folders, tmp_path, 1)
    cfg.margin, cfg.crop, cfg.gram_weight, cfg.grid_weight, cfg.identity_pairs = True, 40, 1.0, 1.0, 1
    decoder, sizes = Decoder(), []
    decoder.register_forward_hook(lambda module, args, output: sizes.append((args[0].shape[-1], output.shape[-1])))
    content, style = torch.rand(2, 3, 40, 40), torch.rand(2, 3, 40, 40)
    _, terms = step_losses(cfg, vgg_weights.build("relu4_1"), decoder, content, style)
    assert sizes == [((40 + 2 * MARGIN) // 8, 40 + 2 * MARGIN)]  # relu4_1 cells of crop and margin, decoded whole
    assert all(torch.isfinite(v) and v > 0 for v in terms.values())
    with pytest.raises(NSTError, match="crop must exceed the mirrored margin.*--no-margin"):
        train(AdaINConfig(cfg.content, cfg.style, out=str(tmp_path / "small"), steps=1, crop=32))


def test_bf16_on_a_cpu_without_bf16_instructions_warns(folders, tmp_path, monkeypatch):
    from nst_fast import backends
    from training.loop import prepare

    cfg = config(folders, tmp_path, 1)
    cfg.amp = "bf16"
    monkeypatch.setattr(backends, "cpu_bf16", lambda: False)
    with pytest.warns(UserWarning, match="drop --amp"):
        prepare(cfg)
    monkeypatch.setattr(backends, "cpu_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare(cfg)


def test_the_upsampling_is_recorded_and_a_resume_keeps_it(folders, tmp_path):
    cfg = config(folders, tmp_path, 2)
    cfg.upsample = "nearest"
    train(cfg)
    _, meta = final_weights(tmp_path)
    assert meta["upsample"] == "nearest" and json.loads(meta["recipe"])["upsample"] == "nearest"
    cfg.steps, cfg.upsample = 3, "bilinear"
    with pytest.raises(WeightsError, match="upsample: 'nearest' there, 'bilinear' now"):
        train(cfg)
    cfg.upsample = "cubic"
    with pytest.raises(NSTError, match="upsample must be one of nearest, bilinear"):
        train(cfg)
