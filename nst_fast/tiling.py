"""Large images as overlapping tiles, blended back with feathered weights so no seam shows.

An image whose padded side exceeds the tile size is cut into tiles of at most `tile` x `tile`
pixels (at least MIN_TILE); neighbouring tiles share at least `overlap` pixels. Near its edges a network's output is
wrong (its padding stands in for the missing neighbours): measured with the bundled AdaIN decoder,
the error falls from ~90 levels at the edge to the interior's ~5 only 32-40 px in. So across a
shared band each tile's weight is 0 for its outer `overlap / 4` pixels, then ramps linearly to 1,
and the weights are normalised to sum to 1 at every pixel: a smooth cross-fade between the good
parts of both tiles, and a constant image comes back unchanged.

Runners whose output depends on statistics of the whole input (AdaIN normalises content features
by their channel mean and std) would give each tile its own tone. Such a runner offers
`for_tiles(image, grid, size)` (see methods.AdaINRegions), returning `runner_for(indices)`: the runner to
run those tiles with, so that every tile is stylised with the statistics of the whole image.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from .errors import OptionError
from .runners import Runner

OVERLAP = 128  # pixels shared by neighbouring tiles
# The edge error is as wide at any tile size, so a smaller tile would be mostly edge: at 64 px a
# 1024 px image took 162 tiles (30x the time) and still showed a grid. At 256 the overlap is half
# the tile and a tiled image costs at most about 3x an untiled one.
MIN_TILE = 2 * OVERLAP
ALIGN = 8  # tile positions and sizes: the networks downsample 8x


def check_tile_size(tile: int) -> None:
    """Refuse a tile size (0: never tile) whose tiles could not share OVERLAP with each neighbour."""
    if 0 < tile < MIN_TILE:
        raise OptionError(f"{tile}: use 0 (no tiling) or at least {MIN_TILE} (tiles share {OVERLAP} px "
                          "with each neighbour)", "tile_size")


def needs_tiles(shape: tuple[int, ...], tile: int) -> bool:
    """Whether an image of `shape` (H, W, ...) must be tiled; `tile` 0 means never."""
    return tile > 0 and max(shape[:2]) > tile


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where tiles start along one axis: evenly spread from 0 to length - tile, multiples of 8,
    neighbours sharing at least `overlap` pixels. `length`, `tile`, `overlap`: multiples of 8."""
    if length <= tile:
        return [0]
    count = 1 + -(-(length - tile) // (tile - overlap))
    # Rounded to multiples of 8, steps stay at most tile - overlap (itself a multiple of 8).
    return [ALIGN * round(i * (length - tile) / (count - 1) / ALIGN) for i in range(count)]


@dataclass(frozen=True)
class Span:
    """One tile's extent along one axis, with its blending weight for each pixel of it."""

    start: int
    weights: np.ndarray  # float32; at every pixel of the axis, the spans covering it sum to 1

    @property
    def stop(self) -> int:
        return self.start + len(self.weights)


def spans(length: int, tile: int, overlap: int) -> list[Span]:
    starts = tile_starts(length, tile, overlap)
    size = min(tile, length)
    margin = overlap // 4  # where the network's edge error lives: weight 0
    # from a tile's edge inwards: 0 over the margin, then a linear ramp to 1 that the neighbour's
    # mirrored ramp complements to 1 across the band
    fade = np.clip((np.arange(size) - margin + 0.5) / (overlap - 2 * margin), 0, 1)
    raw = []
    for i in range(len(starts)):
        w = np.ones(size)
        if i > 0:  # a neighbour before: fade in; the image's own border keeps full weight
            w = np.minimum(w, fade)
        if i < len(starts) - 1:
            w = np.minimum(w, fade[::-1])
        raw.append(w)
    total = np.zeros(length)
    for start, w in zip(starts, raw):
        total[start:start + size] += w
    return [Span(start, (w / total[start:start + size]).astype(np.float32)) for start, w in zip(starts, raw)]


class Grid:
    """The tiles covering an H x W image (row by row) and how to blend their outputs back.

    The weights are separable (row weight times column weight), and each axis' weights sum to 1,
    so the blend needs no normalisation pass and only one float canvas."""

    def __init__(self, height: int, width: int, tile: int, overlap: int = OVERLAP):
        if tile < 2 * overlap:
            raise ValueError(f"tiles of {tile} px cannot share {overlap} px with each neighbour; "
                             f"use at least {2 * overlap} (MIN_TILE)")
        tile = tile // ALIGN * ALIGN
        self.shape = (height, width)
        self.boxes = [(rows, cols) for rows in spans(height, tile, overlap) for cols in spans(width, tile, overlap)]

    def __len__(self) -> int:
        return len(self.boxes)

    def tiles(self, image: np.ndarray) -> list[np.ndarray]:
        """Views of `image` (H x W x C), one per tile."""
        return [image[rows.start:rows.stop, cols.start:cols.stop] for rows, cols in self.boxes]

    def blend(self, outputs: Iterable[np.ndarray]) -> np.ndarray:
        """uint8 H x W x 3 from the tiles' uint8 outputs, in tile order (consumed one at a time)."""
        canvas = np.zeros((*self.shape, 3), np.float32)
        count = 0
        for (rows, cols), out in zip(self.boxes, outputs):
            weight = rows.weights[:, None, None] * cols.weights[None, :, None]
            canvas[rows.start:rows.stop, cols.start:cols.stop] += weight * out
            count += 1
        if count != len(self.boxes):
            raise ValueError(f"{count} tile outputs for {len(self.boxes)} tiles")
        return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


RunnerFor = Callable[[list[int]], Runner]


def runner_for_tiles(runner: Runner, image: np.ndarray, grid: Grid, size: tuple[int, int]) -> RunnerFor:
    """`runner_for(indices)`: what to run those tiles of the padded `image` with (see the module's
    docstring); `size` is the image's (h, w) before padding."""
    hook = getattr(runner, "for_tiles", None)
    return hook(image, grid, size) if hook else (lambda indices: runner)
