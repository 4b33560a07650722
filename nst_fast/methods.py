"""Build a runner for each method from what the user asked for (styles, weights, strength, colour)
and the backend that runs it."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from .adain import Moments, content_features, mean_std, mix_statistics, moments, statistics_for_tile, with_margin
from .backends import Backend
from .color import ColorMoments, apply_transfer, color_moments, color_transfer, keep_luminance, match_color, mix_moments
from .errors import NSTError, StyleError
from .graphs import Graph, adain_graphs, transformer_graph
from .runners import Runner
from .runners.base import ExtraInputs
from .runners.torch_runner import TorchRunner, resolve_device
from .styles import Style, fit_style_image, resolve_style
from .stylizers import from_uint8, to_uint8
from .weights import vgg_weights

# graph_file(graph, backend) -> the file a backend runs for `graph`: an ONNX file for onnxruntime and
# OpenVINO (an OpenVINO IR for its INT8), an engine for TensorRT (the CLI exports and builds them, with caches; see export/).
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


class Call(Runner):
    """A runner whose batches go through `fn` (uint8 N x H x W x 3 -> same): what AdaINRegions
    hands out for one batch of images or tiles."""

    def __init__(self, name: str, fn: Callable[[np.ndarray], np.ndarray]):
        super().__init__()
        self.name, self.fn = name, fn

    def execute(self, feeds):
        return {"stylized": self.fn(feeds["images"])}

    def infer(self, images: np.ndarray) -> np.ndarray:
        return self.fn(np.ascontiguousarray(images))


class AdaINRegions(Delegate):
    """An AdaIN runner that normalises by the right content statistics whatever it is given: the
    whole image's for each tile of a large image (tiling.py), and each region's for the styles
    painted by masks (masks.py; the AdaIN paper's Fig. 8).

    Inside the graph, AdaIN normalises an image (or tile) by its own content statistics. AdaIN is
    affine per channel, so adain.statistics_for_tile turns that into any other normalisation
    through the style inputs, and every backend runs the unchanged graph. The statistics it needs
    (a tile's, the whole image's, a region's) are taken here in torch from the relu4_1 features:
    one more encoder pass per tile, or per image with masks. The whole image's are pooled from its
    tiles at full resolution: those of a downscaled copy differ by 10-35 % (median over channels at
    2-4x), which would change the style's strength against an untiled run.

    With masks, the graph runs once per style that covers part of the image (with the style's
    statistics and its region's content statistics: mask-weighted at the features' resolution),
    and the outputs are blended by the masks at full resolution: equal to the paper's blend of
    AdaIN features away from region edges, a cross-fade across soft ones. The cost is one
    engine pass per style present (plus the encoder pass), instead of one.

    With `colors` (one per style), each style's output is recoloured to its painting's RGB mean
    and covariance (color.color_transfer) over its region, before the blend towards the photo
    by `alpha`, which then happens here rather than in the graph. A tiled image takes its colour
    transfer from a run of the whole image at STYLE_SIZE, so every tile gets the same one."""

    def __init__(self, inner: Runner, encoder: torch.nn.Module, styles: list[StyleStatistics], alpha: float,
                 masks: list[np.ndarray] = (), device: str = "cpu", colors: list[ColorMoments] | None = None):
        super().__init__(inner)
        if len(masks) != len(styles) - 1:
            raise ValueError(f"{len(masks)} masks for {len(styles)} styles (want one per style but the last)")
        self.encoder, self.styles, self.masks, self.colors = encoder, styles, list(masks), colors
        # the graph's alpha feed: full strength where the blend towards the photo follows recolouring
        self.strength, self.alpha = alpha, np.array([1.0 if colors else alpha], np.float32)
        # torch computes the statistics; on the GPU when the engine runs there
        self.device = "cuda" if device == "cuda" and torch.cuda.is_available() else "cpu"

    def activate(self):
        self.encoder.to(self.device)
        super().activate()

    def close(self):
        super().close()
        self.encoder.to("cpu")

    def infer(self, images: np.ndarray) -> np.ndarray:
        """Images taken to be unpadded (see for_sizes)."""
        return self.for_sizes([images.shape[1:3]] * len(images)).infer(images)

    def for_sizes(self, sizes: list[tuple[int, int]]) -> Runner:
        """The runner for a batch of padded images whose sizes before padding are `sizes`
        (batch.infer_batch): the masks are resized to those."""
        if not self.masks and not self.colors:  # the graph's own normalisation is the right one
            return Delegate(self)

        def run(images: np.ndarray) -> np.ndarray:
            valid = unpadded(sizes, images.shape[1:3])
            if not self.masks:  # the graph's own normalisation is right: only the colours change
                return self.combine([Delegate(self).infer(images)], images, None, valid)
            weights = self.weights(sizes, images.shape[1:3])
            feat = self.features(images)
            own = flat(mean_std(feat))
            regions = self.regions(moments(feat, self.feature_weights(weights, feat)), own)
            return self.blend(images, weights, own, regions, images, valid)
        return Call(self.name, run)

    def for_tiles(self, image: np.ndarray, grid, size: tuple[int, int]):
        """runner_for(indices) of tiling.runner_for_tiles."""
        tiles = grid.tiles(image)
        weights = grid.tiles(self.weights([size], image.shape[:2])[0]) if self.masks else [None] * len(tiles)
        own, total = [], None
        for tile, w in zip(tiles, weights):
            feat = self.features(tile[None])
            own.append(flat(mean_std(feat)))
            m = moments(feat, self.feature_weights(None if w is None else w[None], feat))
            total = m if total is None else total + m
        # colour preservation recolours the style to the whole photo; colour needs no full resolution
        photo = fit_style_image(image)[None]
        transfers = self.preview_transfers(photo, total) if self.colors else None

        def runner_for(indices: list[int]) -> Runner:
            tile_own = tuple(torch.cat([own[i][k] for i in indices]) for k in (0, 1))
            regions = self.regions(total, tile_own)
            w = None if weights[0] is None else np.stack([weights[i] for i in indices])
            return Call(self.name, lambda images: self.blend(images, w, tile_own, regions, photo, transfers=transfers))
        return runner_for

    def preview_transfers(self, photo: np.ndarray, total: Moments):
        """Each style's colour transfer for a tiled image, from the whole image (`photo`, at
        STYLE_SIZE) normalised by the full resolution's content statistics `total`."""
        from .images import pad_to_multiple

        padded, (h, w) = pad_to_multiple(photo[0])
        weights = self.weights([(h, w)], padded.shape[:2]) if self.masks else None  # masks fit any size
        own = flat(mean_std(self.features(padded[None])))
        valid = unpadded([(h, w)], padded.shape[:2])
        return [None if out is None else color_transfer(color_moments(out[0], self.region(weights, valid, 0, k)),
                                                         self.colors[k])
                for k, out in enumerate(self.outputs(padded[None], weights, own, self.regions(total, own), photo))]

    def weights(self, sizes: list[tuple[int, int]], shape: tuple[int, int]) -> np.ndarray:
        """float32 N x H x W x K: each style's weight over each padded image (masks.py)."""
        from .images import pad_to_multiple
        from .masks import region_weights

        planes = [pad_to_multiple(region_weights(self.masks, size))[0] for size in sizes]
        if any(p.shape[:2] != tuple(shape) for p in planes):
            raise ValueError(f"sizes {sizes} do not pad to the images' {tuple(shape)}")
        return np.stack(planes)

    @torch.no_grad()
    def features(self, images: np.ndarray) -> torch.Tensor:
        """relu4_1 features (N x C x (H + 2 MARGIN)/8 x (W + 2 MARGIN)/8, FP32) of uint8 N x H x W x 3
        images, as the graph takes their statistics: with the mirrored margin (adain.content_features)."""
        batch = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        dtype = next(self.encoder.parameters()).dtype
        return content_features(self.encoder.encoder, from_uint8(batch, dtype)).float()

    def feature_weights(self, weights: np.ndarray | None, feat: torch.Tensor) -> torch.Tensor:
        """N x K x H'/8 x W'/8: the pixels' weights, mirrored into the margin as the image is, averaged
        over each feature's 8 x 8 cell (all ones, one region, without masks)."""
        if weights is None:
            return torch.ones(feat.shape[0], 1, *feat.shape[2:], device=feat.device)
        w = with_margin(torch.from_numpy(np.ascontiguousarray(weights)).permute(0, 3, 1, 2).to(feat.device))
        return torch.nn.functional.adaptive_avg_pool2d(w, feat.shape[2:])

    def regions(self, total: Moments, own: tuple[torch.Tensor, torch.Tensor]) -> list[tuple[torch.Tensor, ...]]:
        """Each region's content (mean, std), N or 1 x C; where a region covers less than half a
        feature position, the image's own, so an empty region gets no absurd statistics."""
        mean, std = (t.cpu() for t in total.statistics())
        empty = total.weight.cpu() < 0.5  # N x K x 1
        return [(torch.where(empty[:, k], own[0], mean[:, k]), torch.where(empty[:, k], own[1], std[:, k]))
                for k in range(len(self.styles))]

    def outputs(self, images: np.ndarray, weights: np.ndarray | None, own, regions, photos: np.ndarray) -> list:
        """The graph's output with each style on its region (None for a style no pixel has)."""
        results = []
        for k, style in enumerate(self.styles):
            if weights is not None and not weights[..., k].any():
                results.append(None)
                continue
            feeds = adain_feeds(*statistics_for_tile(*style(photos), *own, *regions[k]), self.alpha)
            results.append(Delegate(self, lambda images: feeds).infer(images))
        return results

    def blend(self, images: np.ndarray, weights: np.ndarray | None, own, regions, photos: np.ndarray,
              valid: np.ndarray | None = None, transfers: list | None = None) -> np.ndarray:
        """The outputs with each style on its region, combined."""
        return self.combine(self.outputs(images, weights, own, regions, photos), images, weights, valid, transfers)

    def combine(self, results: list, images: np.ndarray, weights: np.ndarray | None, valid: np.ndarray | None,
                transfers: list | None = None) -> np.ndarray:
        """Sum over styles of weight x the output with that style, recoloured (see the class) where
        colours are given: by `transfers` (one per style), else from each image's own output."""
        if weights is None and not self.colors:
            return results[0]
        out = 0
        for k, result in enumerate(results):
            if result is None:
                continue
            if self.colors:
                result = np.stack([apply_transfer(r, transfers[k] if transfers and transfers[k] is not None else
                                                  color_transfer(color_moments(r, self.region(weights, valid, n, k)),
                                                                 self.colors[k])) for n, r in enumerate(result)])
                result = self.strength * result + (1 - self.strength) * images.astype(np.float32)
            out = out + (result if weights is None else weights[..., k, None] * result)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    @staticmethod
    def region(weights: np.ndarray | None, valid: np.ndarray | None, n: int, k: int) -> np.ndarray | None:
        """Image n's pixel weights for style k's colours: its mask, without the padding."""
        w = None if weights is None else weights[n, ..., k]
        if valid is not None:
            w = valid[n] if w is None else w * valid[n]
        return w


def unpadded(sizes: list[tuple[int, int]], shape: tuple[int, int]) -> np.ndarray:
    """float32 N x H x W: 1 on each padded image's own pixels, 0 on its padding."""
    valid = np.zeros((len(sizes), *shape), np.float32)
    for n, (h, w) in enumerate(sizes):
        valid[n, :h, :w] = 1
    return valid


def flat(stats: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """mean_std()'s N x C x 1 x 1 as N x C, on the CPU."""
    return tuple(t.flatten(1).cpu() for t in stats)


def make_runner(graph: Graph, backend: Backend, extra_inputs: ExtraInputs | None = None,
                graph_file: GraphFile | None = None) -> Runner:
    if backend.kind == "torch":
        return TorchRunner(graph.module, backend.device, backend.half, extra_inputs, bf16=backend.precision == "bf16")
    if graph_file is None:
        raise NSTError(f"the {backend.kind} backend needs exported graphs (nst-fast export)")
    path = graph_file(graph, backend)
    if backend.kind == "onnxruntime":
        from .runners.onnxruntime_runner import OnnxRuntimeRunner

        runner = OnnxRuntimeRunner(path, backend.device, extra_inputs=extra_inputs)
    elif backend.kind == "openvino":
        from .runners.openvino_runner import OpenVINORunner

        # OpenVINO's compiled-model cache beside the graph, so it is dropped with it
        runner = OpenVINORunner(path, backend.precision, cache_dir=path.parent / "openvino_cache",
                                extra_inputs=extra_inputs)
    else:
        from .runners.tensorrt_runner import TensorRTRunner

        runner = TensorRTRunner(path, extra_inputs=extra_inputs)
    runner.half = backend.precision != "fp32"  # reduced precision: the NaN message suggests --precision fp32
    return runner


def adain_runner(styles: list[str | np.ndarray], style_weights: list[float] | None = None, alpha: float = 1.0,
                 preserve_color: bool = False, decoder: str | None = None, vgg: str | None = None,
                 backend: Backend = CPU, graph_file: GraphFile | None = None,
                 masks: list[np.ndarray] = (), style_colors: bool = False) -> Runner:
    """AdaIN with `styles` (preset names, image files or uint8 images), mixed by `style_weights`,
    or, given `masks` (float32 H x W in [0, 1], one per style but the last; masks.py), each
    painted on its region; `style_colors`: recoloured to the paintings' colours (AdaINRegions)."""
    style_graph, graph = adain_graphs(decoder, vgg)
    # Style statistics are computed here in torch, once per run: the stylizer graph may be moved
    # to a GPU or to half precision by its runner, so it gets its own copy of the encoder.
    style_encoder = copy.deepcopy(style_graph.module)
    resolved = [resolve_style(s, style_encoder, graph.source["encoder_id"]) for s in styles]
    recolor = preserve_color and all(s.image is not None for s in resolved)
    colors = style_colors and painting_colors(resolved, style_weights, bool(masks))
    alpha_feed = np.array([1.0 if colors else alpha], np.float32)

    def statistics(group: list[Style], weights: list[float] | None) -> StyleStatistics:
        if recolor:
            def style(photos: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
                stats = [recolored_statistics(style_encoder, group, weights, photo) for photo in photos]
                return torch.cat([m for m, _ in stats]), torch.cat([s for _, s in stats])
            return style
        mixed = mix_statistics([(s.mean, s.std) for s in group], weights)
        return lambda photos: mixed

    # with masks, one style per region; otherwise one mix of them all
    per_region = [statistics([s], None) for s in resolved] if masks else [statistics(resolved, style_weights)]
    runner = make_runner(graph, backend, lambda images: adain_feeds(*per_region[0](images), alpha_feed), graph_file)
    if preserve_color and not recolor:
        # Presets carry no image to recolour: keep the photo's colours after stylising instead.
        runner = PostProcess(runner, keep_luminance)
    return AdaINRegions(runner, copy.deepcopy(style_encoder), per_region, alpha, masks, backend.device, colors or None)


def painting_colors(styles: list[Style], weights: list[float] | None, per_region: bool) -> list[ColorMoments]:
    """Each region's colours (with masks), else the styles' mixed by `weights`."""
    old = [s.name for s in styles if s.colors is None]
    if old:
        raise StyleError(f"{', '.join(old)}: preset made before presets held colours; make it again "
                         "(nst-fast presets) or turn style colours off (--no-style-colors)")
    parts = [s.colors for s in styles]
    return parts if per_region else [mix_moments(parts, weights)]


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

    def __init__(self, style: str | np.ndarray, config, vgg: str | None = None, device: str = "auto",
                 progress: bool = True):
        """`style`: an image file, or uint8 H x W x 3 pixels."""
        from .styles import load_style_image

        super().__init__()
        self.style_image = style if isinstance(style, np.ndarray) else load_style_image(style)
        self.config, self.progress = config, progress
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
