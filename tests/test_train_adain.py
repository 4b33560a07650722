"""The AdaIN training loop: it lowers its loss, resumes exactly, and writes loadable weights."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from nst_fast.errors import WeightsError
from nst_fast.models import load_decoder
from training.train_adain import AdaINConfig, train


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
                       batch_size=2, crop=32, checkpoint_every=2, threads=None)


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
