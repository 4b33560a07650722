"""The graphs every backend runs (DESIGN.md, graph contract): uint8 N x H x W x 3 RGB in and out.

Casting, layout, normalisation, clamping and rounding happen inside, so a host only moves bytes,
and the same modules are what the export stage traces.
"""
from __future__ import annotations

import torch
from torch import nn

from .adain import Decoder, adain, mean_std
from .transformer_net import TransformerNet
from .vgg import VGGFeatures


def from_uint8(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float N x 3 x H x W in [0, 1]."""
    return images.permute(0, 3, 1, 2).to(dtype) / 255.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float N x 3 x H x W in [0, 1] -> uint8 N x H x W x 3, rounded."""
    return (x.float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1)


class StyleEncoder(nn.Module):
    """images -> per-channel mean and std at relu4_1 (N x 512 each, FP32)."""

    def __init__(self, encoder: VGGFeatures):
        super().__init__()
        self.encoder = encoder

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = next(self.parameters()).dtype
        feat = self.encoder(from_uint8(images, dtype), ["relu4_1"])["relu4_1"]
        mean, std = mean_std(feat)
        return mean.flatten(1), std.flatten(1)


class AdaINStylizer(nn.Module):
    """images, style mean, style std (1 x 512 or N x 512), alpha (scalar) -> stylised images."""

    def __init__(self, encoder: VGGFeatures, decoder: Decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, images, style_mean, style_std, alpha):
        dtype = next(self.parameters()).dtype
        content = self.encoder(from_uint8(images, dtype), ["relu4_1"])["relu4_1"]
        target = adain(content, style_mean[:, :, None, None], style_std[:, :, None, None])
        alpha = alpha.to(dtype)
        return to_uint8(self.decoder(alpha * target + (1 - alpha) * content))


class TransformerStylizer(nn.Module):
    """images -> stylised images, through one per-style TransformerNet."""

    def __init__(self, net: TransformerNet):
        super().__init__()
        self.net = net

    def forward(self, images):
        dtype = next(self.parameters()).dtype
        return to_uint8(self.net(from_uint8(images, dtype)))
