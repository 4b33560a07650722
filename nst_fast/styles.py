"""Styles for AdaIN: a named preset (relu4_1 statistics, a few KB), a preset file, or any image.

A style's statistics are computed once per run, at a fixed scale (long side STYLE_SIZE), so a
preset and the image it was computed from give the same result. Presets are looked up by name in
the user's presets folder (`nst-fast presets` writes there), then among the bundled ones, which
are never written: they belong to the installed package.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from .color import ColorMoments, color_moments
from .errors import ImageError, NSTError, StyleError, WeightsError
from .fileio import atomic_path, check_writable
from .images import fit_size, image_files, load_image

PRESETS = Path(__file__).parent / "assets" / "styles"  # bundled: read only
PRESET_SUFFIX = ".safetensors"
STYLE_SIZE = 512


@dataclass
class Style:
    name: str
    mean: torch.Tensor  # 1 x 512, FP32
    std: torch.Tensor  # 1 x 512, FP32
    image: np.ndarray | None = None  # uint8 H x W x 3 at STYLE_SIZE; None for a preset
    colors: ColorMoments | None = None  # the painting's RGB mean and covariance (None: an old preset)


def user_presets() -> Path:
    """Where `nst-fast presets` writes and `-s NAME` looks first: $NST_FAST_HOME/styles, else the
    platform's user data folder (~/.local/share/nst-fast/styles on Linux)."""
    home = os.environ.get("NST_FAST_HOME")
    if not home:
        import platformdirs

        home = platformdirs.user_data_dir("nst-fast", appauthor=False)
    return Path(home) / "styles"


def preset_names(folder: Path = PRESETS) -> list[str]:
    return sorted(p.stem for p in folder.glob(f"*{PRESET_SUFFIX}"))


def all_preset_names() -> list[str]:
    return sorted(set(preset_names(user_presets())) | set(preset_names()))


def find_style(spec: str) -> Path:
    """The file a style names: an image or preset file, else a preset by name (the user's first,
    then the bundled ones). Raises StyleError naming the presets there are."""
    path = Path(spec)
    if path.is_file():
        return path
    for folder in (user_presets(), PRESETS):
        preset = folder / f"{spec}{PRESET_SUFFIX}"
        if preset.is_file():
            return preset
    raise StyleError(f"{spec}: no such style image or preset file, nor a preset name "
                     f"(presets: {', '.join(all_preset_names()) or 'none'})")


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
    return Style(name, *image_statistics(style_encoder, image, device), image=image, colors=color_moments(image))


def save_preset(path: Path, style: Style, encoder_id: str, source: str) -> None:
    meta = {"name": style.name, "encoder_id": encoder_id, "source": source, "style_size": str(STYLE_SIZE)}
    with atomic_path(path) as tmp:
        tensors = {"mean": style.mean.contiguous(), "std": style.std.contiguous()}
        if style.colors is not None:
            tensors |= {"color_mean": torch.from_numpy(style.colors[0]), "color_cov": torch.from_numpy(style.colors[1])}
        save_file(tensors, str(tmp), metadata=meta)


def load_preset(path: Path, encoder_id: str) -> Style:
    from .models import check_encoder, read_weights

    state, meta = read_weights(path)
    check_encoder(path, meta, encoder_id)
    # presets made before colour matching hold no colours
    if set(state) not in ({"mean", "std"}, {"mean", "std", "color_mean", "color_cov"}):
        raise WeightsError(f"{path}: not a style preset (holds {sorted(state)})")
    colors = (state["color_mean"].double().numpy(), state["color_cov"].double().numpy()) if "color_mean" in state else None
    return Style(meta.get("name", path.stem), state["mean"], state["std"], colors=colors)


def resolve_style(spec: str | np.ndarray, style_encoder, encoder_id: str, device="cpu") -> Style:
    """`spec` is an image path, a preset file, a preset name (see `nst-fast info`) or a uint8
    H x W x 3 image."""
    if isinstance(spec, np.ndarray):
        return image_style("image", spec, style_encoder, device)
    path = find_style(spec)
    if path.suffix.lower() == PRESET_SUFFIX:
        return load_preset(path, encoder_id)
    return image_style(path.stem, load_style_image(path), style_encoder, device)


def load_style_image(path: str | os.PathLike) -> np.ndarray:
    """load_image, with errors that say the file is the style, not a photo."""
    try:
        return load_image(path)
    except ImageError as e:
        raise ImageError(f"style {e}") from None


def make_presets(folder: Path, output: Path | None, style_encoder, encoder_id: str, echo=print) -> int:
    """A preset for every image under `folder` (walked recursively) into `output` (default: the
    user's presets folder; the bundled folder is refused). An image that cannot be read gets one
    line and is skipped; so is a second image with a name already taken. Returns how many failed."""
    output = output or user_presets()
    if output.resolve().is_relative_to(Path(__file__).parent.resolve()):
        raise NSTError(f"{output}: the bundled presets belong to the installed package and are never "
                       f"written; leave out -o to write to {user_presets()}")
    check_writable(output)
    images = image_files(folder)
    if not images:
        raise NSTError(f"no images found in {folder}")
    failed, made = 0, {}
    for path in images:
        target = output / f"{path.stem}{PRESET_SUFFIX}"
        if target in made:
            echo(f"error: {path}: same name as {made[target]}; skipped (rename one of them)")
            failed += 1
            continue
        try:
            style = image_style(path.stem, load_style_image(path), style_encoder)
        except ImageError as e:
            echo(f"error: {e}; skipped")
            failed += 1
            continue
        save_preset(target, style, encoder_id, path.name)
        made[target] = path
        shadows = " (used instead of the bundled preset of that name)" if (PRESETS / target.name).is_file() else ""
        echo(f"{target}{shadows}")
    return failed
