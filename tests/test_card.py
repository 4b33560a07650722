"""Model cards (`python -m training.card`): written from the run's own log, weights and eval report."""
import json
import re

import numpy as np
from click.testing import CliRunner
from PIL import Image

from training.card import main
from training.config import AdaINConfig
from training.train_adain import train


def quality_report(path, method):
    """A small `nst-fast eval` report: two photos, one style, Gatys and `method`."""
    rows = []
    for photo, (content, style) in {"a": (2.0, 30.0), "b": (4.0, 50.0)}.items():
        rows.append({"method": "gatys", "style": "starry_night", "photo": photo, "edge_f": 0.4,
                     "content_loss": 2 * content, "style_loss": style / 10, "rank_vgg": 1, "rank_colour_texture": 1})
        rows.append({"method": method, "style": "starry_night", "photo": photo, "edge_f": 0.6,
                     "content_loss": content, "style_loss": style, "rank_vgg": 1 if photo == "a" else 3,
                     "rank_colour_texture": 2})
    path.write_text(json.dumps({"setup": {"content": "eval", "size": 64, "gatys_steps": 5, "styles": ["starry_night"]},
                                "photos": ["a", "b"], "candidates": list(range(16)), "rows": rows}))
    return path


def test_adain_card_reports_recipe_losses_and_ratios_to_gatys(tmp_path, vgg_weights):
    rng = np.random.default_rng(0)
    for kind in ["content", "style", "eval"]:
        (tmp_path / kind).mkdir()
        for i in range(3):
            image = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            Image.fromarray(image).resize((80, 60), Image.BICUBIC).save(tmp_path / kind / f"{i}.jpg")
    run = tmp_path / "run"
    weights = train(AdaINConfig(str(tmp_path / "content"), str(tmp_path / "style"), out=str(run), steps=3,
                                batch_size=2, crop=32, margin=False, sample_size=40, identity_pairs=1,
                                identity_weight=100.0, amp="bf16"))
    card, sheet, plot = tmp_path / "card.md", tmp_path / "sheet.jpg", tmp_path / "losses.png"
    result = CliRunner().invoke(main, [
        "adain", str(run), "--weights", str(weights), "--eval", str(tmp_path / "eval"), "--card", str(card),
        "--sheet", str(sheet), "--plot", str(plot), "--photos", "2",
        "--quality", str(quality_report(tmp_path / "eval.json", "adain")),
        "--origin", "the old decoder", "--remarks", "Looks like paint.", "--previous", str(weights)])
    assert result.exit_code == 0, result.output

    text = card.read_text()
    assert "| steps | 3 in this run (6 content crops seen) |" in text
    assert "100.0 × (10.0 × pixel MSE + 1.0 × feature error at relu1_1-relu3_1) of the output vs the photo for 1 " \
           "photos per batch" in text
    assert "bf16 autocast (losses and weights in FP32) |" in text
    assert "| start | the old decoder |" in text and "Looks like paint." in text
    inversion = re.search(r"\| inverts the encoder \| ([\d.]+) dB \(the decoder it replaced: ([\d.]+) dB\)", text)
    assert inversion and inversion[1] == inversion[2]  # the same weights twice
    assert 0 < float(inversion[1]) < 40  # three steps of training cannot reconstruct the photos
    # medians of 1/2 and 30/3, 50/5: content 0.50 and style 10.00 times Gatys'; identified 1 of 2
    assert "| starry_night | adain | 2 | 50% | 0% | 0.600 | 0.50 | 10.00 |" in text
    assert "| starry_night | gatys | 2 | 100% | 100% | 0.400 | 1 | 1 |" in text
    with Image.open(sheet) as im:
        assert im.width > 4 * 100  # the photo and three styles side by side
    assert plot.stat().st_size > 0


def test_transformer_card_reports_its_style_against_gatys(tmp_path, vgg_weights):
    from training.config import TransformerConfig
    from training.train_transformer import train as train_transformer

    rng = np.random.default_rng(1)
    for kind in ["content", "eval"]:
        (tmp_path / kind).mkdir()
        for i in range(2):
            image = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            Image.fromarray(image).resize((80, 60), Image.BICUBIC).save(tmp_path / kind / f"{i}.jpg")
    style = tmp_path / "starry_night.png"
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(style)
    run = tmp_path / "run"
    weights = train_transformer(TransformerConfig(str(tmp_path / "content"), str(style), out=str(run), steps=2,
                                                  batch_size=2, crop=32, sample_size=32))
    card = tmp_path / "card.md"
    result = CliRunner().invoke(main, [
        "transformer", str(run), "--weights", str(weights), "--eval", str(tmp_path / "eval"), "--card", str(card),
        "--sheet", str(tmp_path / "sheet.jpg"), "--plot", str(tmp_path / "losses.png"), "--photos", "2",
        "--quality", str(quality_report(tmp_path / "eval.json", "transformer"))])
    assert result.exit_code == 0, result.output
    text = card.read_text()
    assert "# Transformer network `starry_night`" in text and "| start | from scratch |" in text
    assert "| starry_night | transformer | 2 | 50% | 0% | 0.600 | 0.50 | 10.00 |" in text
