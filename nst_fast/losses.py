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


def mean_std_loss(feats: dict, target_feats: dict) -> torch.Tensor:
    """AdaIN style loss: distance of per-channel mean and std, summed over taps."""
    total = 0.0
    for k, target in target_feats.items():
        m, s = mean_std(feats[k])
        tm, ts = mean_std(target)
        total = total + F.mse_loss(m, tm) + F.mse_loss(s, ts)
    return total


def total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
