"""Image files in and out: every input decodes to uint8 H x W x 3 RGB or fails with one ImageError line."""
from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

from .errors import ImageError
from .fileio import atomic_path
from .uris import URIPath, UnreadableURI, as_path

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}

# Formats we write, by suffix; other inputs (bmp, tif, gif) come out as PNG.
_SAVE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


@dataclass
class Decoded:
    pixels: np.ndarray  # uint8 H x W x 3 RGB, upright; sRGB unless `icc` says otherwise
    exif: bytes | None = None  # the file's EXIF with orientation 1 (only when metadata is kept)
    icc: bytes | None = None  # the RGB profile `pixels` are in (only when metadata is kept)
    note: str = ""  # what a user should know about the decode, e.g. that a GIF was animated


def load_image(path: str | os.PathLike, max_size: int | None = None) -> np.ndarray:
    """Decode `path` to uint8 sRGB (H x W x 3), upright, its long side at most `max_size`."""
    return decode_image(path, max_size).pixels


def decode_image(path: str | os.PathLike, max_size: int | None = None, keep_metadata: bool = False) -> Decoded:
    """load_image, and what an output needs to keep (`keep_metadata`: EXIF, and an RGB ICC
    profile instead of converting to sRGB)."""
    path = as_path(path)
    try:
        return _decode(path, max_size, keep_metadata)
    except Exception as e:  # Pillow's plugins raise many types on bad data; the batch needs one
        raise ImageError(f"{path}: {_reason(path, e)}") from e


def check_image(path: str | os.PathLike) -> str:
    """Read only the header of `path`: raise ImageError where a decode would fail early (not an
    image, bomb, unreadable), else return its note (see Decoded). Truncated data shows only on decode."""
    path = as_path(path)
    try:
        with _open(path) as im:
            return _frames_note(im)
    except Exception as e:
        raise ImageError(f"{path}: {_reason(path, e)}") from e


def image_files(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files in `folder` (and below it), sorted by path."""
    found = Path(folder).rglob("*") if recursive else Path(folder).iterdir()
    return sorted(p for p in found if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def fit_size(size: tuple[int, int], limit: int) -> tuple[int, int]:
    """(w, h) scaled so that the long side is `limit`, keeping the aspect ratio."""
    w, h = size
    scale = limit / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


@contextlib.contextmanager
def _open(path: Path | URIPath):
    # a URI's bytes are read whole: an object store has no cheap seeks, and photos fit in memory
    source = io.BytesIO(path.read_bytes()) if isinstance(path, URIPath) else path
    with warnings.catch_warnings():
        # Pillow only warns between 1x and 2x its pixel limit; a batch job must refuse, not log.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = Image.open(source)  # animated GIF/WebP open on their first frame, which is what we use
    with im:
        _check_pixels(im)
        yield im


def _decode(path: Path | URIPath, max_size: int | None, keep_metadata: bool) -> Decoded:
    with _open(path) as im:
        note = _frames_note(im)  # before load(): counting frames may seek
        if max_size and max(im.size) > max_size:
            # JPEG can decode at 1/2..1/8 scale directly, far cheaper than a full decode then resize.
            im.draft(im.mode, tuple(-(-d * max_size // max(im.size)) for d in im.size))
        im.load()  # inside the caller's try, so truncated data fails here rather than later
        upright = ImageOps.exif_transpose(im)  # a copy: its EXIF can be changed
        exif = _upright_exif(upright) if keep_metadata else None
        rgb, icc = _to_srgb(upright, im.info.get("icc_profile"), keep_metadata)
    if max_size and max(rgb.size) > max_size:
        rgb = rgb.resize(fit_size(rgb.size, max_size), Image.LANCZOS, reducing_gap=3.0)
    return Decoded(np.array(rgb), exif, icc, note)  # np.array: a writable copy


def _frames_note(im: Image.Image) -> str:
    frames = getattr(im, "n_frames", 1)
    return f"{im.format} with {frames} frames: the first one used" if frames > 1 else ""


def _upright_exif(im: Image.Image) -> bytes | None:
    exif = im.getexif()
    if not exif:
        return None
    exif[ExifTags.Base.Orientation] = 1  # the pixels are upright now
    return exif.tobytes()


_PROFILE_MODES = {"RGB": "RGB", "CMYK": "CMYK", "GRAY": "L"}  # ICC colour space -> Pillow mode


def _to_srgb(im: Image.Image, icc: bytes | None, keep: bool) -> tuple[Image.Image, bytes | None]:
    """RGB pixels and the ICC profile they are in (None: sRGB). An embedded profile is applied, so
    colours stay right once it is gone; with `keep`, an RGB profile is carried instead (CMYK and
    grey profiles cannot describe RGB output, so those are always applied)."""
    profile = _read_profile(icc)
    if profile is None:
        return _to_rgb(im), None
    mode = _PROFILE_MODES.get(profile.profile.xcolor_space.strip())
    if mode == "RGB":
        rgb = _to_rgb(im)  # alpha composited first: profiles take RGB
        return (rgb, icc) if keep else (_apply(rgb, profile), None)
    if mode is not None and im.mode == mode:
        # e.g. a CMYK print file: its profile is far truer than Pillow's naive CMYK formula
        return _apply(im, profile), None
    return _to_rgb(im), None  # a profile that does not fit the pixels: ignore it


def _apply(im: Image.Image, profile) -> Image.Image:
    # a fresh sRGB profile per call: LittleCMS profile handles are not shared between threads
    return ImageCms.profileToProfile(im, profile, ImageCms.createProfile("sRGB"), outputMode="RGB")


def _read_profile(icc: bytes | None):
    if not icc:
        return None
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError):  # a damaged profile: the pixels are still good
        return None


def _check_pixels(im: Image.Image) -> None:
    # catch_warnings is not thread-safe and the batch decodes in threads: repeat Pillow's check so
    # a lost warning filter cannot let a bomb through. Same message shape, so _reason parses both.
    pixels = im.width * im.height
    if Image.MAX_IMAGE_PIXELS and pixels > Image.MAX_IMAGE_PIXELS:
        raise Image.DecompressionBombError(f"Image size ({pixels} pixels) exceeds limit")


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode.startswith("I") or im.mode == "F":  # I, I;16, I;16B, F: more than 8 bits of grey
        return Image.fromarray(_wide_grey_to_uint8(im)).convert("RGB")
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        # Transparent regions are usually meant as "paper"; black would turn into dark blotches.
        white = Image.new("RGBA", im.size, "white")
        return Image.alpha_composite(white, im.convert("RGBA")).convert("RGB")
    return im.convert("RGB")


def _wide_grey_to_uint8(im: Image.Image) -> np.ndarray:
    grey = np.nan_to_num(np.asarray(im, dtype=np.float32))
    if im.mode != "F":
        scale = 255 / 65535  # 16-bit samples (v -> v/257); 'I' comes from 16-bit files too
    else:
        # Float images carry no scale; [0, 1] is the usual convention, otherwise assume 0..255.
        scale = 255.0 if grey.size and grey.max() <= 1.0 else 1.0
    return np.clip(np.rint(grey * scale), 0, 255).astype(np.uint8)


def _reason(path: Path | URIPath, e: Exception) -> str:
    """A short human reason for a failed decode."""
    if isinstance(e, UnreadableURI):
        return str(e)
    if path.is_symlink() and not path.exists():
        return ("symbolic link loop" if getattr(e, "errno", None) == errno.ELOOP
                else f"broken symbolic link (to {os.readlink(path)})")
    if isinstance(e, FileNotFoundError):
        return "no such file"
    if isinstance(e, IsADirectoryError):
        return "is a directory, not an image"
    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, UnidentifiedImageError):
        return "empty file" if path.stat().st_size == 0 else "not an image Pillow can read"
    if isinstance(e, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        found = _BOMB_PIXELS.search(str(e))
        pixels = found[1] if found else "too many"
        return (f"image has {pixels} pixels, above the limit of {Image.MAX_IMAGE_PIXELS} "
                f"(Pillow's decompression-bomb guard)")
    message = " ".join(str(e).split())  # the reason must stay on one line
    if isinstance(e, OSError) and re.search(r"truncated|broken data stream", message, re.IGNORECASE):
        return "truncated image"
    return f"cannot decode image ({type(e).__name__}: {message})"


def save_image(array: np.ndarray, path: str | os.PathLike, quality: int = 95, exif: bytes | None = None,
               icc: bytes | None = None) -> None:
    """Write uint8 H x W x 3 RGB to `path`, format by suffix, atomically (never a half-written file),
    with the given EXIF and ICC profile if any."""
    path = as_path(path)
    fmt = _SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: cannot write {path.suffix or 'files without a suffix'!r}; "
                         f"use one of {', '.join(sorted(_SAVE_FORMATS))}")
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{path}: expected uint8 H x W x 3, got {array.dtype} {array.shape}")
    image = Image.fromarray(array)
    metadata = {k: v for k, v in (("exif", exif), ("icc_profile", icc)) if v}
    with atomic_path(path) as tmp:
        # tmp ends in .part: name the format
        image.save(tmp, format=fmt, **_save_options(fmt, quality), **metadata)


def check_output_path(path: str | os.PathLike) -> None:
    """Refuse an output name we cannot write before any work is done for it."""
    if Path(path).suffix.lower() not in _SAVE_FORMATS:
        raise ImageError(f"{path}: cannot write {Path(path).suffix or 'files without a suffix'!r}; "
                         f"use one of {', '.join(sorted(_SAVE_FORMATS))}")


def _save_options(fmt: str, quality: int) -> dict:
    if fmt == "JPEG":
        # 4:2:0 chroma subsampling smears the fine colour texture that stylised images are made of.
        return {"quality": quality, "subsampling": 0 if quality >= 90 else 2}
    if fmt == "WEBP":
        return {"quality": quality}
    return {}


def output_suffix(path: str | os.PathLike, fmt: str | None) -> str:
    """The suffix an output gets: `fmt` when given, else the input's own if we can write it, else .png."""
    if fmt:
        suffix = "." + fmt.lower().lstrip(".")
        if suffix not in _SAVE_FORMATS:
            raise ValueError(f"unknown output format {fmt!r}; use one of jpg, png, webp")
        return suffix
    suffix = as_path(path).suffix.lower()
    return suffix if suffix in _SAVE_FORMATS else ".png"


# The AdaIN graph mirrors 32 px around an image (adain.MARGIN), which needs more than 32 px to
# mirror, and the networks downsample 8x: nothing smaller than 40 px goes in (smaller images are
# padded up to it and cut back after).
MIN_SIDE = 40


def pad_to_multiple(array: np.ndarray, multiple: int = 8, minimum: int = MIN_SIDE) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad bottom and right so H and W divide by `multiple` and are at least `minimum`; also return
    the original (h, w)."""
    h, w = array.shape[:2]
    padded = array
    for axis, size in ((0, h), (1, w)):
        pad = max(-size % multiple, minimum - size)
        if pad:
            widths = [(0, 0)] * array.ndim
            widths[axis] = (0, pad)
            # Reflection hides the seam best, but needs more pixels than the pad to mirror.
            padded = np.pad(padded, widths, mode="reflect" if pad < size else "edge")
    return padded, (h, w)


def crop_to(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The top-left h x w of `array`: undoes pad_to_multiple."""
    h, w = size
    return array[:h, :w]
