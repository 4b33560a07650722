"""Stage 4 of bench/gpu_check.sh: what the GPU's reduced precision changes, as `run` computes it.

    python -m bench.gpu_fidelity --photos .gpu/photos --size 512 --device cuda --out OUT

Every bundled network (AdaIN with each bundled transformer's painting as its preset, and each
transformer network) stylises the photos, fitted to size x size, on the torch backend: the
reference on the CPU in FP32, the candidates on --device in FP16 (CUDA graphs, statistics in
FP32 inside) and FP32. Each candidate image is compared with its reference: PSNR, the share of
values within one level, the largest difference. Writes OUT/fidelity.json and OUT/fidelity.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from export.validate import compare, fit
from nst_fast.backends import Backend
from nst_fast.fileio import atomic_path
from nst_fast.graphs import bundled_transformers
from nst_fast.images import image_files, load_image
from nst_fast.methods import adain_runner, transformer_runner


def models(styles: list[str]) -> list[tuple[str, str, object]]:
    """(method, style, runner factory taking a Backend): AdaIN and the transformer network of each style."""
    found = []
    for style in styles:
        found.append(("adain", style, lambda backend, s=style: adain_runner([s], backend=backend)))
        found.append(("transformer", style, lambda backend, s=style: transformer_runner(s, backend=backend)))
    return found


def outputs(make, backend: Backend, photos: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """The runner's output for each photo, and its seconds per photo after the first (warm-up)."""
    with make(backend) as runner:
        results = [runner.infer(photos[0][None])[0]]
        t0 = time.perf_counter()
        results += [runner.infer(photo[None])[0] for photo in photos[1:]]
        per_photo = (time.perf_counter() - t0) / max(1, len(photos) - 1)
    return results, per_photo


def measure(photos: list[np.ndarray], styles: list[str], device: str, precisions: list[str],
            done=lambda rows: None) -> list[dict]:
    """A row per network and precision; `done(rows)` after each network, so a time box that ends the
    run keeps what was measured."""
    rows = []
    for method, style, make in models(styles):
        reference, cpu_seconds = outputs(make, Backend("torch", "cpu", "fp32"), photos)
        for precision in precisions:
            candidate, seconds = outputs(make, Backend("torch", device, precision), photos)
            checks = [compare(r, c) for r, c in zip(reference, candidate)]
            psnrs = [c[2] for c in checks]  # inf where the images are equal: null in the JSON
            rows.append({"method": method, "style": style, "device": device, "precision": precision,
                         "photos": len(photos), "psnr_min_db": finite(min(psnrs)),
                         "psnr_median_db": finite(float(np.median(psnrs))),
                         "within_one_min": min(c[0] for c in checks), "max_diff": max(c[1] for c in checks),
                         "seconds_per_photo": seconds, "cpu_fp32_seconds_per_photo": cpu_seconds})
            print(f"gpu_fidelity {method} {style} {device} {precision}: PSNR min {db(rows[-1]['psnr_min_db'])}, "
                  f"median {db(rows[-1]['psnr_median_db'])}", flush=True)
        done(rows)
    return rows


def finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def db(value: float | None) -> str:
    return "identical" if value is None else f"{value:.1f} dB"


def table(rows: list[dict], size: int) -> str:
    lines = [f"Torch backend on {rows[0]['device']} against torch on the CPU in FP32, {rows[0]['photos']} photos "
             f"fitted to {size}x{size} (one image per call; seconds per photo after a warm-up call).", "",
             "| method | style | precision | PSNR min | PSNR median | within one level (min) | max diff "
             "| s/photo | CPU FP32 s/photo |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['style']} | {r['precision']} | {db(r['psnr_min_db'])} | "
                     f"{db(r['psnr_median_db'])} | {100 * r['within_one_min']:.2f} % | {r['max_diff']} | "
                     f"{r['seconds_per_photo']:.4f} | {r['cpu_fp32_seconds_per_photo']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--limit", type=int, default=6, help="photos used")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precisions", default="fp16,fp32")
    parser.add_argument("--styles", default=",".join(bundled_transformers()), help="comma-separated")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    photos = [fit(load_image(p), args.size, args.size) for p in image_files(args.photos)[: args.limit]]
    if not photos:
        print(f"gpu_fidelity: no photos in {args.photos}", file=sys.stderr)
        return 1
    def write(rows: list[dict]) -> None:
        for name, text in [("fidelity.json", json.dumps(rows, indent=1) + "\n"), ("fidelity.md", table(rows, args.size))]:
            with atomic_path(args.out / name) as tmp:
                tmp.write_text(text)

    measure(photos, args.styles.split(","), args.device, args.precisions.split(","), write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
