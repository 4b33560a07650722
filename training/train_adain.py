"""Train the AdaIN decoder (Huang & Belongie 2017), top to bottom.

Loss: content = MSE(relu4_1 of the output, AdaIN target t); style = distance of channel mean and
std at relu1_1, relu2_1, relu3_1, relu4_1 between output and style image (optionally each tap
relative to the styles' own statistics there, not in the paper). Crops are encoded with
adain.MARGIN px of mirror image around them, as the product encodes photos, and the style terms
look at the crop's own cells (not in the paper; --no-margin). Optionally (not in the paper) a Gram
style term at the same taps, and a few photos of each batch as their own style, their output
held to the invert stage's loss (pixel and feature error). Adam with the paper's decay lr / (1 + decay * step);
optionally (--ema, not in the paper) a moving average of the weights, which the samples and weights file hold.
Checkpoints are resumable exactly: batches are a function of (seed, step) and all RNG state is
saved. The same loop runs on CPU and CUDA; on CUDA with channels_last, pinned batches and optional
bf16/fp16 autocast.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from nst_fast.adain import MARGIN, UPSAMPLING, Decoder, adain, content_features, mean_std, without_margin
from nst_fast.errors import NSTError
from nst_fast.losses import gram, gram_loss, mean_std_loss, periodic_detail
from nst_fast.metrics import psnr
from nst_fast.models import load_decoder, save_model
from nst_fast.sheet import contact_sheet
from nst_fast.weights import vgg_weights
from training.config import AdaINConfig
from training.data import ImageFolder
from training.loop import LAYOUT, Prefetch, Run, adam, autocast, grad_scaler, prepare
from training.plots import plot_run

STYLE_TAPS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
INVERT_TAPS = ["relu1_1", "relu2_1", "relu3_1"]


def train(cfg: AdaINConfig, resume: bool = True) -> Path:
    out = Path(cfg.out)
    device = prepare(cfg)
    if cfg.upsample not in UPSAMPLING:
        raise NSTError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {cfg.upsample!r}")
    if cfg.stage not in ("adain", "invert"):
        raise NSTError(f"stage must be adain or invert, got {cfg.stage!r}")
    if cfg.style_norm not in ("per_tap", "none"):
        raise NSTError(f"style_norm must be per_tap or none, got {cfg.style_norm!r}")
    if cfg.sample_size <= MARGIN:
        raise NSTError(f"sample_size must exceed the graph's mirrored margin ({MARGIN} px), got {cfg.sample_size}")
    if cfg.margin and cfg.crop <= MARGIN:
        raise NSTError(f"crop must exceed the mirrored margin ({MARGIN} px) the adain stage encodes crops with, "
                       f"got {cfg.crop}; or give --no-margin")
    if not 0 <= cfg.identity_pairs <= cfg.batch_size:
        raise NSTError(f"identity_pairs must lie in 0..batch_size ({cfg.batch_size}), got {cfg.identity_pairs}")

    weights = vgg_weights(cfg.vgg)
    vgg = weights.build("relu4_1").to(device, memory_format=LAYOUT)
    decoder = Decoder(cfg.upsample).to(device, memory_format=LAYOUT)
    optimizer, scheduler = adam(decoder.parameters(), cfg.lr, cfg.lr_decay)
    scaler = grad_scaler(device, cfg.amp)
    # The first update copies the decoder as it is then (one step past --init or the resumed weights)
    averaged = AveragedModel(decoder, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema)) if cfg.ema else None
    kept = decoder if averaged is None else averaged.module  # what the samples show and the weights file holds

    contents = ImageFolder(cfg.content, cfg.crop)
    styles = ImageFolder(cfg.style, cfg.crop)
    samples = (contents.samples(cfg.sample_size), styles.samples(cfg.sample_size))
    load = lambda step: (contents.batch(cfg.batch_size, cfg.seed, step),
                         *([] if cfg.stage == "invert" else [styles.batch(cfg.batch_size, cfg.seed, step)]))
    with Run(out, cfg, decoder, optimizer, scheduler, scaler, resume, "adain", fixed=("upsample",),
             averaged=averaged) as run, \
            Prefetch(load, run.start, device, LAYOUT) as batches:
        if run.start == 0 and cfg.init:
            decoder.load_state_dict(load_decoder(cfg.init, weights.encoder_id)[0].state_dict())
        for step in run.steps():
            t0 = time.perf_counter()
            loss, terms = step_losses(cfg, vgg, decoder, *batches.take(step))

            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            if averaged is not None:
                averaged.update_parameters(decoder)
            run.done = step + 1  # an interrupt from here on checkpoints this step
            if run.last() or run.done % cfg.sample_every == 0:
                terms["inversion_db"] = write_samples(vgg, kept, *samples,
                                                      out / "samples" / f"step{run.done:07d}.png", device)
            run.record(step + 1, t0, cfg.batch_size, loss=loss, **terms)

    plot_run(out, loss_terms(asdict(cfg)), f"AdaIN decoder ({cfg.stage} stage): {run.done} steps")
    final = out / "adain_decoder.safetensors"
    save_model(final, kept, {"method": "adain", "encoder_id": weights.encoder_id, "steps": run.done,
                                "recipe": asdict(cfg)})
    return final


def loss_terms(recipe: dict) -> tuple[str, ...]:
    """The logged loss terms of a run with this recipe (as a dict, so model cards can ask too)."""
    if recipe.get("stage", "adain") == "invert":
        return ("pixel", "feature")
    return ("content", "style", *(["gram"] if recipe.get("gram_weight") else []),
            *(["grid"] if recipe.get("grid_weight") else []),
            *(["identity"] if recipe.get("identity_pairs") else []))


def step_losses(cfg: AdaINConfig, vgg, decoder: Decoder, content: torch.Tensor, style: torch.Tensor | None = None):
    """The loss of one batch and its unweighted terms, for the config's stage."""
    if cfg.stage == "invert":
        return inversion_losses(cfg, vgg, decoder, content)
    return adain_losses(cfg, vgg, decoder, content, style)


def adain_losses(cfg: AdaINConfig, vgg, decoder: Decoder, content: torch.Tensor, style: torch.Tensor):
    """The paper's content loss (relu4_1 against the AdaIN target) and mean/std style loss, plus the
    Gram style term and the invert stage's loss of the identity pairs where asked for."""
    own = cfg.identity_pairs
    style[:own] = content[:own]  # these photos are their own style: AdaIN then leaves them be
    with autocast(content.device, cfg.amp):
        with torch.no_grad():
            content_feat = content_features(vgg, content) if cfg.margin else vgg(content, ["relu4_1"])["relu4_1"]
            style_feats = vgg(style, STYLE_TAPS)
            target = adain(content_feat, *mean_std(style_feats["relu4_1"]))
        output = decoder(target)
        output_feats = vgg(output, STYLE_TAPS)
    # The content loss holds the whole decoded map to t; the style terms look only at the photo's
    # own cells, the picture the product keeps, so the margin's edge (VGG's zero padding) earns nothing.
    picture = {k: inside_margin(f, output) for k, f in output_feats.items()} if cfg.margin else output_feats
    # outside autocast, so the squared-error sums run in FP32
    loss_content = F.mse_loss(output_feats["relu4_1"].float(), target.float())
    loss_style = mean_std_loss(picture, style_feats, relative=cfg.style_norm == "per_tap")
    # Each output against its own style image's Grams (gram() sums in FP32: FP16 overflows)
    loss_gram = gram_loss(picture, {k: gram(style_feats[k]) for k in STYLE_TAPS}) \
        if cfg.gram_weight else torch.zeros(())
    # The photo's own pixels only: the margin is mirrored, so cells and blocks stay in step (MARGIN % 8 == 0)
    loss_grid = periodic_detail(without_margin(output) if cfg.margin else output) if cfg.grid_weight else torch.zeros(())
    # The identity pairs are held to the invert stage's loss, so the adain stage keeps the inverter
    # it starts from (relu4_1 alone leaves a photo's own edges and shading free to drift)
    loss_identity = torch.zeros(())
    if own:
        photos = without_margin(output[:own]) if cfg.margin else output[:own]
        with torch.no_grad(), autocast(content.device, cfg.amp):
            targets = vgg(content[:own], INVERT_TAPS)
        pixel, feature = inversion_error(vgg, photos, content[:own], targets, cfg.amp)
        loss_identity = cfg.pixel_weight * pixel + cfg.feature_weight * feature
    loss = (cfg.content_weight * loss_content + cfg.style_weight * loss_style + cfg.gram_weight * loss_gram
            + cfg.grid_weight * loss_grid + cfg.identity_weight * loss_identity)
    return loss, {"content": loss_content, "style": loss_style, "gram": loss_gram, "grid": loss_grid,
                  "identity": loss_identity}


def inside_margin(feat: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """The cells of `feat` (features of `image`) that lie inside adain.MARGIN."""
    cut = MARGIN * feat.shape[-1] // image.shape[-1]
    return feat[:, :, cut:-cut, cut:-cut]


def inversion_losses(cfg: AdaINConfig, vgg, decoder: Decoder, content: torch.Tensor):
    """The decoder as an inverter of the encoder (as the WCT decoders are trained): decode each
    photo's own relu4_1 features and compare with the photo in pixels and in shallower features."""
    with autocast(content.device, cfg.amp):
        with torch.no_grad():
            targets = vgg(content, [*INVERT_TAPS, "relu4_1"])
        output = decoder(targets["relu4_1"])
    loss_pixel, loss_feature = inversion_error(vgg, output, content, targets, cfg.amp)
    return cfg.pixel_weight * loss_pixel + cfg.feature_weight * loss_feature, \
        {"pixel": loss_pixel, "feature": loss_feature}


def inversion_error(vgg, output: torch.Tensor, photos: torch.Tensor, targets: dict, amp: str):
    """Pixel MSE of decoded photos against the photos, and their feature error at INVERT_TAPS
    against `targets` (the photos' own features). Each tap's error is relative to its features'
    mean square, as their scales differ by orders of magnitude on the Caffe 0-255 encoder."""
    with autocast(output.device, amp):
        feats = vgg(output, INVERT_TAPS)
    pixel = F.mse_loss(output.float(), photos)
    feature = sum(F.mse_loss(feats[k].float(), targets[k].float()) / targets[k].float().pow(2).mean()
                  for k in INVERT_TAPS)
    return pixel, feature


@torch.no_grad()
def write_samples(vgg, decoder: Decoder, photos: list[np.ndarray], styles: list[np.ndarray], path: Path,
                  device: torch.device) -> float:
    """A contact sheet, in FP32, decoded as the product's graph does (with adain.MARGIN): a row per
    sample photo: the photo, its reconstruction (the photo as its own style: how well the decoder
    inverts the encoder), then its output for each sample style.
    Returns the reconstructions' median PSNR (dB) against the photos."""
    as_batch = lambda images: torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().to(device) / 255.0
    content = content_features(vgg, as_batch(photos))
    style_mean, style_std = mean_std(vgg(as_batch(styles), ["relu4_1"])["relu4_1"])
    as_images = lambda features: (without_margin(decoder(features)).clamp(0, 1) * 255).round().byte() \
        .permute(0, 2, 3, 1).cpu().numpy()
    reconstructions = as_images(content)
    rows = [[photo, image] for photo, image in zip(photos, reconstructions)]
    for mean, std in zip(style_mean, style_std):
        for row, image in zip(rows, as_images(adain(content, mean[None], std[None]))):
            row.append(image)
    path.parent.mkdir(parents=True, exist_ok=True)
    blank = np.zeros_like(photos[0])
    contact_sheet([[blank, blank, *styles], *rows], path,
                  labels=["styles", *[f"photo {i + 1}" for i in range(len(photos))]],
                  column_titles=[path.stem, "reconstruction", *[f"style {i + 1}" for i in range(len(styles))]])
    return float(np.median([psnr(photo, image) for photo, image in zip(photos, reconstructions)]))

