"""The transformer training loop and `nst-fast train transformer`: exact resume, clear errors,
loadable weights, TOML recipes. Tiny crops of real photos keep each run to a second or two."""
import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from nst_fast.cli import main
from nst_fast.errors import NSTError, WeightsError
from nst_fast.losses import mean_std_loss
from nst_fast.models import load_decoder, load_transformer, save_model
from nst_fast.transformer_net import TransformerNet
from training.checkpoint import save_checkpoint
from training.config import AdaINConfig, TransformerConfig, load_config
from training.train_transformer import FIRST_RESIDUAL, train


@pytest.fixture(scope="module")
def data(data_dir, tmp_path_factory):
    """Four photos and the Starry Night, shrunk so decoding costs nothing."""
    root = tmp_path_factory.mktemp("data")
    (root / "photos").mkdir()
    for path in sorted((data_dir / "train" / "content").glob("*.jpg"))[:4]:
        with Image.open(path) as im:
            im.convert("RGB").resize((64, 48)).save(root / "photos" / path.name)
    with Image.open(data_dir / "styles" / "starry_night.jpg") as im:
        im.convert("RGB").resize((80, 64)).save(root / "starry_night.jpg")
    return root


def config(data, out, steps: int, **knobs) -> TransformerConfig:
    small = dict(batch_size=2, crop=32, style_size=64, sample_size=32, checkpoint_every=2, sample_every=2)
    return TransformerConfig(str(data / "photos"), str(data / "starry_night.jpg"), out=str(out), steps=steps,
                             **{**small, **knobs})


def checkpoint(out, step: int) -> dict:
    return torch.load(out / "checkpoints" / f"step{step:07d}.pt", weights_only=False)


def test_resume_equals_an_unbroken_run_and_writes_loadable_weights(data, tmp_path, vgg_weights):
    train(config(data, tmp_path / "straight", 4))
    train(config(data, tmp_path / "broken", 2))
    final = train(config(data, tmp_path / "broken", 4))  # resumes from the step-2 checkpoint
    straight, resumed = (checkpoint(tmp_path / run, 4)["model"] for run in ("straight", "broken"))
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)

    net, meta = load_transformer(final, encoder_id=vgg_weights.encoder_id)
    assert final.name == "starry_night.safetensors" and isinstance(net, TransformerNet)
    assert (meta["method"], meta["style"], meta["steps"]) == ("transformer", "starry_night", "4")
    assert json.loads(meta["recipe"])["crop"] == 32
    log = [json.loads(line) for line in (tmp_path / "broken" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert {"loss", "content", "style", "tv", "lr", "images_per_s"} <= set(log[-1])
    assert all(r["loss"] == r["loss"] and r["loss"] < float("inf") for r in log)
    assert (tmp_path / "broken" / "samples" / "step0000004.png").is_file()
    assert (tmp_path / "broken" / "losses.png").is_file()


def test_init_weights_start_a_run_without_checkpoints(data, tmp_path):
    first = train(config(data, tmp_path / "first", 2))
    # steps=1 stops right after the first update: the loaded weights, one Adam step from them
    again = train(config(data, tmp_path / "again", 1, init=str(first), lr=1e-9))
    fresh = train(config(data, tmp_path / "fresh", 1, lr=1e-9))
    start, continued, scratch = (load_transformer(p)[0].state_dict() for p in (first, again, fresh))
    key = "layers.0.1.weight"
    assert torch.allclose(continued[key], start[key], atol=1e-3)
    assert not torch.allclose(scratch[key], start[key], atol=1e-3)


# GradScaler skips the optimiser step while it calibrates its scale, and torch warns about that
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_fp16_autocast_stays_finite_and_checkpoints_its_loss_scale(data, tmp_path):
    """The CUDA recipe's code path, on the CPU: Gram sums overflow FP16 unless kept in FP32."""
    train(config(data, tmp_path, 2, amp="fp16", batch_size=1))
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor([r["content"], r["style"], r["tv"]])).all() for r in log)
    assert checkpoint(tmp_path, 2)["scaler"]["scale"] > 0


def test_corrupt_checkpoint_is_named(data, tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step0000002.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="step0000002.pt: not a usable checkpoint"):
        train(config(data, tmp_path, 4))


def test_checkpoint_of_another_style_is_refused(data, tmp_path):
    net = TransformerNet()
    optimizer = torch.optim.Adam(net.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1.0)
    other = {**config(data, tmp_path, 4).__dict__, "style": "the_scream.jpg"}
    save_checkpoint(tmp_path / "checkpoints", 2, net, optimizer, scheduler, other)
    with pytest.raises(WeightsError, match=r"step0000002.pt: checkpoint of a different recipe \(style"):
        train(config(data, tmp_path, 4))


@pytest.mark.parametrize("recipe", [AdaINConfig, TransformerConfig])
def test_toml_values_apply_and_flags_override_them(tmp_path, recipe):
    path = tmp_path / "recipe.toml"
    path.write_text('content = "photos"\nstyle = "art"\nsteps = 50\nlr = 1\ncrop = 64\n')
    cfg = load_config(recipe, path, {"steps": 7})
    assert (cfg.content, cfg.style, cfg.steps, cfg.crop, cfg.lr) == ("photos", "art", 7, 64, 1.0)
    assert cfg.batch_size == recipe.batch_size  # untouched knobs keep their defaults


def test_toml_mistakes_are_errors_naming_the_file(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text('style = "a.jpg"\nstyle_wieght = 3.0\n')
    with pytest.raises(NSTError, match="recipe.toml: unknown setting 'style_wieght'"):
        load_config(TransformerConfig, path, {})
    path.write_text('style = "a.jpg"\nsteps = "many"\n')
    with pytest.raises(NSTError, match="recipe.toml: steps = 'many': expected int"):
        load_config(TransformerConfig, path, {})
    path.write_text('style = "a.jpg"\n')
    with pytest.raises(NSTError, match="missing content"):
        load_config(TransformerConfig, path, {})


def test_cli_trains_from_a_recipe_file_with_flags_on_top(data, tmp_path):
    recipe = tmp_path / "starry.toml"
    recipe.write_text(f'content = "{data / "photos"}"\nstyle = "{data / "starry_night.jpg"}"\n'
                      f'steps = 50\nbatch_size = 2\ncrop = 32\nstyle_size = 64\nsample_size = 32\n'
                      f'style_taps = ["relu1_2", "relu2_2"]\n')
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "transformer", "--config", str(recipe), "--steps", "2",
                                       "-o", str(out), "--tv-weight", "5"])
    assert result.exit_code == 0, result.output
    assert f"transformer weights: {out / 'starry_night.safetensors'}" in result.output
    _, meta = load_transformer(out / "starry_night.safetensors")
    recipe_used = json.loads(meta["recipe"])
    assert (meta["steps"], recipe_used["tv_weight"], recipe_used["style_taps"]) == ("2", 5.0, ["relu1_2", "relu2_2"])

    again = CliRunner().invoke(main, ["train", "transformer", "--config", str(recipe), "--steps", "2",
                                      "-o", str(out), "--style-size", "48"])
    assert again.exit_code == 2 and "checkpoint of a different recipe (style_size: 64 there, 48 now)" in again.output


def test_cli_takes_init_weights_and_threads(data, tmp_path):
    """Flags whose default is None (--init, --threads, --vgg) parse as their values."""
    first = train(config(data, tmp_path / "first", 1))
    result = CliRunner().invoke(main, ["train", "transformer", "--content", str(data / "photos"), "--style",
                                       str(data / "starry_night.jpg"), "--steps", "1", "--batch-size", "1",
                                       "--crop", "32", "--style-size", "64", "--sample-size", "32",
                                       "--init", str(first), "--threads", "1", "-o", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    recipe = json.loads(load_transformer(tmp_path / "again" / "starry_night.safetensors")[1]["recipe"])
    assert (recipe["init"], recipe["threads"]) == (str(first), 1)


def test_sigterm_checkpoints_the_last_step(data, tmp_path):
    """`kill` stops a background run as Ctrl-C does: the steps done so far are checkpointed."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "nst_fast.cli", "train", "transformer", "--content",
                             str(data / "photos"), "--style", str(data / "starry_night.jpg"), "--steps", "100000",
                             "--batch-size", "1", "--crop", "32", "--style-size", "64", "--sample-size", "32",
                             "--checkpoint-every", "1000", "--threads", "1", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "log.jsonl"
    deadline = time.monotonic() + 120
    while (not log.is_file() or len(log.read_text().splitlines()) < 3) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) != 0
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    saved = sorted((out / "checkpoints").glob("step*.pt"))
    assert steps and len(saved) == 1
    # the log line of the last step may not be written when the signal lands right after its update
    assert torch.load(saved[0], weights_only=False)["step"] in (steps[-1], steps[-1] + 1)


def test_cli_adain_reads_a_recipe_too(data, tmp_path):
    recipe = tmp_path / "adain.toml"
    recipe.write_text(f'content = "{data / "photos"}"\nstyle = "{data / "photos"}"\nsteps = 1\n'
                      f'batch_size = 1\ncrop = 32\nmargin = false\nsample_size = 40\n')
    result = CliRunner().invoke(main, ["train", "adain", "--config", str(recipe), "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    _, meta = load_decoder(tmp_path / "run" / "adain_decoder.safetensors")
    assert json.loads(meta["recipe"])["crop"] == 32 and meta["steps"] == "1"


def test_style_norm_chooses_how_the_taps_are_weighed(data, tmp_path):
    # per_tap puts every tap's error on the style's own scale (about 1 each); none keeps the raw
    # Gram errors, where the shallow taps are orders of magnitude larger
    taps = ("relu1_1", "relu3_1")
    for norm in ("per_tap", "none"):
        train(config(data, tmp_path / norm, 1, style_taps=taps, style_norm=norm))
    first = {norm: json.loads((tmp_path / norm / "log.jsonl").read_text().splitlines()[0])["style"]
             for norm in ("per_tap", "none")}
    assert first["per_tap"] < 10 < first["none"]
    with pytest.raises(NSTError, match="style_norm must be per_tap or none"):
        train(config(data, tmp_path / "bad", 1, style_norm="gatys"))
    with pytest.raises(WeightsError, match="style_norm"):  # a resumed run keeps its loss
        train(config(data, tmp_path / "none", 2, style_taps=taps, style_norm="per_tap"))


def test_droplet_penalty_is_zero_on_spread_features_and_grows_with_a_spike():
    from training.train_transformer import NormInputs

    torch.manual_seed(0)
    net = TransformerNet()
    inputs = NormInputs(net.layers)
    spread = torch.randn(1, 128, 32, 32)
    spike = spread.clone()
    spike[:, :, 10:12, 20:22] += 40  # a blob a few pixels wide in every channel: the droplet's signature
    losses = []
    for x in (spread, spike):
        inputs.keep(None, (x,))
        losses.append(inputs.droplet_loss().item())
    assert losses[0] < 1e-3 < 0.1 < losses[1]
    with torch.no_grad():  # sample sheets do not count towards the next step's penalty
        net(torch.rand(1, 3, 32, 32))
    assert inputs.inputs == []


def test_droplet_weight_adds_a_logged_term_to_the_loss(data, tmp_path, vgg_weights):
    # A network whose first residual convolution gives every channel the same map: its norm's
    # channel-mean squared z-score is one channel's, over 9 wherever that channel's tail is (a
    # random network spreads its channels and has no pixel over the line).
    torch.manual_seed(0)
    net = TransformerNet()
    conv = net.layers[FIRST_RESIDUAL].body[0][-1]
    conv.weight.data[:] = conv.weight.data[:1].clone()
    conv.bias.data[:] = conv.bias.data[0]
    spiky = tmp_path / "spiky.safetensors"
    save_model(spiky, net, {"method": "transformer", "encoder_id": vgg_weights.encoder_id, "style": "starry_night"})
    cfg = config(data, tmp_path / "droplet", 2, droplet_weight=1e4, init=str(spiky), crop=48)
    train(cfg)
    train(config(data, tmp_path / "plain", 1))
    log = [json.loads(line) for line in (tmp_path / "droplet" / "log.jsonl").read_text().splitlines()]
    assert any(r["droplet"] > 0 for r in log) and all(r["droplet"] >= 0 for r in log)
    for r in log:
        weighted = (cfg.content_weight * r["content"] + cfg.style_weight * r["style"] + cfg.tv_weight * r["tv"]
                    + cfg.droplet_weight * r["droplet"])
        assert r["loss"] == pytest.approx(weighted, rel=1e-4)
    assert "droplet" not in json.loads((tmp_path / "plain" / "log.jsonl").read_text().splitlines()[0])


def test_relative_mean_std_loss_counts_every_tap_alike():
    # Two taps with the same relative error, one at a hundred times the other's scale: raw, the
    # large tap is the whole loss; relative, the two terms are equal.
    torch.manual_seed(0)
    target = torch.rand(1, 8, 6, 6) + 0.5
    output = target * 1.2
    feats = {"small": output, "large": output * 100}
    targets = {"small": target, "large": target * 100}
    raw = [mean_std_loss({k: feats[k]}, {k: targets[k]}).item() for k in feats]
    relative = [mean_std_loss({k: feats[k]}, {k: targets[k]}, relative=True).item() for k in feats]
    assert raw[1] == pytest.approx(raw[0] * 1e4, rel=1e-3)
    assert relative[0] == pytest.approx(relative[1], rel=1e-4) and relative[0] > 0
    assert mean_std_loss(targets, targets, relative=True).item() == pytest.approx(0, abs=1e-6)


def test_stats_weight_adds_a_logged_term_to_the_loss(data, tmp_path):
    cfg = config(data, tmp_path / "stats", 2, stats_weight=50.0, style_taps=("relu1_1", "relu2_1"))
    train(cfg)
    log = [json.loads(line) for line in (tmp_path / "stats" / "log.jsonl").read_text().splitlines()]
    assert all(r["stats"] > 0 for r in log)
    for r in log:
        weighted = (cfg.content_weight * r["content"] + cfg.style_weight * r["style"] + cfg.tv_weight * r["tv"]
                    + cfg.stats_weight * r["stats"])
        assert r["loss"] == pytest.approx(weighted, rel=1e-4)
