"""AdaIN (Huang & Belongie, 2017): VGG encoder to relu4_1, adaptive instance norm, mirror decoder.

Statistics are per-channel mean and standard deviation over H x W, always in FP32: the squares
of VGG activations overflow half precision.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-5


def mean_std(feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of N x C x H x W features, in FP32, shaped N x C x 1 x 1."""
    feat = feat.float()
    mean = feat.mean(dim=(2, 3), keepdim=True)
    var = feat.var(dim=(2, 3), keepdim=True, unbiased=False)
    return mean, (var + EPS).sqrt()


def adain(content: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor) -> torch.Tensor:
    """Give `content` features the style's channel statistics."""
    mean, std = mean_std(content)
    normalized = (content.float() - mean) / std
    return (normalized * style_std + style_mean).to(content.dtype)


# Pixels of mirrored image put around each photo before it is encoded (a multiple of 8: 4 cells
# of relu4_1). VGG's zero padding marks the image's edge in the features, and the decoder paints
# that mark as a frame a few pixels wide around every output; with mirrored context the edge
# looks like any other place. 24 px still left a dark line along some edges, 32 none (eval sheet).
MARGIN = 32


def content_features(encoder, x: torch.Tensor) -> torch.Tensor:
    """relu4_1 features of photos x (N x 3 x H x W in [0, 1]; H, W > MARGIN) with MARGIN px of
    their mirror image around them. AdaIN takes its statistics over all of them: over the
    photo's own cells alone, the margin's values are unbounded after normalising (a channel flat
    inside and not in the margin) and overflowed FP16. Decoding the whole map and cutting MARGIN
    px off each side gives the photo back at its own size."""
    return encoder(with_margin(x), ["relu4_1"])["relu4_1"]


def with_margin(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (MARGIN,) * 4, mode="reflect")


def without_margin(x: torch.Tensor) -> torch.Tensor:
    return x[:, :, MARGIN:-MARGIN, MARGIN:-MARGIN]


def mix_statistics(stats: list[tuple[torch.Tensor, torch.Tensor]], weights: list[float] | None = None):
    """Weighted mix of several styles' (mean, std).

    AdaIN is affine in the style statistics, so AdaIN with the mixed statistics equals the
    paper's weighted sum of the AdaIN outputs for each style.
    """
    w = torch.tensor(weights if weights is not None else [1.0] * len(stats), dtype=torch.float32)
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"style weights must be non-negative and not all zero, got {w.tolist()}")
    w = w / w.sum()
    mean = sum(wi * m for wi, (m, _) in zip(w, stats))
    std = sum(wi * s for wi, (_, s) in zip(w, stats))
    return mean, std


@dataclass
class Moments:
    """Weighted sums over positions, per channel, in FP64: sum of w, of w x and of w x^2. The sums
    of several feature maps (the tiles of an image) add up, and give the statistics of them taken
    together; weights that are a mask give a region's statistics."""

    weight: torch.Tensor  # ... x 1
    first: torch.Tensor  # ... x C
    second: torch.Tensor  # ... x C

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.weight + other.weight, self.first + other.first, self.second + other.second)

    def statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) in FP32, std with EPS as mean_std() has it."""
        weight = self.weight.clamp_min(1e-12)
        mean = self.first / weight
        var = (self.second / weight - mean ** 2).clamp_min(0)
        return mean.float(), (var + EPS).sqrt().float()


def moments(feat: torch.Tensor, weights: torch.Tensor) -> Moments:
    """Moments of N x C x H x W features under N x K x H x W weights: shaped N x K x (1 or C)."""
    f, w = feat.double(), weights.double()
    return Moments(w.sum(dim=(2, 3))[..., None], torch.einsum("nkhw,nchw->nkc", w, f),
                   torch.einsum("nkhw,nchw->nkc", w, f * f))


def statistics_for_tile(style_mean, style_std, tile_mean, tile_std, image_mean, image_std):
    """Style statistics that make adain() of a tile, which normalises the tile by its own
    statistics, normalise it by the whole image's instead.

    adain() is affine per channel: (c - m_tile) / s_tile * std' + mean' equals
    (c - m_image) / s_image * style_std + style_mean for std' = style_std * s_tile / s_image and
    mean' = style_mean + style_std * (m_tile - m_image) / s_image. So every tile gets the same
    mapping, with graphs that take only style statistics.
    """
    scale = style_std / image_std
    return style_mean + scale * (tile_mean - image_mean), scale * tile_std


def conv(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(in_ch, out_ch, 3), nn.ReLU())


# How the decoder doubles its resolution, three times: a weights file records which (files
# without the record were trained with nearest). Nearest copies each relu4_1 cell into an 8 x 8
# block, and the bundled decoder left that as a grid: on 6 eval photos at 256 px, 11 % of the
# styled outputs' fine detail repeated every 8 px; the same weights with bilinear, 4 % (the
# photos' own floor) and inversion 15.8 -> 15.9 dB (bench.judges.grid_score).
UPSAMPLING = ("nearest", "bilinear")


class Decoder(nn.Module):
    """Mirror of VGG16 up to relu4_1: upsampling then convolution (no transposed convolutions,
    which leave checkerboard artefacts)."""

    def __init__(self, upsample: str = "bilinear"):
        super().__init__()
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {upsample!r}")
        self.upsample = upsample
        up = nn.Upsample(scale_factor=2, mode=upsample)
        self.layers = nn.Sequential(
            conv(512, 256), up,
            conv(256, 256), conv(256, 256), conv(256, 128), up,
            conv(128, 128), conv(128, 64), up,
            conv(64, 64),
            nn.ReflectionPad2d(1), nn.Conv2d(64, 3, 3),
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.layers(t)
