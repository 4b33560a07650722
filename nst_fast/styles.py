"""Styles for AdaIN: a named preset (bundled relu4_1 statistics, a few KB) or any image.

A style's statistics are computed once per run, at a fixed scale (long side STYLE_SIZE), so a
preset and the image it was computed from give the same result.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from .errors import StyleError, WeightsError
from .fileio import atomic_path
from .images import fit_size, load_image

PRESETS = Path(__file__).parent / "assets" / "styles"
STYLE_SIZE = 512


@dataclass
class Style:
    name: str
    mean: torch.Tensor  # 1 x 512, FP32
    std: torch.Tensor  # 1 x 512, FP32
    image: np.ndarray | None = None  # uint8 H x W x 3 at STYLE_SIZE; None for a preset


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.safetensors"))


def fit_style_image(image: np.ndarray) -> np.ndarray:
    """Scale so the long side is STYLE_SIZE (up or down): statistics depend on scale."""
    size = fit_size((image.shape[1], image.shape[0]), STYLE_SIZE)
    return np.array(Image.fromarray(image).resize(size, Image.LANCZOS))


@torch.no_grad()
def image_statistics(style_encoder, image: np.ndarray, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """relu4_1 mean and std (1 x 512 each, FP32, on the CPU) of one uint8 image."""
    batch = torch.from_numpy(np.ascontiguousarray(image))[None].to(device)
    mean, std = style_encoder(batch)
    return mean.float().cpu(), std.float().cpu()


def image_style(name: str, image: np.ndarray, style_encoder, device="cpu") -> Style:
    image = fit_style_image(image)
    return Style(name, *image_statistics(style_encoder, image, device), image=image)


def save_preset(path: Path, style: Style, encoder_id: str, source: str) -> None:
    meta = {"name": style.name, "encoder_id": encoder_id, "source": source, "style_size": str(STYLE_SIZE)}
    with atomic_path(path) as tmp:
        save_file({"mean": style.mean.contiguous(), "std": style.std.contiguous()}, str(tmp), metadata=meta)


def load_preset(path: Path, encoder_id: str) -> Style:
    from .models import check_encoder, read_weights

    state, meta = read_weights(path)
    check_encoder(path, meta, encoder_id)
    if set(state) != {"mean", "std"}:
        raise WeightsError(f"{path}: not a style preset (holds {sorted(state)})")
    return Style(meta.get("name", path.stem), state["mean"], state["std"])


def resolve_style(spec: str | np.ndarray, style_encoder, encoder_id: str, device="cpu") -> Style:
    """`spec` is an image path, a preset name (see `nst-fast info`) or a uint8 H x W x 3 image."""
    if isinstance(spec, np.ndarray):
        return image_style("image", spec, style_encoder, device)
    path = Path(spec)
    if path.is_file():
        return image_style(path.stem, load_image(path), style_encoder, device)
    preset = PRESETS / f"{spec}.safetensors"
    if preset.is_file():
        return load_preset(preset, encoder_id)
    raise StyleError(f"{spec}: no such style image or preset (presets: {', '.join(preset_names()) or 'none'})")
