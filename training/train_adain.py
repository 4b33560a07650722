"""Train the AdaIN decoder (Huang & Belongie 2017), top to bottom.

Loss: content = MSE(relu4_1 of the output, AdaIN target t); style = distance of channel mean and
std at relu1_1, relu2_1, relu3_1, relu4_1 between output and style image. Adam with the paper's
decay lr / (1 + decay * step). Checkpoints are resumable exactly: batches are a function of
(seed, step) and all RNG state is saved.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from nst_fast.adain import Decoder, adain, mean_std
from nst_fast.losses import mean_std_loss
from nst_fast.models import save_model
from nst_fast.weights import vgg_weights
from training.config import AdaINConfig
from training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from training.data import ImageFolder

STYLE_TAPS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]


def open_log(path: Path, start: int):
    """The JSONL log for appending, without records past `start` (left by a run killed after its
    last checkpoint), so a resumed run's log has each step once."""
    if path.exists():
        keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= start]
        path.write_text("".join(line + "\n" for line in keep))
    return open(path, "a")


def train(cfg: AdaINConfig, resume: bool = True) -> Path:
    out = Path(cfg.out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)

    weights = vgg_weights(cfg.vgg)
    vgg = weights.build("relu4_1").to(device)
    decoder = Decoder().to(device)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1.0 / (1.0 + cfg.lr_decay * i))

    start = 0
    ckpt = latest_checkpoint(out / "checkpoints") if resume else None
    if ckpt is not None:
        start, _ = load_checkpoint(ckpt, decoder, optimizer, scheduler)
        print(f"resumed from {ckpt} at step {start}")

    contents = ImageFolder(cfg.content, cfg.crop)
    styles = ImageFolder(cfg.style, cfg.crop)
    load = lambda step: (contents.batch(cfg.batch_size, cfg.seed, step), styles.batch(cfg.batch_size, cfg.seed, step))
    prefetch = ThreadPoolExecutor(1)  # decode the next batch while this one trains
    pending = prefetch.submit(load, start)

    log = open_log(out / "log.jsonl", start)
    done = start  # steps whose optimiser update has been applied
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="adain", unit="step")
    try:
        for step in bar:
            t0 = time.perf_counter()
            content, style = (x.to(device) for x in pending.result())
            pending = prefetch.submit(load, step + 1)

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
            done = step + 1

            dt = time.perf_counter() - t0
            record = {"step": step + 1, "loss": loss.item(), "content": loss_content.item(),
                      "style": loss_style.item(), "lr": scheduler.get_last_lr()[0],
                      "images_per_s": cfg.batch_size / dt, "time": time.time()}
            log.write(json.dumps(record) + "\n")
            log.flush()
            bar.set_postfix(content=f"{record['content']:.2f}", style=f"{record['style']:.2f}")
            if done % cfg.checkpoint_every == 0:
                save_checkpoint(out / "checkpoints", done, decoder, optimizer, scheduler, asdict(cfg), cfg.keep)
    finally:  # Ctrl-C or a crash still leaves the last finished step on disk
        if done > start and done % cfg.checkpoint_every:
            save_checkpoint(out / "checkpoints", done, decoder, optimizer, scheduler, asdict(cfg), cfg.keep)
        log.close()
        prefetch.shutdown(wait=False, cancel_futures=True)

    final = out / "adain_decoder.safetensors"
    save_model(final, decoder, {"method": "adain", "encoder_id": weights.encoder_id, "steps": done,
                                "recipe": asdict(cfg)})
    return final
