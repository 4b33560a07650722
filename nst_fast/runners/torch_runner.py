"""PyTorch backend: eager modules on the CPU or CUDA, FP16 on CUDA when asked."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..errors import NSTError
from .base import Runner


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise NSTError(f"--device {device}: this torch build sees no CUDA device (torch {torch.__version__}); "
                       "use --device cpu or install a CUDA build of torch")
    return torch.device(device)


class TorchRunner(Runner):
    """Runs a graph-contract module (uint8 NHWC in and out) with fixed extra inputs."""

    name = "torch"

    def __init__(self, module: torch.nn.Module, device: str = "auto", half: bool = False,
                 extra_inputs: Callable[[torch.Tensor], tuple] | None = None):
        self.module, self.half = module, half
        self.device = resolve_device(device)
        # extra_inputs(images) -> the module's inputs after `images` (AdaIN: style mean, std, alpha)
        self.extra_inputs = extra_inputs or (lambda images: ())

    def activate(self) -> None:
        dtype = torch.float16 if self.half else torch.float32
        self.module.to(self.device, dtype).eval()

    @torch.inference_mode()
    def infer(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        extra = tuple(t.to(self.device) for t in self.extra_inputs(x))
        return self.module(x, *extra).cpu().numpy()

    def close(self) -> None:
        self.module.to("cpu")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
