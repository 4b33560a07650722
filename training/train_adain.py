"""Train the AdaIN decoder (Huang & Belongie 2017), top to bottom.

Loss: content = MSE(relu4_1 of the output, AdaIN target t); style = distance of channel mean and
std at relu1_1, relu2_1, relu3_1, relu4_1 between output and style image. Adam with the paper's
decay lr / (1 + decay * step). Checkpoints are resumable exactly: batches are a function of
(seed, step) and all RNG state is saved.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from nst_fast.adain import Decoder, adain, mean_std
from nst_fast.losses import mean_std_loss
from nst_fast.models import save_model
from nst_fast.weights import vgg_weights
from training.config import AdaINConfig
from training.data import ImageFolder
from training.loop import Prefetch, Run, adam, prepare

STYLE_TAPS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]


def train(cfg: AdaINConfig, resume: bool = True) -> Path:
    out = Path(cfg.out)
    device = prepare(cfg)

    weights = vgg_weights(cfg.vgg)
    vgg = weights.build("relu4_1").to(device)
    decoder = Decoder().to(device)
    optimizer, scheduler = adam(decoder.parameters(), cfg.lr, cfg.lr_decay)

    contents = ImageFolder(cfg.content, cfg.crop)
    styles = ImageFolder(cfg.style, cfg.crop)
    load = lambda step: (contents.batch(cfg.batch_size, cfg.seed, step), styles.batch(cfg.batch_size, cfg.seed, step))
    with Run(out, cfg, decoder, optimizer, scheduler, resume=resume, desc="adain") as run, \
            Prefetch(load, run.start, device) as batches:
        for step in run.steps():
            t0 = time.perf_counter()
            content, style = batches.take(step)

            with torch.no_grad():
                content_feat = vgg(content, ["relu4_1"])["relu4_1"]
                style_feats = vgg(style, STYLE_TAPS)
                target = adain(content_feat, *mean_std(style_feats["relu4_1"]))
            output = decoder(target)
            output_feats = vgg(output, STYLE_TAPS)
            loss_content = F.mse_loss(output_feats["relu4_1"], target)
            loss_style = mean_std_loss(output_feats, style_feats)
            loss = cfg.content_weight * loss_content + cfg.style_weight * loss_style

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            run.record(step + 1, t0, cfg.batch_size, loss=loss, content=loss_content, style=loss_style)

    final = out / "adain_decoder.safetensors"
    save_model(final, decoder, {"method": "adain", "encoder_id": weights.encoder_id, "steps": run.done,
                                "recipe": asdict(cfg)})
    return final
