"""Losses shared by training and the Gatys baseline, on VGG features."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .adain import mean_std


def gram(feat: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalised by C x H x W, in FP32."""
    n, c, h, w = feat.shape
    f = feat.float().reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def gram_loss(feats: dict, target_grams: dict, weights: dict | None = None) -> torch.Tensor:
    """Sum over the taps of `target_grams` of the MSE between Gram matrices, times weights[tap] (default 1)."""
    weights = weights or {}
    return sum(weights.get(k, 1.0) * F.mse_loss(gram(feats[k]), g.expand(feats[k].shape[0], -1, -1))
               for k, g in target_grams.items())


def mean_std_loss(feats: dict, target_feats: dict, relative: bool = False) -> torch.Tensor:
    """AdaIN style loss: distance of per-channel mean and std, summed over taps. Relative: each
    tap's distance divided by the mean square of the target's means and stds there, so the taps
    count alike (raw, on the Caffe 0-255 encoder relu2_1 outweighs relu4_1 about tenfold)."""
    total = 0.0
    for k, target in target_feats.items():
        m, s = mean_std(feats[k])
        tm, ts = mean_std(target)
        tm, ts = tm.expand_as(m), ts.expand_as(s)
        term = F.mse_loss(m, tm) + F.mse_loss(s, ts)
        total = total + (term / (tm.pow(2).mean() + ts.pow(2).mean()).detach() if relative else term)
    return total


def total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
