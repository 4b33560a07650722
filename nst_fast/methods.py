"""Build a runner for each method from what the user asked for (styles, weights, strength, colour)
and the backend that runs it."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from .adain import mix_statistics, pooled_statistics, statistics_for_tile
from .backends import Backend
from .color import keep_luminance, match_color
from .errors import NSTError
from .graphs import Graph, adain_graphs, transformer_graph
from .runners import Runner
from .runners.base import ExtraInputs
from .runners.torch_runner import TorchRunner, resolve_device
from .styles import Style, fit_style_image, image_statistics, resolve_style
from .stylizers import from_uint8, to_uint8
from .weights import vgg_weights

# graph_file(graph, backend) -> the file a backend runs for `graph`: an ONNX file for onnxruntime,
# an engine for TensorRT (the CLI exports and builds them, with caches; see export/).
GraphFile = Callable[[Graph, Backend], Path]
CPU = Backend("torch", "cpu")


class Delegate(Runner):
    """Runs `inner`, with other extra inputs where given."""

    def __init__(self, inner: Runner, extra_inputs: ExtraInputs | None = None):
        super().__init__(extra_inputs or inner.extra_inputs)
        self.inner, self.name, self.half = inner, inner.name, inner.half

    def activate(self):
        self.inner.activate()

    def execute(self, feeds):
        return self.inner.execute(feeds)

    def close(self):
        self.inner.close()


class PostProcess(Delegate):
    """Wraps a runner and changes its output using the input (colour)."""

    def __init__(self, inner: Runner, fn):
        super().__init__(inner)
        self.fn = fn

    def execute(self, feeds):
        outputs = self.inner.execute(feeds)
        return {**outputs, "stylized": self.fn(outputs["stylized"], feeds["images"])}


# photos (uint8 N x H x W x 3) -> the style's (mean, std) for them: 1 x 512 each, or N x 512 when
# they depend on the photo (colour preservation)
StyleStatistics = Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]]


def adain_feeds(mean: torch.Tensor, std: torch.Tensor, alpha: np.ndarray) -> dict[str, np.ndarray]:
    return {"style_mean": mean.numpy(), "style_std": std.numpy(), "alpha": alpha}


class TiledAdaIN(Delegate):
    """An AdaIN runner that stylises the tiles of a large image (tiling.py) with the content
    statistics of the whole image. Inside the graph, AdaIN normalises each tile by the tile's own
    statistics, so tiles would differ in tone; adain.statistics_for_tile turns that into the whole
    image's normalisation through the style inputs, so every backend runs the unchanged graph.

    The whole image's statistics are pooled from its tiles' at full resolution: those of a
    downscaled copy differ by 10-35 % (median over channels at 2-4x), which would change the style's
    strength against an untiled run. Costs one more encoder pass per tile."""

    def __init__(self, inner: Runner, encoder: torch.nn.Module, style: StyleStatistics, alpha: np.ndarray,
                 device: str = "cpu"):
        super().__init__(inner)
        self.encoder, self.style, self.alpha = encoder, style, alpha
        # torch computes the tiles' statistics; on the GPU when the engine runs there
        self.device = "cuda" if device == "cuda" and torch.cuda.is_available() else "cpu"

    def activate(self):
        self.encoder.to(self.device)
        super().activate()

    def close(self):
        super().close()
        self.encoder.to("cpu")

    def for_tiles(self, image: np.ndarray, tiles: list[np.ndarray]):
        """runner_for(indices) of tiling.runner_for_tiles."""
        stats = [image_statistics(self.encoder, tile, self.device) for tile in tiles]
        whole = pooled_statistics(stats, [t.shape[0] * t.shape[1] for t in tiles])
        # colour preservation recolours the style to the whole photo; colour needs no full resolution
        style = self.style(fit_style_image(image)[None])

        def runner_for(indices: list[int]) -> Runner:
            tile_mean, tile_std = (torch.cat([stats[i][k] for i in indices]) for k in (0, 1))
            feeds = adain_feeds(*statistics_for_tile(*style, tile_mean, tile_std, *whole), self.alpha)
            return Delegate(self, lambda images: feeds)
        return runner_for


def make_runner(graph: Graph, backend: Backend, extra_inputs: ExtraInputs | None = None,
                graph_file: GraphFile | None = None) -> Runner:
    if backend.kind == "torch":
        return TorchRunner(graph.module, backend.device, backend.half, extra_inputs)
    if graph_file is None:
        raise NSTError(f"the {backend.kind} backend needs exported graphs (nst-fast export)")
    path = graph_file(graph, backend)
    if backend.kind == "onnxruntime":
        from .runners.onnxruntime_runner import OnnxRuntimeRunner

        runner = OnnxRuntimeRunner(path, backend.device, extra_inputs=extra_inputs)
    else:
        from .runners.tensorrt_runner import TensorRTRunner

        runner = TensorRTRunner(path, extra_inputs=extra_inputs)
    runner.half = backend.half
    return runner


def adain_runner(styles: list[str], style_weights: list[float] | None = None, alpha: float = 1.0,
                 preserve_color: bool = False, decoder: str | None = None, vgg: str | None = None,
                 backend: Backend = CPU, graph_file: GraphFile | None = None) -> Runner:
    style_graph, graph = adain_graphs(decoder, vgg)
    # Style statistics are computed here in torch, once per run: the stylizer graph may be moved
    # to a GPU or to half precision by its runner, so it gets its own copy of the encoder.
    style_encoder = copy.deepcopy(style_graph.module)
    resolved = [resolve_style(s, style_encoder, graph.source["encoder_id"]) for s in styles]
    alpha_feed = np.array([alpha], np.float32)
    recolor = preserve_color and all(s.image is not None for s in resolved)

    if recolor:
        def style(photos: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            stats = [recolored_statistics(style_encoder, resolved, style_weights, photo) for photo in photos]
            return torch.cat([m for m, _ in stats]), torch.cat([s for _, s in stats])
    else:
        mixed = mix_statistics([(s.mean, s.std) for s in resolved], style_weights)
        style = lambda photos: mixed  # noqa: E731

    runner = make_runner(graph, backend, lambda images: adain_feeds(*style(images), alpha_feed), graph_file)
    if preserve_color and not recolor:
        # Presets carry no image to recolour: keep the photo's colours after stylising instead.
        runner = PostProcess(runner, keep_luminance)
    return TiledAdaIN(runner, copy.deepcopy(style_encoder), style, alpha_feed, backend.device)


@torch.no_grad()
def recolored_statistics(style_encoder, styles: list[Style], style_weights, photo: np.ndarray):
    """The AdaIN paper's colour preservation: recolour each style image to the photo, then take
    its statistics. Runs per photo, since the result depends on it."""
    content = from_uint8(torch.from_numpy(np.ascontiguousarray(photo))[None])
    stats = []
    for style in styles:
        image = torch.from_numpy(style.image)[None]
        recolored = to_uint8(match_color(from_uint8(image), content))
        m, s = style_encoder(recolored)
        stats.append((m.float(), s.float()))
    return mix_statistics(stats, style_weights)


def transformer_runner(style: str, model: str | None = None, alpha: float = 1.0, preserve_color: bool = False,
                       backend: Backend = CPU, graph_file: GraphFile | None = None) -> Runner:
    alpha_feed = {"alpha": np.array([alpha], np.float32)}
    runner = make_runner(transformer_graph(style, model), backend, lambda images: alpha_feed, graph_file)
    return PostProcess(runner, keep_luminance) if preserve_color else runner


class GatysRunner(Runner):
    """The optimisation baseline behind the runner interface: one optimisation per image."""

    name = "gatys"

    def __init__(self, style: str, config, vgg: str | None = None, device: str = "auto", progress: bool = True):
        from .styles import load_style_image

        super().__init__()
        self.style_image, self.config, self.progress = load_style_image(style), config, progress
        self.device, self.vgg_source = resolve_device(device), vgg

    def activate(self):
        self.vgg = vgg_weights(self.vgg_source).build("relu5_1").to(self.device)
        self.style = from_uint8(torch.from_numpy(self.style_image)[None]).to(self.device)

    def execute(self, feeds):
        from .gatys import stylize

        out = []
        for photo in feeds["images"]:
            content = from_uint8(torch.from_numpy(np.ascontiguousarray(photo))[None]).to(self.device)
            # Gram statistics depend on scale: give the style the photo's long side, so brush strokes
            # are as large relative to the photo whatever the two files' sizes.
            scale = max(photo.shape[:2]) / max(self.style.shape[-2:])
            size = [max(1, round(d * scale)) for d in self.style.shape[-2:]]
            style = torch.nn.functional.interpolate(self.style, size=size, mode="bilinear", antialias=True)
            # disable=None: a bar on a terminal, none in logs and pipes
            with tqdm(total=self.config.steps, desc="gatys", unit="step", leave=False,
                      disable=None if self.progress else True) as bar:
                result, _ = stylize(content, style, self.vgg, self.config, progress=lambda *a: bar.update(1))
            out.append(to_uint8(result).cpu().numpy()[0])
        return {"stylized": np.stack(out)}

    def close(self):
        self.vgg = self.style = None  # frees the GPU memory they held
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
