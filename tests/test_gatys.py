"""The Gatys baseline on a small real content/style pair (64 px, so every test runs in seconds)."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst_fast.gatys import GatysConfig, losses, stylize, targets

CONTENT, STYLE = Path("photos/tubingen.jpg"), Path("styles/starry_night.jpg")


def load(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """Image file -> 1 x 3 x H x W float in [0, 1], resized to (width, height)."""
    if not path.is_file():
        pytest.skip(f"test image {path} not found")
    image = Image.open(path).convert("RGB").resize(size, Image.LANCZOS)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def vgg(vgg_weights):  # vgg_weights and data_dir (skip when missing) come from conftest.py
    return vgg_weights.build(last="relu5_1")


@pytest.fixture(scope="module")
def pair(data_dir):
    return load(data_dir / CONTENT, (64, 48)), load(data_dir / STYLE, (64, 51))


def test_lbfgs_lowers_loss_within_budget(vgg, pair):
    content, style = pair
    seen = []
    cfg = GatysConfig(steps=20)
    out, history = stylize(content, style, vgg, cfg, progress=lambda s, l: seen.append(s))
    assert out.shape == content.shape
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert 10 <= len(history) <= 20  # steps = function evaluations, never more than the budget
    with torch.no_grad():  # the image returned is the best one evaluated
        assert losses(vgg, out, *targets(vgg, content, style, cfg), cfg)["total"].item() == pytest.approx(
            min(h["total"] for h in history), rel=0.05)
    assert seen == [h["step"] for h in history] == list(range(1, len(history) + 1))
    assert set(history[0]) >= {"step", "total", "content", "style", "tv"}
    first = history[0]
    best = min(history, key=lambda h: h["total"])  # the last entry may be a line-search trial point
    assert best["total"] < 0.5 * first["total"]
    assert best["style"] < 0.5 * first["style"]


def test_adam_lowers_loss(vgg, pair):
    content, style = pair
    out, history = stylize(content, style, vgg, GatysConfig(steps=20, optimizer="adam"))
    assert len(history) == 20
    assert history[-1]["total"] < 0.5 * history[0]["total"]
    assert out.shape == content.shape and 0.0 <= out.min() and out.max() <= 1.0


def test_same_seed_same_result_from_noise(vgg, pair):
    content, style = pair
    a, _ = stylize(content, style, vgg, GatysConfig(steps=5, init="noise", seed=3))
    b, _ = stylize(content, style, vgg, GatysConfig(steps=5, init="noise", seed=3))
    c, _ = stylize(content, style, vgg, GatysConfig(steps=5, init="noise", seed=4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_style_init_with_a_style_of_another_size(vgg, pair, data_dir):
    content, _ = pair
    style = load(data_dir / STYLE, (40, 72))  # other size and aspect ratio than the content
    out, history = stylize(content, style, vgg, GatysConfig(steps=5, init="style"))
    assert out.shape == content.shape and len(history) == 5
    assert min(h["total"] for h in history) < history[0]["total"]


def test_bad_config_is_refused(vgg, pair):
    content, style = pair
    with pytest.raises(ValueError, match="optimizer"):
        stylize(content, style, vgg, GatysConfig(steps=1, optimizer="sgd"))
    with pytest.raises(ValueError, match="init"):
        stylize(content, style, vgg, GatysConfig(steps=1, init="zeros"))
