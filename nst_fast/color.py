"""Colour preservation: keep the content photo's colours while taking the style's texture."""
from __future__ import annotations

import numpy as np
import torch


# An image's colours as RGB mean (3,) and covariance (3 x 3), in [0, 1] units, float64.
ColorMoments = tuple[np.ndarray, np.ndarray]


def color_moments(pixels: np.ndarray, weights: np.ndarray | None = None) -> ColorMoments:
    """The RGB mean and covariance of uint8 ... x 3 pixels, each weighted by `weights` (same
    leading shape) where given, e.g. a mask's region."""
    px = pixels.reshape(-1, 3).astype(np.float64) / 255
    w = np.ones(len(px)) if weights is None else weights.reshape(-1).astype(np.float64)
    w = w / max(w.sum(), 1e-12)
    mean = w @ px
    centred = px - mean
    return mean, (centred * w[:, None]).T @ centred


def mix_moments(parts: list[ColorMoments], weights: list[float] | None = None) -> ColorMoments:
    """The moments of a mixture of colour distributions (styles mixed by `weights`)."""
    w = np.full(len(parts), 1 / len(parts)) if weights is None else np.asarray(weights, np.float64) / sum(weights)
    mean = sum(wi * m for wi, (m, _) in zip(w, parts))
    second = sum(wi * (c + np.outer(m, m)) for wi, (m, c) in zip(w, parts))
    return mean, second - np.outer(mean, mean)


def color_transfer(source: ColorMoments, target: ColorMoments) -> tuple[np.ndarray, np.ndarray]:
    """(A, b) such that A x + b has `target`'s mean and covariance for x distributed as `source`:
    the linear colour transfer of Gatys et al. 2016 (the AdaIN paper's section 7.2)."""
    def power(cov, p):
        vals, vecs = np.linalg.eigh(cov + 1e-5 * np.eye(3))
        return vecs @ np.diag(vals.clip(1e-8) ** p) @ vecs.T

    a = power(target[1], 0.5) @ power(source[1], -0.5)
    return a, target[0] - a @ source[0]


def apply_transfer(pixels: np.ndarray, transfer: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """uint8 ... x 3 pixels recoloured by `transfer`: float32 in [0, 255], not rounded."""
    a, b = transfer
    out = (pixels.astype(np.float32) / 255) @ a.T.astype(np.float32) + b.astype(np.float32)
    return np.clip(out * 255, 0, 255)


def match_color(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Recolour `source` (N x 3 x H x W, [0, 1]) so its RGB mean and covariance equal `reference`'s:
    applied to the style image with the content as reference, before its statistics are taken."""
    def pixels(img):
        return (img.permute(0, 2, 3, 1).double().cpu().numpy() * 255)

    transfer = color_transfer(color_moments(pixels(source)), color_moments(pixels(reference)))
    a, b = (torch.from_numpy(t) for t in transfer)
    px = source.permute(0, 2, 3, 1).double().cpu()
    out = (px @ a.T + b).clamp(0, 1)
    return out.permute(0, 3, 1, 2).to(source.dtype).to(source.device)


# ITU-R BT.601 RGB -> YIQ; Y is luminance, I and Q carry the colour.
_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=np.float32)


def keep_luminance(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The stylised image's luminance with the content's chrominance (Gatys et al. 2016, 'luminance-only
    transfer'), for styles known only by their statistics and for transformer nets. uint8 N x H x W x 3."""
    y = stylized.astype(np.float32) @ _YIQ[0]
    iq = content.astype(np.float32) @ _YIQ[1:].T
    yiq = np.concatenate([y[..., None], iq], axis=-1)
    rgb = yiq @ np.linalg.inv(_YIQ).T
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
