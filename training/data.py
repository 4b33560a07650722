"""Training images: a recursive folder of photos or paintings, sampled as random crops.

The folder can also lie inside an uncompressed tar archive, named as a path through it
(`.gpu/train.tar/content`: the members under `content/`); its files are read into memory once.
`make gpu-pack` writes such an archive, so a GPU machine gets the training crops as one file.

A batch is a pure function of (seed, step), so a resumed run sees exactly the batches an
unbroken run would have seen, with no loader state to save.
"""
from __future__ import annotations

import io
import random
import tarfile
import warnings
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image

from nst_fast.errors import NSTError
from nst_fast.images import IMAGE_EXTENSIONS, image_files, load_image

SAMPLES = 4  # photos (and styles) on a training run's sample sheets


def split_archive(root: Path) -> tuple[Path, str] | None:
    """(archive, folder inside it) when `root` is a path through a .tar file, else None."""
    for parent in (root, *root.parents):
        if parent.suffix == ".tar" and parent.is_file():
            return parent, root.relative_to(parent).as_posix()
    return None


def read_archive(archive: Path, folder: str) -> dict[PurePosixPath, bytes]:
    """The image members of `archive` under `folder` ('.' for all), by member path."""
    prefix = "" if folder == "." else folder.rstrip("/") + "/"
    try:
        with tarfile.open(archive) as tar:
            return {PurePosixPath(m.name): tar.extractfile(m).read() for m in tar.getmembers()
                    if m.isfile() and m.name.startswith(prefix) and Path(m.name).suffix.lower() in IMAGE_EXTENSIONS}
    except (tarfile.TarError, OSError) as e:
        raise NSTError(f"{archive}: not a readable tar archive ({e})") from None


class ImageFolder:
    def __init__(self, root: str | Path, crop: int, min_side: int | None = None):
        self.root, self.crop = Path(root), crop
        min_side = min_side or crop // 2
        inside = split_archive(self.root)
        if not inside and not self.root.is_dir():
            raise NSTError(f"{self.root}: no such folder of training images (nor a folder inside a .tar archive)")
        self.blobs = read_archive(*inside) if inside else None
        files = sorted(self.blobs) if inside else image_files(self.root)
        self.files = [p for p in files if self._usable(p, min_side)]
        if not self.files:
            raise NSTError(f"{self.root}: no usable training images (need RGB, shorter side >= {min_side} px)")

    def open(self, path: Path | PurePosixPath) -> Image.Image:
        """One of `files`, from the folder or from the archive's bytes in memory."""
        return Image.open(io.BytesIO(self.blobs[path]) if self.blobs is not None else path)

    def _usable(self, path: Path, min_side: int) -> bool:
        try:
            with self.open(path) as im:
                mode, size = im.mode, im.size
        except Exception as e:  # Pillow raises many types for broken files
            warnings.warn(f"skipping {path}: unreadable ({e})")
            return False
        if mode in ("L", "LA", "1", "I;16", "I", "F"):
            warnings.warn(f"skipping {path}: greyscale")
            return False
        if min(size) < min_side:
            warnings.warn(f"skipping {path}: {size[0]}x{size[1]} is smaller than {min_side} px")
            return False
        return True

    def __len__(self) -> int:
        return len(self.files)

    def random_crop(self, rng: random.Random) -> np.ndarray:
        """A random file, rescaled so its shorter side lies in [crop, 2 crop] (never upscaled beyond
        what the crop needs), randomly cropped and flipped; uint8 H x W x 3."""
        while True:
            path = self.files[rng.randrange(len(self.files))]
            try:
                with self.open(path) as im:
                    im = im.convert("RGB")
                    break
            except Exception as e:
                warnings.warn(f"skipping {path} this time: {e}")
        short = min(im.size)
        target = max(self.crop, min(short, rng.randint(self.crop, 2 * self.crop)))
        scale = target / short
        im = im.resize((max(self.crop, round(im.width * scale)), max(self.crop, round(im.height * scale))),
                       Image.BICUBIC)
        x, y = rng.randint(0, im.width - self.crop), rng.randint(0, im.height - self.crop)
        arr = np.asarray(im.crop((x, y, x + self.crop, y + self.crop)))
        return arr[:, ::-1] if rng.random() < 0.5 else arr

    def batch(self, size: int, seed: int, step: int) -> torch.Tensor:
        """float N x 3 x crop x crop in [0, 1]; the same (seed, step) always gives the same batch."""
        rng = random.Random(f"{seed}:{step}:{self.root}")
        arr = np.stack([self.random_crop(rng) for _ in range(size)])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255.0

    def samples(self, size: int, count: int = SAMPLES) -> list[np.ndarray]:
        """Centre crops of `count` files spread over the set: the same every run, so sample sheets
        compare."""
        paths = self.files[:: max(1, len(self.files) // count)][:count]
        if self.blobs is None:
            return centre_crops([load_image(path) for path in paths], size)
        return centre_crops([np.asarray(self.open(path).convert("RGB")) for path in paths], size)


def centre_crops(images: list[np.ndarray], size: int) -> list[np.ndarray]:
    """Square centre crops, the shorter side scaled to `size`; uint8 H x W x 3."""
    crops = []
    for array in images:
        image = Image.fromarray(array)
        image = rescale(image, size / min(image.size), minimum=size)
        x, y = (image.width - size) // 2, (image.height - size) // 2
        crops.append(np.asarray(image.crop((x, y, x + size, y + size))))
    return crops


def image_tensor(path: str | Path, size: int) -> torch.Tensor:
    """1 x 3 x H x W in [0, 1], the longer side scaled (up or down) to `size`."""
    image = Image.fromarray(load_image(path))
    image = rescale(image, size / max(image.size))
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].float() / 255.0


def rescale(image: Image.Image, scale: float, minimum: int = 1) -> Image.Image:
    size = (max(minimum, round(image.width * scale)), max(minimum, round(image.height * scale)))
    return image.resize(size, Image.LANCZOS)
