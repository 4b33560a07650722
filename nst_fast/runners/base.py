from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Runner(ABC):
    """Runs one stylisation graph on batches of uint8 RGB images of one padded shape."""

    name = "runner"

    def activate(self) -> None:
        """Load weights / build the engine; called once before the first `infer`."""

    @abstractmethod
    def infer(self, images: np.ndarray) -> np.ndarray:
        """uint8 N x H x W x 3 in, uint8 N x H x W x 3 out (H, W multiples of 8)."""

    def close(self) -> None:
        """Free what `activate` took."""

    def stylize(self, image: np.ndarray) -> np.ndarray:
        """One uint8 H x W x 3 image of any size: padded to what the graph needs, then cropped back."""
        from ..images import crop_to, pad_to_multiple

        padded, size = pad_to_multiple(image)
        return crop_to(self.infer(padded[None])[0], size)

    def __enter__(self):
        self.activate()
        return self

    def __exit__(self, *exc):
        self.close()
