"""Colour preservation: keep the content photo's colours while taking the style's texture."""
from __future__ import annotations

import numpy as np
import torch


def match_color(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Recolour `source` (N x 3 x H x W, [0, 1]) so its RGB mean and covariance equal `reference`'s.

    Linear colour transfer of the AdaIN paper (section 7.2, after Gatys et al. 2016): applied to
    the style image with the content as reference, before its statistics are taken.
    """
    def stats(img):
        px = img.permute(1, 0, 2, 3).reshape(3, -1).double()
        return px, px.mean(dim=1, keepdim=True), torch.cov(px) + 1e-5 * torch.eye(3, dtype=px.dtype)

    def sqrtm(m, power):
        vals, vecs = torch.linalg.eigh(m)
        return vecs @ torch.diag(vals.clamp_min(1e-8).pow(power)) @ vecs.T

    _, ref_mean, ref_cov = stats(reference)
    px, mean, cov = stats(source)
    out = sqrtm(ref_cov, 0.5) @ sqrtm(cov, -0.5) @ (px - mean) + ref_mean
    n, _, h, w = source.shape
    return out.reshape(3, n, h, w).permute(1, 0, 2, 3).clamp(0, 1).to(source.dtype)


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
