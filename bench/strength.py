"""How close AdaIN's output stays to the photo as the style strength (--alpha) falls: PSNR against
the photo, with the bundled decoder, on real photos.

    python -m bench.strength --photos ../shared/data/photos --size 512 --alphas 0,0.25,0.5,1 -o bench/results/x.json
"""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from nst_fast.fileio import atomic_path
from nst_fast.images import image_files, load_image
from nst_fast.methods import adain_runner
from nst_fast.metrics import psnr


@click.command()
@click.option("--photos", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--style", default="starry_night", show_default=True)
@click.option("--size", type=int, default=512, show_default=True, help="Long side of the photos, px.")
@click.option("--limit", type=int, default=6, show_default=True)
@click.option("--alphas", default="0,0.25,0.5,1", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
def main(photos, style, size, limit, alphas, output):
    files = image_files(photos)[:limit]
    images = [load_image(f, size) for f in files]
    rows = []
    for alpha in [float(a) for a in alphas.split(",")]:
        with adain_runner([style], alpha=alpha) as runner:
            values = [psnr(runner.stylize(im), im) for im in images]
        # identical images have an infinite PSNR, which JSON cannot hold: counted apart, listed as None
        rows.append({"alpha": alpha, "identical_to_photo": sum(not np.isfinite(v) for v in values),
                     "median_psnr_db": float(np.median(values)), "min_psnr_db": min(values)})
        rows[-1].update({k: (v if np.isfinite(v) else None) for k, v in rows[-1].items() if k.endswith("_db")})
        click.echo(f"alpha {alpha:g}: PSNR against the photo median {np.median(values):.1f} dB, "
                   f"min {min(values):.1f} dB ({len(images)} photos, {size} px, {style})")
    if output:
        with atomic_path(output) as tmp:
            tmp.write_text(json.dumps({"photos": [f.name for f in files], "style": style, "size": size,
                                       "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
