"""The graphs every backend runs (DESIGN.md, graph contract): uint8 N x H x W x 3 RGB in and out.

Casting, layout, normalisation, clamping and rounding happen inside, so a host only moves bytes,
and the same modules are what the export stage traces. Besides `stylized`, each stylizer returns
`finite` (bool, one per image): whether its float output held no NaN or inf, which an FP16
overflow would otherwise hide behind a black uint8 image.
"""
from __future__ import annotations

import torch
from torch import nn

from .adain import Decoder, adain, content_features, mean_std, without_margin
from .transformer_net import TransformerNet
from .vgg import VGGFeatures


def from_uint8(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float N x 3 x H x W in [0, 1]."""
    return images.permute(0, 3, 1, 2).to(dtype) / 255.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float N x 3 x H x W in [0, 1] -> uint8 N x H x W x 3, rounded."""
    return (x.float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1)


def graph_outputs(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(stylized uint8 N x H x W x 3, finite bool N) of a float N x 3 x H x W output in [0, 1]."""
    return to_uint8(x), torch.isfinite(x.float()).flatten(1).all(dim=1)


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
    """images, style mean, style std (float32 1 x 512 or N x 512), alpha (float32, shape (1,))
    -> stylized, finite.

    Strength blends the full-strength output with the photo in pixel space, as for a transformer
    network. The paper's blend in feature space (decoding alpha * target + (1 - alpha) * content)
    gives at alpha 0 the decoder's inversion of the photo, not the photo: 15.4 dB against it with
    the bundled decoder, skylines melted. This way alpha 0 is the photo, small strengths stay close
    to it (PSNR rises by 20 log10(1 / alpha) over the full-strength output's), at no extra cost.

    The photo is encoded and decoded with a mirrored margin around it (adain.MARGIN), which keeps
    the decoder from painting a frame along its edges; that costs (1 + 64 / side)^2 of the work
    (1.27x at 512 x 512, 1.13x at 1024)."""

    def __init__(self, encoder: VGGFeatures, decoder: Decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, images, style_mean, style_std, alpha):
        dtype = next(self.parameters()).dtype
        x = from_uint8(images, dtype)
        content = content_features(self.encoder, x)
        target = adain(content, style_mean[:, :, None, None], style_std[:, :, None, None])
        alpha = alpha.to(dtype)
        return graph_outputs(alpha * without_margin(self.decoder(target)) + (1 - alpha) * x)


class TransformerStylizer(nn.Module):
    """images, alpha (float32, shape (1,)) -> stylized, finite, through one per-style TransformerNet.

    A per-style network has no AdaIN step to weaken, so strength blends its output towards the photo."""

    def __init__(self, net: TransformerNet):
        super().__init__()
        self.net = net

    def forward(self, images, alpha):
        dtype = next(self.parameters()).dtype
        x = from_uint8(images, dtype)
        alpha = alpha.to(dtype)
        return graph_outputs(alpha * self.net(x) + (1 - alpha) * x)
