"""The small manifest an output folder of `nst-fast run` holds: what made its images.

A rerun with the same settings resumes (existing outputs are skipped); a run with other settings
into the same folder would otherwise skip every file that exists and mix two styles in one
folder, so it stops instead, unless told to overwrite. Folders that hold a manifest are outputs,
and the walker does not take them as inputs.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .errors import NSTError
from .fileio import atomic_path

MANIFEST = "nst-fast.json"


def settings(method: str, styles: list, style_weights: list[float] | None, model: str | None, vgg: str | None,
             alpha: float, preserve_color: bool, max_size: int | None, fmt: str | None, steps: int,
             masks: list | None = None, style_colors: bool = False, video: dict | None = None) -> dict:
    """What changes the pictures, with the weights, style and mask files by content hash, so a
    replaced file counts as another setting (styles and masks given as pixels, by their pixels'
    hash). Backend and precision change them by a level or two: not kept. `video`: the
    stabilisation and encoder settings, for runs that hold videos."""
    from .graphs import transformer_path
    from .models import DEFAULT_DECODER
    from .styles import find_style
    from .weights import sha256_file

    made = {"method": method, "alpha": alpha, "preserve_color": preserve_color, "max_size": max_size,
            "format": fmt or "as input", "vgg": vgg or "default"}
    if method == "transformer":
        made["style"] = styles[0]
        made["weights_sha256"] = sha256_file(transformer_path(styles[0], model))[:16]
    else:
        made["style"] = [_described(s, find_style if method == "adain" else Path) for s in styles]
        made["style_weights"] = list(style_weights or [])
    if masks:  # only then, so the manifests of runs without masks stay as they were
        made["masks"] = [_described(m, Path) for m in masks]
    if video:  # likewise only for runs with videos
        made["video"] = dict(video)
    if method == "adain":
        made["style_colors"] = style_colors
        made["weights_sha256"] = sha256_file(Path(model) if model else DEFAULT_DECODER)[:16]
    if method == "gatys":
        made["steps"] = steps
    return made


def _described(thing, find) -> str:
    """A style or mask as its name and content hash: a file's (`find` gives the file a name
    stands for), or the pixels' of an image."""
    from .weights import sha256_file

    if isinstance(thing, (str, os.PathLike)):
        return f"{Path(thing).stem} ({sha256_file(find(os.fspath(thing)))[:16]})"
    pixels = np.ascontiguousarray(thing)
    return f"image {pixels.shape[1]}x{pixels.shape[0]} ({hashlib.sha256(pixels.tobytes()).hexdigest()[:16]})"


def read(folder) -> dict | None:
    """The settings recorded in `folder`, None where it holds no manifest."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))["settings"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise NSTError(f"{path}: unreadable nst-fast manifest ({type(e).__name__}); "
                       "remove it, or pass --overwrite to redo the folder") from None


def check(folder: Path, made: dict, overwrite: bool) -> None:
    """Stop before any work when `folder` holds outputs made with other settings (unless `overwrite`,
    which redoes them all)."""
    before = None if overwrite else read(folder)
    if before is None or before == made:
        return
    changed = [f"{k} {before.get(k, '-')} -> {made.get(k, '-')}" for k in sorted(set(before) | set(made))
               if before.get(k) != made.get(k)]
    raise NSTError(f"{folder}: holds outputs made with other settings ({'; '.join(changed)}); "
                   "use another -o, or --overwrite to redo them with these")


def write(folder: Path, made: dict, jobs) -> None:
    """Record `made` in `folder` when the run has something to write there (none: e.g. every output
    would overwrite an input, so -o is the photos' own folder, which then stays as it was)."""
    if any(job.status == "pending" for job in jobs):
        record(folder, made)


def record(folder, made: dict) -> None:
    """Write the manifest: by the runner once the weights and styles have loaded, before the first
    output, so a folder never holds outputs that no manifest describes (`folder`: a Path or URIPath)."""
    from importlib.metadata import version

    with atomic_path(folder / MANIFEST) as tmp:
        tmp.write_text(json.dumps({"made_by": f"nst-fast {version('nst-fast')}", "settings": made}, indent=1) + "\n",
                       encoding="utf-8")


def is_output_folder(folder: Path) -> bool:
    return (folder / MANIFEST).is_file()
