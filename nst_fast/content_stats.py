"""Smoothing AdaIN's content statistics over the frames of a video.

AdaIN normalises each frame by its own relu4_1 channel mean and std; these jump a little from frame
to frame (a bright object enters, noise), and every jump changes the whole frame's tone: global
flicker. A moving average of the statistics over time removes most of it, reset at scene cuts.

The stylizer offers this through the `ContentStatistics` hook (the video job uses it where given):
  - content_statistics(frames) -> (mean, std): float32 N x C each, what AdaIN normalises by;
  - stylize_with_statistics(frames, own, target) -> frames: stylise, normalising frame i by
    target = (mean, std)[i] instead of its own statistics own = content_statistics(frames)
    (passed back so they are computed once).
`AdaINRunnerStatistics` implements it for the AdaIN runner of nst_fast.methods (AdaINRegions), with
the same trick as tiling (adain.statistics_for_tile): the graph is unchanged, only its style inputs
are moved, at the cost of one more encoder pass per frame to read the frame's own statistics.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from .adain import mean_std, statistics_for_tile
from .errors import NSTError
from .images import crop_to, pad_to_multiple


class ContentStatistics(Protocol):
    def content_statistics(self, frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]: ...

    def stylize_with_statistics(self, frames: list[np.ndarray], own: tuple[np.ndarray, np.ndarray],
                                target: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]: ...


class MovingAverage:
    """Exponential moving average of (mean, std) rows: s_t = m * s_{t-1} + (1 - m) * x_t."""

    def __init__(self, momentum: float = 0.8):
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.state: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, mean: np.ndarray, std: np.ndarray, cuts: list[bool]) -> tuple[np.ndarray, np.ndarray]:
        """Smooth N frames' rows in order; a frame with cuts[i] starts afresh from its own."""
        out_mean, out_std = np.empty_like(mean), np.empty_like(std)
        for i, cut in enumerate(cuts):
            if self.state is None or cut:
                self.state = mean[i], std[i]
            else:
                m = self.momentum
                self.state = m * self.state[0] + (1 - m) * mean[i], m * self.state[1] + (1 - m) * std[i]
            out_mean[i], out_std[i] = self.state
        return out_mean, out_std


def padded_batch(frames: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Frames of one size, padded to what the graphs need, as one N x H x W x 3 batch."""
    padded = [pad_to_multiple(f) for f in frames]
    return np.stack([p for p, _ in padded]), [size for _, size in padded]


class AdaINRunnerStatistics:
    """ContentStatistics for methods.adain_runner's runner (an AdaINRegions: it holds the style
    encoder, the style statistics and alpha), without masks."""

    def __init__(self, runner):
        self.runner = runner

    @torch.no_grad()
    def content_statistics(self, frames):
        batch, _ = padded_batch(frames)
        mean, std = (t.flatten(1) for t in mean_std(self.runner.features(batch)))
        return mean.cpu().numpy(), std.cpu().numpy()

    def stylize_with_statistics(self, frames, own, target):
        from .methods import Delegate, adain_feeds

        if self.runner.masks:
            raise NSTError("smoothing the content statistics of masked styles over time is not supported")
        batch, sizes = padded_batch(frames)
        style = self.runner.styles[0](batch)
        moved = statistics_for_tile(*style, *(torch.from_numpy(a) for a in (*own, *target)))
        feeds = adain_feeds(*(s.float() for s in moved), self.runner.alpha)
        out = Delegate(self.runner, lambda images: feeds).infer(batch)
        return [crop_to(o, size) for o, size in zip(out, sizes)]
