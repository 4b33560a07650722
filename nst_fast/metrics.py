"""Image comparison shared by training, export validation and evaluation."""
from __future__ import annotations

import numpy as np


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    """PSNR (dB) of two uint8 images of one shape; inf where they are equal."""
    mse = np.mean((reference.astype(np.float64) - image.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))
