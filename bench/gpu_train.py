"""Stage 1 of bench/gpu_check.sh: continue the shipped networks on a GPU for a fixed time each.

    python -m bench.gpu_train --pack .gpu --out OUT/training --adain-minutes 2.5 --transformer-minutes 0.6

Each network continues from its shipped weights (`init`) with the recipe recorded in them, the best
one known, changed only where a GPU allows more: the crop side, the batch size, bf16 autocast (the
models and batches are channels_last in the training loops already) and the device; it stops after
its minutes (`minutes`), not at a step count. Training images come from the pack's train.tar, the
VGG weights from its vgg16.safetensors. Per network, OUT/<name>/ holds its FP16 weights, log.jsonl,
sample sheets and loss plot; OUT/training.json has a record of each (or the error that stopped it).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from dataclasses import fields
from pathlib import Path

import numpy as np

from nst_fast.fileio import atomic_path
from nst_fast.graphs import TRANSFORMERS, bundled_transformers
from nst_fast.models import DEFAULT_DECODER, read_weights
from training.config import AdaINConfig, TransformerConfig


def shipped_recipe(cls, weights: Path) -> dict:
    """The recipe recorded in shipped weights, limited to the knobs `cls` still has."""
    _, meta = read_weights(weights)
    recipe = json.loads(meta.get("recipe", "{}"))
    known = {f.name for f in fields(cls)}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in recipe.items() if k in known}


def summarise(out: Path, seconds: float) -> dict:
    """Steps, speed and the first and last losses of a finished run folder."""
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line]
    terms = [k for k in log[0] if k not in ("step", "lr", "images_per_s", "time")]
    mean = lambda records, key: float(np.mean([r[key] for r in records]))  # noqa: E731
    record = {"steps": log[-1]["step"], "seconds": round(seconds, 1),
              "images_per_s_median": round(float(np.median([r["images_per_s"] for r in log[1:] or log])), 1),
              "first_10": {k: mean(log[:10], k) for k in terms}, "last_10": {k: mean(log[-10:], k) for k in terms}}
    if "inversion_db" in log[-1]:
        record["inversion_db_last"] = log[-1]["inversion_db"]
    return record


def jobs(pack: Path, out: Path, common: dict, adain_minutes: float, transformer_minutes: float, styles: list[str]):
    """(name, train function, config) for the AdaIN decoder, then each transformer network."""
    from training import train_adain, train_transformer

    photos = str(pack / "train.tar" / "content")
    if adain_minutes > 0:
        recipe = shipped_recipe(AdaINConfig, DEFAULT_DECODER)
        # the same share of each batch as the photo's own style, at the new batch size
        pairs = round(recipe.get("identity_pairs", 0) * common["batch_size"] / recipe.get("batch_size", 8))
        cfg = AdaINConfig(**{**recipe, **common, "identity_pairs": pairs, "content": photos, "style": str(pack / "train.tar" / "style"),
                             "out": str(out / "adain"), "init": str(DEFAULT_DECODER), "minutes": adain_minutes})
        yield "adain", train_adain.train, cfg
    if transformer_minutes > 0:
        for style in styles:
            shipped = TRANSFORMERS / f"{style}.safetensors"
            recipe = shipped_recipe(TransformerConfig, shipped)
            cfg = TransformerConfig(**{**recipe, **common, "content": photos, "style": str(pack / "styles" / f"{style}.jpg"),
                                       "out": str(out / style), "init": str(shipped), "minutes": transformer_minutes})
            yield style, train_transformer.train, cfg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, default=Path(".gpu"), help="the folder make gpu-pack wrote")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--adain-minutes", type=float, default=2.5)
    parser.add_argument("--transformer-minutes", type=float, default=0.6, help="for each network")
    parser.add_argument("--styles", default=",".join(bundled_transformers()), help="transformer networks, comma-separated")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--amp", default="bf16", choices=["none", "bf16", "fp16"])
    parser.add_argument("--sample-every", type=int, default=500)
    parser.add_argument("--sample-size", type=int, default=256)
    args = parser.parse_args(argv)

    common = {"device": args.device, "crop": args.crop, "batch_size": args.batch_size, "amp": args.amp,
              "vgg": str(args.pack / "vgg16.safetensors"), "threads": None, "steps": 10 ** 7,
              "sample_every": args.sample_every, "sample_size": args.sample_size, "checkpoint_every": 10 ** 6}
    styles = [s for s in args.styles.split(",") if s]
    records, failed = {}, 0
    for name, train, cfg in jobs(args.pack, args.out, common, args.adain_minutes, args.transformer_minutes, styles):
        t0 = time.monotonic()
        try:
            weights = train(cfg, resume=False)
            records[name] = {"weights": str(weights.relative_to(args.out)), **summarise(Path(cfg.out), time.monotonic() - t0)}
        except Exception as e:  # one network's failure must not cost the others their minutes
            traceback.print_exc()
            records[name] = {"error": f"{type(e).__name__}: {e}", "seconds": round(time.monotonic() - t0, 1)}
            failed += 1
        print(f"gpu_train {name}: {json.dumps(records[name])}", flush=True)
        with atomic_path(args.out / "training.json") as tmp:
            tmp.write_text(json.dumps({"settings": {**common, "styles": styles}, "runs": records}, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
