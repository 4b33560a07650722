"""Prove that an exported graph computes what its torch module computes: real images, many shapes.

The reference is always the torch module in FP32. An FP32 graph must agree within one level on
>= 99.9 % of pixels; an FP16 graph (or OpenVINO in BF16) must reach PSNR >= 40 dB and an INT8
graph >= 30 dB, and hold no NaN or inf (its `finite` output). Shapes span the dynamic range with odd aspect ratios, since dynamic-shape engines have
been seen right at one width and wrong at another.

onnxruntime's CPU provider has no FP16 convolutions on x86: it casts FP16 regions of a graph to
FP32 and back, so it proves the FP16 graph and its FP16 weights, not FP16 arithmetic. The FP16
*storage* of every activation, where an overflow would show, is checked on the torch module with
FP16 weights and every layer output rounded to FP16 (`fp16_storage`): torch's own FP16 kernels on
the CPU take about 6x (VGG) to 60x (9x9 convolutions) the FP32 time.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from nst_fast.images import image_files, load_image
from nst_fast.metrics import psnr
from nst_fast.transformer_net import centered_for_fp16

# (H, W): multiples of 8 from the networks' minimum to 1024, square, wide, tall and very thin.
SIZES = [(40, 64), (136, 64), (200, 328), (512, 512), (96, 1024)]  # the CLI's default (its --sizes help)
QUICK_SIZES = [(64, 96), (200, 136)]
UHD = (2160, 3840)  # 4K: AdaIN statistics over 8 M pixels
MIN_WITHIN_ONE = 0.999
MIN_PSNR = {"fp16": 40.0, "bf16": 40.0, "int8": 30.0}  # reduced precisions; FP32 must be within one level

Feeds = Callable[[np.ndarray], dict[str, np.ndarray]]


@dataclass
class Check:
    graph: str
    precision: str
    runtime: str  # what ran the candidate: onnxruntime, or fp16-storage (see fp16_storage)
    image: str
    height: int
    width: int
    within_one: float  # fraction of uint8 values within one level of the FP32 torch output
    max_diff: int
    psnr: float
    finite: bool
    passed: bool = False

    def line(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return (f"{self.graph} {self.precision} [{self.runtime}] {self.image} {self.height}x{self.width}: "
                f"{100 * self.within_one:.3f} % within 1, max diff {self.max_diff}, "
                f"PSNR {self.psnr:.1f} dB, finite {self.finite}: {verdict}")


def compare(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, int, float]:
    """(fraction within one level, max difference, PSNR in dB) of two uint8 arrays."""
    diff = np.abs(reference.astype(np.int16) - candidate.astype(np.int16))
    return float(np.mean(diff <= 1)), int(diff.max()), psnr(reference, candidate)


def judge(check: Check) -> Check:
    if check.precision == "fp32":
        check.passed = check.finite and check.within_one >= MIN_WITHIN_ONE
    else:
        check.passed = check.finite and check.psnr >= MIN_PSNR[check.precision]
    return check


def fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale to cover height x width, then centre-crop: a real photo at any shape."""
    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    size = (max(width, round(w * scale)), max(height, round(h * scale)))
    im = Image.fromarray(image).resize(size, Image.LANCZOS)
    left, top = (im.width - width) // 2, (im.height - height) // 2
    return np.array(im.crop((left, top, left + width, top + height)))


def extreme_images(size: int = 256) -> list[tuple[str, np.ndarray]]:
    """Inputs that push activations to their extremes: saturated colour fields and 1-pixel
    black-and-white detail (strongest VGG responses), and noise."""
    primaries = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0],
                          [0, 255, 255], [255, 0, 255], [255, 255, 255], [0, 0, 0]], np.uint8)
    bands = np.repeat(primaries, -(-size // len(primaries)), axis=0)[:size]
    saturated = np.broadcast_to(bands[:, None], (size, size, 3)).copy()
    yy, xx = np.mgrid[:size, :size]
    checker = ((yy + xx) % 2 * 255).astype(np.uint8)
    stripes = ((xx // 2) % 2 * 255).astype(np.uint8)
    contrast = np.stack([checker, stripes, 255 - checker], axis=-1)
    noise = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return [("saturated", saturated), ("high_contrast", contrast), ("noise", noise)]


def folder_images(folder: str | Path | None, limit: int | None = None, max_size: int = 1024) -> list[tuple[str, np.ndarray]]:
    """Real photos from `folder` (sorted, at most `limit`), or none."""
    if folder is None:
        return []
    files = image_files(folder)[:limit]
    return [(p.name, load_image(p, max_size)) for p in files]


def torch_outputs(module: torch.nn.Module, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    with torch.inference_mode():
        stylized, finite = module(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    return stylized.numpy(), finite.numpy()


def onnx_checks(graph: str, precision: str, reference: torch.nn.Module, session, feeds: Feeds,
                images: list[tuple[str, np.ndarray]], sizes: list[tuple[int, int]], progress=None,
                runtime: str = "onnxruntime") -> list[Check]:
    """Run every image at every size through `session` (onnxruntime's, or pipeline.RunnerSession) and
    the FP32 torch module."""
    checks = []
    for name, image in images:
        for height, width in sizes:
            batch = fit(image, height, width)[None]
            inputs = feeds(batch)
            expected, _ = torch_outputs(reference, inputs)
            stylized, finite = session.run(["stylized", "finite"], inputs)
            checks.append(judge(Check(graph, precision, runtime, name, height, width,
                                      *compare(expected, stylized), bool(finite.all()))))
            if progress:
                progress(checks[-1])
    return checks


def fp16_storage(module: torch.nn.Module) -> torch.nn.Module:
    """`module` with FP16 weights and every layer's output rounded to FP16 (overflow becomes inf),
    computing in FP32 in between, as FP16 kernels with FP32 accumulation do. Statistics computed
    inside a layer on `.float()` copies stay FP32, as in the exported graph."""
    emulated = centered_for_fp16(module).float()  # as the FP16 graphs are exported
    for p in emulated.parameters():
        p.data = p.data.half().float()
    for layer in emulated.modules():
        if not any(layer.children()):
            layer.register_forward_hook(lambda _, __, out: out.half().float())
    return emulated


def half_storage_checks(graph: str, reference: torch.nn.Module, feeds: Feeds, images: list[tuple[str, np.ndarray]],
                        sizes: list[tuple[int, int]], progress=None) -> list[Check]:
    """The module with FP16 storage (`fp16_storage`) against itself in FP32."""
    half = fp16_storage(reference)
    checks = []
    for name, image in images:
        for size in sizes:
            inputs = feeds(fit(image, *size)[None])
            expected, _ = torch_outputs(reference, inputs)
            stylized, finite = torch_outputs(half, inputs)
            checks.append(judge(Check(graph, "fp16", "fp16-storage", name, *size, *compare(expected, stylized),
                                      bool(finite.all()))))
            if progress:
                progress(checks[-1])
    return checks


def summary(checks: list) -> dict:
    images = [c for c in checks if isinstance(c, Check)]
    values = [c.psnr for c in images]
    return {
        "passed": bool(checks) and all(c.passed for c in checks),
        "count": len(checks),
        "min_psnr": float(min(values)) if values else None,
        "median_psnr": float(np.median(values)) if values else None,
        "min_within_one": float(min(c.within_one for c in images)) if images else None,
        "checks": [asdict(c) for c in checks],
    }


@dataclass
class StatsCheck:
    """The style encoder's outputs (per-channel mean and std) against FP32 torch."""

    graph: str
    precision: str
    image: str
    height: int
    width: int
    rel_error: float  # max |difference| / max |reference|, over mean and std
    finite: bool
    passed: bool = False

    def line(self) -> str:
        return (f"{self.graph} {self.precision} [onnxruntime] {self.image} {self.height}x{self.width}: "
                f"relative error {self.rel_error:.2e}, finite {self.finite}: {'ok' if self.passed else 'FAILED'}")


MAX_STATS_ERROR = {"fp32": 1e-3, "fp16": 2e-2}


def check_line(check: dict) -> str:
    """The line of a check as stored in a manifest (a dict of Check or StatsCheck)."""
    return (StatsCheck if "rel_error" in check else Check)(**check).line()


def statistics_checks(precision: str, reference: torch.nn.Module, session, images, sizes, progress=None) -> list[StatsCheck]:
    checks = []
    for name, image in images:
        for height, width in sizes:
            batch = fit(image, height, width)[None]
            with torch.inference_mode():
                expected = [t.numpy() for t in reference(torch.from_numpy(batch))]
            got = session.run(["mean", "std"], {"images": batch})
            finite = all(np.isfinite(g).all() for g in got)
            error = max(float(np.abs(g - e).max() / max(np.abs(e).max(), 1e-12)) for g, e in zip(got, expected))
            check = StatsCheck("style_encoder", precision, name, height, width, error, finite)
            check.passed = finite and error <= MAX_STATS_ERROR[precision]
            checks.append(check)
            if progress:
                progress(check)
    return checks
