"""Spatial style masks (the AdaIN paper's Fig. 8, and its authors' `-mask` option): with K styles,
K - 1 masks paint them. The white of mask i is style i's; what no mask claims is the last style's;
where masks overlap they share. Grey levels are soft edges: the styles' outputs blend there.

A mask is any image (its grey levels) or an array in [0, 1]; it is resized to each photo, so one
mask serves photos of every size (its aspect ratio is not kept: it is stretched to the photo).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps

from .errors import ImageError

MaskLike = Union[str, os.PathLike, Image.Image, np.ndarray]


def load_mask(mask: MaskLike) -> np.ndarray:
    """float32 H x W in [0, 1] (white 1) from an image file, a PIL image (its grey levels), a uint8
    array (0-255) or a float or bool array (0-1), H x W or H x W x C (channels averaged)."""
    if isinstance(mask, (str, os.PathLike)):
        path = Path(mask)
        try:
            with Image.open(path) as im:
                return _grey(ImageOps.exif_transpose(im))
        except Exception as e:  # Pillow raises many types on bad data
            raise ImageError(f"{path}: cannot read this mask ({type(e).__name__}: {e})") from None
    if isinstance(mask, Image.Image):
        return _grey(mask)
    if not isinstance(mask, np.ndarray) or mask.ndim not in (2, 3) or 0 in mask.shape:
        raise ImageError(f"mask: want an image, a path or an H x W array, not {type(mask).__name__} "
                         f"{getattr(mask, 'shape', '')}")
    plane = mask.astype(np.float32).mean(axis=2) if mask.ndim == 3 else mask.astype(np.float32)
    if mask.dtype == np.uint8:
        plane /= 255
    elif not (np.isfinite(plane).all() and plane.min() >= 0 and plane.max() <= 1):
        raise ImageError(f"mask: a {mask.dtype} array must hold values in [0, 1]")
    return plane


def _grey(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L"), np.float32) / 255


def region_weights(masks: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """float32 h x w x K: the weight of each of K = len(masks) + 1 styles at every pixel of a photo
    of `size` (h, w); they sum to 1."""
    h, w = size
    planes = np.stack([np.asarray(Image.fromarray(m, "F").resize((w, h), Image.BILINEAR)) for m in masks], axis=-1)
    planes = np.clip(planes, 0, 1)
    planes /= np.maximum(planes.sum(axis=-1, keepdims=True), 1)  # overlapping masks share
    return np.concatenate([planes, 1 - planes.sum(axis=-1, keepdims=True)], axis=-1).clip(0, 1)
