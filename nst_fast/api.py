"""The Python API, and the one assembly of a stylisation job under every entry point.

    import nst_fast
    with nst_fast.Stylizer("starry_night") as stylizer:
        out = stylizer.stylize(PIL.Image.open("photo.jpg"))

A Stylizer checks its options, picks the backend, locates (or exports) the graphs, computes the
style statistics and builds the runner once; `stylize` then costs one engine pass per image (or
per tile). `nst-fast run` is `run_folder`, and `nst-fast eval` builds its runners here too.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Union

import numpy as np
from PIL import Image

from .backends import PRECISIONS
from .batch import TILE_SIZE
from .errors import GraphRefused, ImageError, OptionError
from .masks import MaskLike
from .tiling import check_tile_size

if TYPE_CHECKING:
    from .backends import Backend
    from .batch import Job, Summary
    from .runners import Runner
    from .video import VideoOptions, VideoResult

PathLike = Union[str, os.PathLike]
# A style: a bundled preset or transformer name, an image file, a PIL image or a uint8 H x W x 3 array.
StyleLike = Union[str, os.PathLike, Image.Image, np.ndarray]
ImageLike = Union[Image.Image, np.ndarray, str, os.PathLike]

METHODS = ("adain", "transformer", "gatys")
NO_GATYS_VIDEO = "method gatys optimises every frame for minutes: stylise videos with adain or transformer"
NO_RAY_VIDEO = "videos do not run on Ray yet: stylise them without --ray"
BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class BackendChoice:
    """What runs a Stylizer, and why the faster backends were passed over (as `nst-fast info`)."""

    backend: Backend
    passed_over: tuple[str, ...] = ()
    note: str = ""

    def __str__(self) -> str:
        why = f" (passed over: {'; '.join(self.passed_over)})" if self.passed_over else ""
        return f"{self.backend}{why}{f' ({self.note})' if self.note else ''}"


def _style_list(style: StyleLike | Sequence[StyleLike]) -> list[StyleLike]:
    if isinstance(style, (str, os.PathLike, Image.Image, np.ndarray)):
        return [style]
    styles = list(style)
    if not styles:
        raise OptionError("give at least one style", "style")
    return styles


def _style_spec(style: StyleLike) -> str | np.ndarray:
    """A path or name as str; a PIL image as a uint8 RGB array."""
    if isinstance(style, Image.Image):
        return np.asarray(style.convert("RGB"))
    if isinstance(style, np.ndarray):
        return _checked_array(style, "style")
    return os.fspath(style)


def check_options(style: StyleLike | Sequence[StyleLike], *, method: str = "adain", alpha: float = 1.0,
                  style_weights: Sequence[float] | None = None, masks: Sequence[MaskLike] | None = None,
                  preserve_color: bool = False, style_colors: bool | None = None,
                  model: PathLike | None = None, backend: str = "auto", device: str = "auto",
                  precision: str = "auto", max_size: int | None = None, tile_size: int = TILE_SIZE,
                  batch_size: int = 4, graphs: PathLike | None = None, steps: int = 300,
                  vgg: PathLike | None = None, progress: bool = False, **unused) -> None:
    """Raise OptionError (or StyleError) for options that cannot work, before any weights load.
    Takes the keyword arguments of Stylizer."""
    if unused:
        raise OptionError(f"not an option of nst_fast.Stylizer (options: {', '.join(_OPTION_NAMES)})", *unused)
    for name, value, allowed in [("method", method, METHODS), ("backend", backend, BACKENDS),
                                 ("device", device, DEVICES), ("precision", precision, tuple(PRECISIONS))]:
        if value not in allowed:
            raise OptionError(f"{value!r} is not one of {', '.join(allowed)}", name)
    if not 0 <= alpha <= 1:
        raise OptionError(f"{alpha}: style strength is between 0 and 1", "alpha")
    for name, value, low in [("batch_size", batch_size, 1), ("steps", steps, 1), ("max_size", max_size or 16, 16)]:
        if value < low:
            raise OptionError(f"{value}: at least {low}", name)
    check_tile_size(tile_size)
    styles = _style_list(style)
    if style_weights is not None:
        if len(style_weights) != len(styles):
            raise OptionError(f"{len(style_weights)} weights for {len(styles)} styles", "style_weights")
        if min(style_weights) < 0 or sum(style_weights) <= 0:
            raise OptionError("weights must be non-negative and not all zero", "style_weights")
    if method != "adain" and len(styles) > 1:
        raise OptionError(f"method {method} takes one style", "style")
    if masks:
        _check_masks(masks, styles, method, style_weights)
    if style_colors and method != "adain":
        raise OptionError(f"are for method adain, not {method} (its network learnt its painting's colours)",
                          "style_colors")
    if style_colors and preserve_color:
        raise OptionError("the painting's colours or the photo's, not both", "style_colors", "preserve_color")
    if method == "gatys":
        unused = [name for name, given in [("alpha", alpha != 1.0), ("preserve_color", preserve_color),
                                           ("precision", precision != "auto"), ("model", model),
                                           ("graphs", graphs), ("backend", backend not in ("auto", "torch"))] if given]
        if unused:
            raise OptionError("not used by method gatys", *unused)
        if isinstance(styles[0], (str, os.PathLike)) and not Path(styles[0]).is_file():
            raise OptionError(f"method gatys needs a style image, not {os.fspath(styles[0])!r}", "style")
    _check_styles(method, styles, model)


def _check_masks(masks: Sequence[MaskLike], styles: list[StyleLike], method: str, style_weights) -> None:
    if method != "adain":
        raise OptionError(f"are for method adain, not {method}", "masks")
    if len(masks) != len(styles) - 1:
        raise OptionError(f"{len(masks)} masks for {len(styles)} styles: give one per style but the last "
                          "(its region is what no mask covers)", "masks")
    if style_weights is not None:
        raise OptionError("mix styles everywhere or paint them by masks, not both", "style_weights", "masks")
    for mask in masks:
        if isinstance(mask, (str, os.PathLike)) and not Path(mask).is_file():
            raise ImageError(f"{os.fspath(mask)}: no such mask file")


def _check_styles(method: str, styles: list[StyleLike], model: PathLike | None) -> None:
    """Every style names a file or a bundled preset / network, before any work starts."""
    from .graphs import transformer_path
    from .styles import find_style

    if method == "transformer":
        if not isinstance(styles[0], (str, os.PathLike)):
            raise OptionError("method transformer takes the name of a network (or model=FILE), not an image", "style")
        transformer_path(os.fspath(styles[0]), model)
    elif method == "adain":
        for spec in styles:
            if isinstance(spec, (str, os.PathLike)):
                find_style(os.fspath(spec))


class Stylizer:
    """A style (or a mix of styles) ready to apply to any number of images.

    `style`: a bundled preset name (AdaIN) or network name (transformer), an image file, a PIL
    image or a uint8 H x W x 3 array; a list of them mixes styles (AdaIN), by `style_weights`,
    or with `masks` (one per style but the last: image files, PIL images or arrays, white = that
    style; resized to each photo, grey levels blend) paints each style on its own region.
    `method`: adain, transformer or gatys. `alpha`: style strength, 0-1. `preserve_color`: keep
    the photo's colours. `style_colors` (AdaIN; default on unless `preserve_color`): recolour the
    output to the painting's RGB mean and covariance, which the decoder alone misses. `model`: decoder (AdaIN) or network (transformer) weights file; `vgg`:
    VGG weights file. `backend`: auto (the fastest here), tensorrt, onnxruntime, openvino or torch; `device`:
    auto, cpu or cuda; `precision`: auto (FP16 on a GPU; bf16 with OpenVINO on a CPU that has it, else
    FP32), fp32, fp16, bf16 or int8.
    `max_size`: images are first downscaled so their long side is at most this; `tile_size`:
    larger images go through in overlapping tiles of this side (0: never); `batch_size`: images
    (or tiles) per engine call. `graphs`: a folder from `nst-fast export` (default: export into
    the cache on first use). `steps`: Gatys optimisation steps. `progress`: show progress bars
    (graph export, Gatys) on stderr.

    Everything is built once, here; the engine starts on the first `stylize` (or `with`).
    Raises OptionError, StyleError, WeightsError or BackendError (all NSTError), one line each.
    """

    def __init__(self, style: StyleLike | Sequence[StyleLike], *, method: str = "adain", alpha: float = 1.0,
                 style_weights: Sequence[float] | None = None, masks: Sequence[MaskLike] | None = None,
                 preserve_color: bool = False, style_colors: bool | None = None,
                 model: PathLike | None = None, vgg: PathLike | None = None, backend: str = "auto",
                 device: str = "auto", precision: str = "auto", max_size: int | None = None,
                 tile_size: int = TILE_SIZE, batch_size: int = 4, graphs: PathLike | None = None,
                 steps: int = 300, progress: bool = False):
        options = dict(method=method, alpha=alpha, style_weights=style_weights, masks=masks,
                       preserve_color=preserve_color, style_colors=style_colors,
                       model=model, backend=backend, device=device, precision=precision, max_size=max_size,
                       tile_size=tile_size, batch_size=batch_size, graphs=graphs, steps=steps)
        check_options(style, **options)
        self.method, self.max_size, self.batch_size = method, max_size, batch_size
        # an optimisation per tile would be minutes each, and would not match at the seams
        self.tile_size = 0 if method == "gatys" else tile_size
        if method == "gatys":
            self.batch_size = 1
        self.runner, self.backend = _build_runner(_style_list(style), vgg=vgg, progress=progress, **options)
        self._active = False

    # -- engine life ------------------------------------------------------------------------------

    def open(self) -> Stylizer:
        """Start the engine (load the weights onto the device, create the session); idempotent."""
        if not self._active:
            self.runner.activate()
            self._active = True
        return self

    def close(self) -> None:
        """Free the engine (GPU memory, sessions); the next `stylize` starts it again."""
        if self._active:
            self.runner.close()
            self._active = False

    def __enter__(self) -> Stylizer:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Stylizer(method={self.method!r}, backend='{self.backend}')"

    # -- stylising --------------------------------------------------------------------------------

    def stylize(self, image: ImageLike) -> Image.Image | np.ndarray:
        """One image: a PIL image gives a PIL image (RGB), a uint8 H x W x 3 array an array, a file
        path a PIL image. The output has the input's size after `max_size`; larger than
        `tile_size`, it goes through in tiles."""
        return self.stylize_batch([image])[0]

    def stylize_batch(self, images: Sequence[ImageLike]) -> list[Image.Image | np.ndarray]:
        """A list of images of any sizes (as `stylize` takes them), batched by shape inside; the
        outputs in the same order and types."""
        arrays = [self._pixels(image) for image in images]
        self.open()
        outputs = self._stylize_arrays(arrays)
        return [np.ascontiguousarray(out) if isinstance(image, np.ndarray) else Image.fromarray(out)
                for image, out in zip(images, outputs)]

    def _stylize_arrays(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """uint8 H x W x 3 images (already within max_size) through the started engine: batched by
        padded shape, tiled where large. What the video job's frames go through."""
        from .batch import infer_batch, stylize_tiled
        from .images import pad_to_multiple
        from .tiling import needs_tiles

        padded = [pad_to_multiple(a) for a in arrays]
        outputs: list[np.ndarray | None] = [None] * len(arrays)
        by_shape: dict[tuple, list[int]] = {}
        for i, (p, size) in enumerate(padded):
            if needs_tiles(p.shape, self.tile_size):
                outputs[i] = stylize_tiled(self.runner, p, self.tile_size, self.batch_size, size)[0][:size[0], :size[1]]
            else:
                by_shape.setdefault(p.shape, []).append(i)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                sizes = [padded[i][1] for i in chunk]
                results = infer_batch(self.runner, [padded[i][0] for i in chunk], sizes)
                for i, out, (h, w) in zip(chunk, results, sizes):
                    outputs[i] = out[:h, :w]
        return outputs

    def stylize_video(self, source: PathLike, output: PathLike, *, stabilize: bool = True,
                      stability: float = 0.85, crf: int | None = None, progress: bool = False) -> VideoResult:
        """One video file into `output` (container from its suffix: .mp4 .m4v .mov .mkv .webm .avi),
        written atomically: frames streamed through the engine in batches of `batch_size`,
        downscaled to `max_size`; each frame keeps its time; sound copied. `stabilize`: blend
        each frame with the previous output moved by optical flow, against flicker (README, Video);
        `stability`: the previous output's weight there, in [0, 1); `crf`: encoder quality, lower
        is better (default: the codec's, libx264 18). `progress`: a bar with frames/s on a terminal.
        Needs the `video` extra. Returns video.VideoResult (frames, seconds, fps, codec, audio,
        notes); raises VideoError naming the file for a video that cannot be read or written."""
        from .video import stylize_video

        options = self.video_options(stabilize=stabilize, stability=stability, crf=crf, progress=progress)
        self.open()
        return stylize_video(source, output, self._stylize_arrays, options)

    def video_options(self, *, stabilize: bool = True, stability: float = 0.85, crf: int | None = None,
                      progress: bool = False) -> VideoOptions:
        """video.VideoOptions for this Stylizer (its batch size and max size). Raises OptionError."""
        from .video import VideoOptions

        if self.method == "gatys":
            raise OptionError(NO_GATYS_VIDEO, "method")
        check_video_options(stability=stability, crf=crf)
        return VideoOptions(batch_size=self.batch_size, max_size=self.max_size, crf=crf, stability=stability,
                            stabilize=stabilize, progress=progress)

    def _pixels(self, image: ImageLike) -> np.ndarray:
        """uint8 H x W x 3 RGB of `image`, downscaled to `max_size`."""
        from .images import fit_size, load_image

        if isinstance(image, (str, os.PathLike)):
            return load_image(image, self.max_size)
        if isinstance(image, Image.Image):
            pixels = np.asarray(image.convert("RGB"))
        elif isinstance(image, np.ndarray):
            pixels = _checked_array(image, "image")
        else:
            raise ImageError(f"{type(image).__name__}: not an image (give a PIL image, a uint8 H x W x 3 array or a path)")
        if self.max_size and max(pixels.shape[:2]) > self.max_size:
            size = fit_size((pixels.shape[1], pixels.shape[0]), self.max_size)
            pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.LANCZOS, reducing_gap=3.0))
        return pixels


def _checked_array(array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
        raise ImageError(f"{what}: a {array.dtype} array of shape {array.shape}; want uint8 H x W x 3 (RGB)")
    return array


def check_video_options(*, stability: float = 0.85, crf: int | None = None) -> None:
    """Raise OptionError for video options that cannot work, before any weights load."""
    if not 0 <= stability < 1:
        raise OptionError(f"{stability}: the previous frame's weight is at least 0 and below 1", "stability")
    if crf is not None and not 0 <= crf <= 63:
        raise OptionError(f"{crf}: between 0 (lossless) and 63 (libx264 takes up to 51)", "crf")


def _build_runner(styles: list[StyleLike], *, method, alpha, style_weights, masks, preserve_color, style_colors,
                  model, vgg, backend,
                  device, precision, max_size, tile_size, batch_size, graphs, steps, progress
                  ) -> tuple[Runner, BackendChoice]:
    """The runner of the method on its backend, and the backend choice."""
    from . import backends, methods

    if method == "gatys":
        from .gatys import GatysConfig
        from .runners.torch_runner import resolve_device

        runner = methods.GatysRunner(_style_spec(styles[0]), GatysConfig(steps=steps), _path(vgg), device,
                                     progress=progress)
        chosen = backends.Backend("torch", resolve_device(device).type)
        return runner, BackendChoice(chosen, note="the Gatys optimisation runs on torch")
    engine, passed_over = backends.choose(backend, device, precision=precision)
    if graphs is not None and not engine.needs_onnx:
        raise OptionError(f"is for the onnxruntime and TensorRT backends, not {engine}", "graphs")
    locate = None
    if engine.needs_onnx:
        side = min((s for s in (max_size, tile_size if method != "gatys" else 0) if s), default=None)
        locate = graph_locator(_path(graphs), batch_size, side, engine.kind == "tensorrt", progress)

    def build(engine):
        if method == "adain":
            from .masks import load_mask

            return methods.adain_runner([_style_spec(s) for s in styles],
                                        list(style_weights) if style_weights else None, alpha, preserve_color,
                                        _path(model), _path(vgg), engine, locate, [load_mask(m) for m in masks or ()],
                                        uses_style_colors(method, preserve_color, style_colors))
        return methods.transformer_runner(os.fspath(styles[0]), _path(model), alpha, preserve_color, engine, locate)

    try:
        return build(engine), BackendChoice(engine, tuple(passed_over))
    except GraphRefused as refused:
        # A precision that auto chose must not stop the run: these weights' graph failed its check
        # in it (e.g. BF16 on a synthetic 1-px pattern), so run the same backend in FP32 instead.
        if precision != "auto" or engine.precision == "fp32":
            raise
        fallback = backends.Backend(engine.kind, engine.device, "fp32")
        note = f"{engine.precision} refused for these weights, so FP32: {refused}"
        return build(fallback), BackendChoice(fallback, tuple(passed_over), note)


def _path(value: PathLike | None) -> str | None:
    return None if value is None else os.fspath(value)


def graph_locator(graphs: PathLike | None, batch_size: int, side: int | None, tensorrt: bool, progress: bool):
    """Exported graphs (and TensorRT engines with a profile that fits batches of `batch_size`
    images of up to `side` pixels)."""
    from export.cache import graph_locator as locate

    graphs = Path(graphs) if graphs is not None else None
    if not tensorrt:
        return locate(graphs, progress=progress)
    from export.engine import Profile

    from .images import MIN_SIDE

    if side is None:
        raise OptionError("the TensorRT backend needs a largest image size: give max_size or tile_size",
                          "max_size", "tile_size")
    side = -(-side // 8) * 8
    return locate(graphs, Profile(min=(1, MIN_SIDE, MIN_SIDE), opt=(batch_size, side, side), max=(batch_size, side, side)),
                  progress)


def stylize(image: ImageLike, style: StyleLike | Sequence[StyleLike], **options) -> Image.Image | np.ndarray:
    """One image in one call: `Stylizer(style, **options).stylize(image)`, then the engine is freed.
    For many images build one Stylizer: the weights, graphs and style statistics are loaded once."""
    with Stylizer(style, **options) as stylizer:
        return stylizer.stylize(image)


def run_folder(paths: PathLike | Sequence[PathLike], output: PathLike = "stylized",
               style: StyleLike | Sequence[StyleLike] = (), *, format: str | None = None, quality: int = 95,
               overwrite: bool = False, workers: int | None = None, keep_exif: bool = False,
               report: PathLike | None = None, contact_sheet: PathLike | None = None, dry_run: bool = False,
               verbose: bool = False, progress: bool = True, ray: str | None = None, stabilize: bool = True,
               stability: float = 0.85, crf: int | None = None, **options) -> Summary:
    """The batch runner of `nst-fast run`: stylise image and video files and folders (walked
    recursively) into `output` (a file goes to `output`/its name, a folder's contents directly under `output`);
    outputs that exist are skipped (`overwrite` redoes them), so a rerun finishes an interrupted
    run. `output`/nst-fast.json records the settings; a run with other settings into it raises
    NSTError unless `overwrite`. A file that fails is reported and the run goes on. `options` are
    Stylizer's (`max_size` defaults to none here too).

    Returns the Summary: `.jobs` (each with `src`, `dst`, `status` done / skipped / failed /
    pending, `error`, `seconds`, `note`), `.count(status)`, `.line()`, `.interrupted`. `report`:
    also write it as JSON; `contact_sheet`: an image file of the first 24 inputs beside their
    outputs. Every place written is checked first, before any work. `dry_run`: only read the
    files' headers and print what would be done; nothing is written, not even the report.
    With `progress`, prints the backend line, a progress bar and where the sheet went to stderr.
    `workers`: decode and encode threads (default 2). `ray`: run on the Ray cluster at this address
    instead (local or auto; cluster.py), with `workers` actors (default: sized to the cluster);
    the plan, summary and report are the same; videos do not run on Ray yet. With `ray`, `paths`,
    `output` and `report` may be URIs (s3://bucket/prefix, gs://..., file:///abs/path; uris.py).

    Videos (.mp4 .m4v .mov .mkv .webm .avi; the `video` extra) keep their name and container and
    go through Stylizer.stylize_video with `stabilize`, `stability` and `crf`; their jobs also
    get `frames` and `fps` (frames stylised per second)."""
    from . import batch, interrupts, manifest
    from .uris import URIPath, location

    paths = [location(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    output = location(output)
    report = location(report) if report is not None else None
    _check_uris(paths, output, report, contact_sheet, ray)
    batch.check_output_places(output, report, Path(contact_sheet) if contact_sheet is not None else None)
    check_options(style, **options)
    check_video_options(stability=stability, crf=crf)
    if ray is not None:
        from .cluster import check_address

        check_address(ray)
    for path in paths:
        if not (path.exists() if isinstance(path, URIPath) else os.path.lexists(path)):
            raise ImageError(f"{path}: no such file or folder")
    jobs = batch.plan(paths, output, format, overwrite)
    videos = [job for job in jobs if job.is_video]
    video = dict(stabilize=stabilize, stability=stability, crf=crf)
    made_with = _settings(_style_list(style), format, video=video if videos else None, **options)
    manifest.check(output, made_with, overwrite)
    if options.get("method") == "gatys":
        batch.refuse(videos, NO_GATYS_VIDEO)
    if ray is not None:
        batch.refuse(videos, NO_RAY_VIDEO)
    if dry_run:  # before any weights are loaded or graphs exported
        return batch.dry_run(jobs, workers or 2, options.get("max_size"))
    batch.summary_on_interrupt(jobs, report)
    if ray is not None:  # every actor builds its own Stylizer from the same style and options
        from . import cluster

        # the first actor whose Stylizer loads writes the manifest, as the local runner does below
        summary = cluster.run(jobs, ray, style, options, quality=quality, keep_exif=keep_exif, workers=workers,
                              progress=progress, verbose=verbose, started=interrupts.started(),
                              made_with=(output, made_with))
    else:
        stylizer = Stylizer(style, progress=progress, **options)
        if progress and stylizer.method != "gatys":
            print(f"backend: {stylizer.backend}", file=sys.stderr, flush=True)
        manifest.write(output, made_with, jobs)  # once the weights and styles have loaded

        def stylize_video(job: Job) -> VideoResult:  # inside batch.run, with the engine started
            from .video import stylize_video

            return stylize_video(job.src, job.dst, stylizer._stylize_arrays,
                                 stylizer.video_options(**video, progress=progress))

        summary = batch.run(jobs, stylizer.runner, stylizer.batch_size, stylizer.max_size, quality, workers or 2,
                            progress=progress, tile_size=stylizer.tile_size, keep_exif=keep_exif, verbose=verbose,
                            started=interrupts.started(), video=stylize_video)
    if report is not None:
        batch.write_report(summary, report)
    if contact_sheet is not None:
        from .sheet import run_sheet

        line = run_sheet(summary.jobs, contact_sheet)
        if line and progress:
            print(line, file=sys.stderr, flush=True)
    return summary


def _check_uris(paths: list, output, report, contact_sheet, ray: str | None) -> None:
    """URIs only where they work: with the Ray runner (the local runner, its videos and contact
    sheet read and write local files)."""
    from .uris import URIPath, is_uri

    if is_uri(contact_sheet):
        raise OptionError(f"{contact_sheet}: the contact sheet is written to a local file; give a path", "contact_sheet")
    uri = next((p for p in (*paths, output, report) if isinstance(p, URIPath)), None)
    if uri is not None and ray is None:
        raise OptionError(f"{uri} is a URI; only the Ray runner reads and writes URIs: add --ray local "
                          "(a Ray started here), or --ray auto on a cluster", "ray")


def _settings(styles: list[StyleLike], format: str | None, *, method="adain", alpha=1.0, style_weights=None,
              masks=None, preserve_color=False, style_colors=None, model=None, vgg=None, max_size=None, steps=300,
              video=None, **unused) -> dict:
    """What the output manifest records for these options (manifest.settings); `video`: the video
    options, where the run has videos."""
    from . import manifest

    return manifest.settings(method, [_style_spec(s) for s in styles], style_weights, _path(model), _path(vgg),
                             alpha, preserve_color, max_size, format, steps, masks,
                             uses_style_colors(method, preserve_color, style_colors), video)


def uses_style_colors(method: str, preserve_color: bool, style_colors: bool | None) -> bool:
    """style_colors' default: on for AdaIN unless the photo's colours are kept."""
    return method == "adain" and not preserve_color if style_colors is None else style_colors


_OPTION_NAMES = ("method", "alpha", "style_weights", "masks", "preserve_color", "style_colors", "model", "vgg",
                 "backend", "device", "precision", "max_size", "tile_size", "batch_size", "graphs", "steps", "progress")
