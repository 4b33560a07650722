"""Build a runner for each method from what the user asked for (styles, weights, strength, colour)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .adain import mix_statistics
from .color import keep_luminance, match_color
from .errors import NSTError
from .models import ASSETS, load_decoder, load_transformer
from .runners import Runner
from .runners.torch_runner import TorchRunner, resolve_device
from .styles import Style, resolve_style
from .stylizers import AdaINStylizer, StyleEncoder, TransformerStylizer, from_uint8, to_uint8
from .weights import vgg_weights

TRANSFORMERS = ASSETS / "transformer"


class PostProcess(Runner):
    """Wraps a runner and changes its output using the input (colour, strength)."""

    def __init__(self, inner: Runner, fn):
        self.inner, self.fn, self.name = inner, fn, inner.name

    def activate(self):
        self.inner.activate()

    def infer(self, images):
        return self.fn(self.inner.infer(images), images)

    def close(self):
        self.inner.close()


def blend(alpha: float):
    """Strength for networks without an AdaIN step: mix the output with the content."""
    def fn(stylized, content):
        return np.clip(alpha * stylized.astype(np.float32) + (1 - alpha) * content + 0.5, 0, 255).astype(np.uint8)
    return fn


def adain_runner(styles: list[str], style_weights: list[float] | None = None, alpha: float = 1.0,
                 preserve_color: bool = False, decoder: str | None = None, vgg: str | None = None,
                 device: str = "auto", half: bool = False) -> Runner:
    weights = vgg_weights(vgg)
    encoder = weights.build("relu4_1")
    net, _ = load_decoder(decoder, weights.encoder_id)
    style_encoder = StyleEncoder(encoder)  # shares the encoder with the stylizer
    resolved = [resolve_style(s, style_encoder, weights.encoder_id) for s in styles]
    mean, std = mix_statistics([(s.mean, s.std) for s in resolved], style_weights)
    alpha_t = torch.tensor(float(alpha))
    stylizer = AdaINStylizer(encoder, net)

    if preserve_color and all(s.image is not None for s in resolved):
        def per_photo_statistics(images):
            stats = [recolored_statistics(style_encoder, resolved, style_weights, photo) for photo in images]
            return torch.cat([m for m, _ in stats]), torch.cat([s for _, s in stats]), alpha_t
        return TorchRunner(stylizer, device, half, per_photo_statistics)

    runner = TorchRunner(stylizer, device, half, lambda images: (mean, std, alpha_t))
    # Presets carry no image to recolour: keep the photo's colours after stylising instead.
    return PostProcess(runner, keep_luminance) if preserve_color else runner


def recolored_statistics(style_encoder, styles: list[Style], style_weights, photo: torch.Tensor):
    """The AdaIN paper's colour preservation: recolour each style image to the photo, then take
    its statistics. Runs per photo, since the result depends on it."""
    content = from_uint8(photo[None])
    stats = []
    for style in styles:
        image = torch.from_numpy(style.image)[None].to(photo.device)
        recolored = to_uint8(match_color(from_uint8(image), content))
        m, s = style_encoder(recolored)
        stats.append((m.float(), s.float()))
    return mix_statistics(stats, style_weights)


def transformer_path(style: str, model: str | None) -> Path:
    if model:
        return Path(model)
    path = TRANSFORMERS / f"{style}.safetensors"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in TRANSFORMERS.glob("*.safetensors"))) or "none yet"
        raise NSTError(f"no transformer network for style {style!r} (bundled: {known}); "
                       "pass one with --model FILE")
    return path


def transformer_runner(style: str, model: str | None = None, alpha: float = 1.0, preserve_color: bool = False,
                       device: str = "auto", half: bool = False) -> Runner:
    net, _ = load_transformer(transformer_path(style, model))
    runner: Runner = TorchRunner(TransformerStylizer(net), device, half)
    if alpha < 1.0:
        runner = PostProcess(runner, blend(alpha))
    return PostProcess(runner, keep_luminance) if preserve_color else runner


class GatysRunner(Runner):
    """The optimisation baseline behind the runner interface: one optimisation per image."""

    name = "gatys"

    def __init__(self, style: str, config, vgg: str | None = None, device: str = "auto", progress: bool = True):
        from .images import load_image

        self.style_image, self.config, self.progress = load_image(style), config, progress
        self.device, self.vgg_source = resolve_device(device), vgg

    def activate(self):
        self.vgg = vgg_weights(self.vgg_source).build("relu5_1").to(self.device)
        self.style = from_uint8(torch.from_numpy(self.style_image)[None]).to(self.device)

    def infer(self, images):
        from .gatys import stylize

        out = []
        for photo in images:
            content = from_uint8(torch.from_numpy(np.ascontiguousarray(photo))[None]).to(self.device)
            # Gram statistics depend on scale: give the style the photo's long side, so brush strokes
            # are as large relative to the photo whatever the two files' sizes.
            scale = max(photo.shape[:2]) / max(self.style.shape[-2:])
            size = [max(1, round(d * scale)) for d in self.style.shape[-2:]]
            style = torch.nn.functional.interpolate(self.style, size=size, mode="bilinear", antialias=True)
            with tqdm(total=self.config.steps, desc="gatys", unit="step", leave=False, disable=not self.progress) as bar:
                result, _ = stylize(content, style, self.vgg, self.config, progress=lambda *a: bar.update(1))
            out.append(to_uint8(result).cpu().numpy()[0])
        return np.stack(out)
