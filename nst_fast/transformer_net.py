"""The per-style feed-forward network of Johnson et al. (2016), with the instance norm of
Ulyanov et al., as in pytorch/examples' fast_neural_style. Input and output are RGB in [0, 1];
the output is bounded by a sigmoid (an unbounded output trained into dark, blotchy images)."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class InstanceNorm(nn.InstanceNorm2d):
    """Instance norm with its statistics in FP32: squares of activations overflow half precision."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normalized = F.instance_norm(x.float(), eps=self.eps).to(x.dtype)
        return normalized * self.weight[:, None, None] + self.bias[:, None, None]


class ConvLayer(nn.Sequential):
    """Optional nearest upsampling, reflection padding and a convolution.

    `centered` (set by `centered_for_fp16`) is for a convolution followed by instance norm, which
    removes any per-channel constant: subtracting the input's per-channel mean and leaving out the
    bias then change nothing in exact arithmetic, but keep the outputs near zero, where FP16
    storage has the precision that the norm's division amplifies."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, upsample: int = 1,
                 normed: bool = False):
        layers = [nn.Upsample(scale_factor=upsample, mode="nearest")] if upsample > 1 else []
        layers += [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(in_ch, out_ch, kernel, stride)]
        super().__init__(*layers)
        self.normed, self.centered = normed, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.centered:
            return super().forward(x)
        x = x - x.float().mean((2, 3), keepdim=True).to(x.dtype)
        *resample, conv = self
        for layer in resample:
            x = layer(x)
        return conv._conv_forward(x, conv.weight, None)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3, normed=True), InstanceNorm(channels, affine=True), nn.ReLU(),
            ConvLayer(channels, channels, 3, normed=True), InstanceNorm(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def conv_norm_relu(in_ch: int, out_ch: int, kernel: int, stride: int = 1, upsample: int = 1) -> list[nn.Module]:
    return [ConvLayer(in_ch, out_ch, kernel, stride, upsample, normed=True), InstanceNorm(out_ch, affine=True), nn.ReLU()]


class TransformerNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            *conv_norm_relu(3, 32, 9),
            *conv_norm_relu(32, 64, 3, stride=2),
            *conv_norm_relu(64, 128, 3, stride=2),
            *[ResidualBlock(128) for _ in range(5)],
            *conv_norm_relu(128, 64, 3, upsample=2),
            *conv_norm_relu(64, 32, 3, upsample=2),
            ConvLayer(32, 3, 9),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.layers(x))


def centered_for_fp16(module: nn.Module) -> nn.Module:
    """A copy of `module` whose normed convolutions are centred (ConvLayer), for FP16 graphs and
    engines: under FP16 storage of every activation (TensorRT), flat or saturated inputs lost up to
    16 dB without it (The Great Wave: 35.8 dB, centred 52 dB). FP32 and bf16 graphs stay plain:
    OpenVINO's bf16 did no better with the extra mean and subtraction (24-29 dB on 1-px patterns)."""
    module = copy.deepcopy(module)
    for layer in module.modules():
        if isinstance(layer, ConvLayer):
            layer.centered = layer.normed
    return module
