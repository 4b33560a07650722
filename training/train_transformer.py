"""Train a per-style transformer network (Johnson et al. 2016, instance norm), top to bottom.

Loss: content = MSE(content_tap features of the output, of the photo); style = MSE between Gram
matrices (/ C·H·W) of the output and of the style image at style_taps, each relative to the mean
square of the style's Gram there, summed over the taps; total variation =
mean |dx| + |dy| of the output. Adam with lr / (1 + decay * step). Checkpoints are resumable
exactly: batches are a function of (seed, step) and all RNG state is saved. The same loop runs on
CPU and CUDA; on CUDA with channels_last, pinned batches and optional bf16/fp16 autocast.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nst_fast.errors import NSTError
from nst_fast.losses import gram, gram_loss, mean_std_loss, total_variation
from nst_fast.models import load_transformer, save_model
from nst_fast.sheet import contact_sheet
from nst_fast.transformer_net import InstanceNorm, TransformerNet
from nst_fast.vgg import tap_names
from nst_fast.weights import vgg_weights
from training.config import TransformerConfig
from training.data import ImageFolder, image_tensor
from training.loop import LAYOUT, Prefetch, Run, adam, autocast, grad_scaler, prepare
from training.plots import plot_run

DROPLET_ENERGY = 9.0  # a pixel's channel-mean squared z-score above this counts (1 on average)
FIRST_RESIDUAL = 9  # index in TransformerNet.layers: the droplets' spike builds up from here on

# A resumed run must train the same style against the same targets as the checkpoint it continues.
FIXED = ("style", "style_size", "content_tap", "style_taps", "style_norm", "vgg")


def train(cfg: TransformerConfig, resume: bool = True) -> Path:
    out = Path(cfg.out)
    device = prepare(cfg)
    style_name = Path(cfg.style).stem
    if cfg.style_norm not in ("per_tap", "none"):
        raise NSTError(f"style_norm must be per_tap or none, got {cfg.style_norm!r}")

    weights = vgg_weights(cfg.vgg)
    taps = [cfg.content_tap, *cfg.style_taps]
    vgg = weights.build(deepest(taps, weights.arch)).to(device, memory_format=LAYOUT)
    net = TransformerNet().to(device, memory_format=LAYOUT)
    optimizer, scheduler = adam(net.parameters(), cfg.lr, cfg.lr_decay)
    scaler = grad_scaler(device, cfg.amp)

    style = image_tensor(cfg.style, cfg.style_size).to(device, memory_format=LAYOUT)
    with torch.no_grad():
        with autocast(device, cfg.amp):
            style_feats = vgg(style, cfg.style_taps)
        style_grams = {k: gram(f) for k, f in style_feats.items()}  # outside autocast: FP16 sums overflow
    # Each tap's error relative to the style's own Gram energy: the raw terms span eight orders of
    # magnitude across these taps (relu1_2 ~1e3, relu4_3 ~1e-4), so unweighted, relu1_2 alone
    # would be the style and the deeper taps' strokes and shapes would be lost.
    tap_weights = {k: 1.0 / g.float().pow(2).mean().item() for k, g in style_grams.items()} \
        if cfg.style_norm == "per_tap" else {}

    contents = ImageFolder(cfg.content, cfg.crop)
    photos = contents.samples(cfg.sample_size)
    load = lambda step: (contents.batch(cfg.batch_size, cfg.seed, step),)
    norm_inputs = NormInputs(net.layers[FIRST_RESIDUAL:]) if cfg.droplet_weight else None
    with Run(out, cfg, net, optimizer, scheduler, scaler, resume, f"transformer {style_name}", FIXED) as run, \
            Prefetch(load, run.start, device, LAYOUT) as batches:
        if run.start == 0 and cfg.init:
            initial, _ = load_transformer(cfg.init, weights.encoder_id)
            net.load_state_dict(initial.state_dict())
        for step in run.steps():
            t0 = time.perf_counter()
            (content,) = batches.take(step)

            with autocast(device, cfg.amp):
                with torch.no_grad():
                    target = vgg(content, [cfg.content_tap])[cfg.content_tap]
                output = net(content)
                feats = vgg(output, taps)
            # outside autocast, so the Gram and squared-error sums run in FP32: FP16 would overflow
            loss_content = F.mse_loss(feats[cfg.content_tap].float(), target.float())
            loss_style = gram_loss(feats, style_grams, tap_weights)
            loss_tv = total_variation(output.float())
            loss_droplet = norm_inputs.droplet_loss() if norm_inputs else torch.zeros(())
            loss_stats = mean_std_loss(feats, style_feats, relative=True) \
                if cfg.stats_weight else torch.zeros(())
            loss = (cfg.content_weight * loss_content + cfg.style_weight * loss_style + cfg.tv_weight * loss_tv
                    + cfg.droplet_weight * loss_droplet + cfg.stats_weight * loss_stats)

            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            run.record(step + 1, t0, cfg.batch_size, loss=loss, content=loss_content, style=loss_style, tv=loss_tv,
                       **({"droplet": loss_droplet} if norm_inputs else {}),
                       **({"stats": loss_stats} if cfg.stats_weight else {}))
            if run.last() or run.done % cfg.sample_every == 0:
                write_samples(net, photos, out / "samples" / f"step{run.done:07d}.png", device)

    plot_run(out, loss_terms(asdict(cfg)), f"transformer {style_name}: {run.done} steps")
    final = out / f"{style_name}.safetensors"
    save_model(final, net, {"method": "transformer", "encoder_id": weights.encoder_id, "style": style_name,
                            "steps": run.done, "recipe": asdict(cfg)})
    return final


def loss_terms(recipe: dict) -> tuple[str, ...]:
    """The logged loss terms of a run with this recipe (as a dict, so model cards can ask too)."""
    return ("content", "style", "tv", *(["droplet"] if recipe.get("droplet_weight") else []),
            *(["stats"] if recipe.get("stats_weight") else []))


class NormInputs:
    """Keeps the inputs of the instance norms in `module` from its last forward pass, for the
    droplet penalty. The droplet is a spike, a few pixels wide, in many channels at once that grows
    through the residual blocks: with it in the norm's statistics the network can scale everything
    else (StyleGAN2's analysis). The penalty is on that: a pixel whose squared z-scores, averaged
    over channels, exceed DROPLET_ENERGY."""

    def __init__(self, module: torch.nn.Module):
        self.inputs = []
        for layer in module.modules():
            if isinstance(layer, InstanceNorm):
                layer.register_forward_pre_hook(self.keep)

    def keep(self, _, args):
        if torch.is_grad_enabled():  # a training step's, not the sample sheet's
            self.inputs.append(args[0])

    def droplet_loss(self) -> torch.Tensor:
        losses = []
        for x in self.inputs:
            x = x.float()
            z2 = (x - x.mean((2, 3), keepdim=True)).pow(2) / (x.var((2, 3), keepdim=True, unbiased=False) + 1e-5)
            losses.append(F.relu(z2.mean(1) - DROPLET_ENERGY).mean())
        self.inputs.clear()
        return torch.stack(losses).mean()


def deepest(taps: list[str], arch: str) -> str:
    """The last VGG layer the losses need: the network is cut there."""
    order = tap_names(arch)
    unknown = sorted(set(taps) - set(order))
    if unknown:
        raise NSTError(f"unknown VGG taps {unknown}; {arch} has {', '.join(order)}")
    return max(taps, key=order.index)


@torch.no_grad()
def write_samples(net: TransformerNet, photos: list[np.ndarray], path: Path, device: torch.device) -> None:
    """A contact sheet: each sample photo beside the network's output for it, in FP32."""
    batch = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).float().to(device) / 255.0
    outputs = (net(batch) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet([[photo, output] for photo, output in zip(photos, outputs)], path,
                  column_titles=["photo", path.stem])
