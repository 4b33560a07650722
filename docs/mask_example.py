"""Two styles on one photo, painted by a mask (the AdaIN paper's Fig. 8), with the Python API.

    .venv/bin/python docs/mask_example.py ../shared/data -o docs/mask_sheet.jpg

The mask is made from the photo itself: white above its skyline, blurred for a soft edge. The sheet shows the photo, the mask, each style alone and the masked result.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

import nst_fast
from nst_fast.images import load_image
from nst_fast.sheet import contact_sheet


def sky_mask(photo: np.ndarray) -> Image.Image:
    """White above the skyline, with a soft edge: in each column, the sky (bright, not warmer than
    blue: clouds count) reaches down to the first pixel that is not sky-like."""
    r, g, b = (photo[..., i].astype(np.float32) for i in range(3))
    sky_like = (b >= r - 8) & (b > 140)
    sky_like = np.asarray(Image.fromarray(sky_like.astype(np.uint8) * 255).filter(ImageFilter.MedianFilter(5))) > 127
    rows = np.arange(photo.shape[0])[:, None]
    skyline = np.argmin(sky_like, axis=0)  # the first row that is not sky, per column
    skyline[sky_like.all(axis=0)] = photo.shape[0]
    mask = Image.fromarray(((rows < skyline[None]) * 255).astype(np.uint8))
    return mask.filter(ImageFilter.GaussianBlur(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the shared data folder (photos/, styles/)")
    parser.add_argument("--photo", default="chicago")
    parser.add_argument("--styles", nargs=2, default=["starry_night", "the_scream"], help="sky style, city style")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("-o", "--output", type=Path, default=Path("mask_sheet.jpg"))
    args = parser.parse_args()

    photo = load_image(args.data / "photos" / f"{args.photo}.jpg", args.size)
    styles = [args.data / "styles" / f"{name}.jpg" for name in args.styles]
    mask = sky_mask(photo)
    with nst_fast.Stylizer(styles, masks=[mask]) as painted:
        print(f"backend: {painted.backend}")
        result = painted.stylize(photo)
    alone = [nst_fast.stylize(photo, style) for style in styles]
    row = [photo, np.asarray(mask.convert("RGB")), *(load_image(s, 256) for s in styles), *alone, result]
    titles = ["photo", "mask (white: 1st style)", *args.styles, f"{args.styles[0]} alone", f"{args.styles[1]} alone",
              "masked: both"]
    contact_sheet([row], args.output, column_titles=titles, cell=256)
    print(args.output)


if __name__ == "__main__":
    main()
