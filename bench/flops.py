"""FLOPs per image, counted from the layers: every convolution (2 * Cin/groups * k * k per output
value); elementwise work is left out, as it is a few percent of these networks.

Counted on the `meta` device, so no arithmetic is done: only output shapes are needed."""
from __future__ import annotations

import copy

import os

import torch
from torch import nn


def conv_flops(module: nn.Module, *inputs, **named) -> int:
    """FLOPs of one forward pass of `module` on these inputs (tensors on any device are moved to meta)."""
    total = 0

    def count(layer: nn.Conv2d, _, output: torch.Tensor):
        nonlocal total
        kernel = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
        total += 2 * kernel * output.numel()

    meta = copy.deepcopy(module).to("meta")
    hooks = [m.register_forward_hook(count) for m in meta.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            meta(*(on_meta(t) for t in inputs), **{k: on_meta(v) for k, v in named.items()})
    finally:
        for hook in hooks:
            hook.remove()
    return total


def on_meta(value):
    return value.to("meta") if isinstance(value, torch.Tensor) else value


def gemm_peak(device: str = "cpu", seconds: float = 3.0, dtype=torch.float32) -> float:
    """FLOP/s of the fastest of repeated large matrix products on all cores: the machine's
    practical compute limit. The fastest run, not the mean, since anything else running on the
    machine only slows some runs down (a mean over 2 s read 129 GFLOP/s on a machine where
    onnxruntime's convolutions reached 147)."""
    import time

    n = 4096 if device == "cpu" else 8192
    threads = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or threads)
    try:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        a @ b  # warm-up
        fastest, start = float("inf"), time.perf_counter()
        while time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            a @ b
            if device != "cpu":
                torch.cuda.synchronize()
            fastest = min(fastest, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return 2 * n ** 3 / fastest
