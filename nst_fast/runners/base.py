from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

import numpy as np

from ..errors import NSTError

# extra_inputs(images) -> the graph's inputs besides `images`, as numpy arrays by name
# (AdaIN: style_mean and style_std, float32 1 x 512 or N x 512, and alpha, float32 of shape (1,)).
ExtraInputs = Callable[[np.ndarray], dict[str, np.ndarray]]


class NonFiniteOutput(NSTError):
    def __init__(self, message: str, items: list[int], half: bool = False):
        super().__init__(message)
        self.items, self.half = items, half  # half: the runner computes in FP16


class Runner(ABC):
    """Runs one stylisation graph (DESIGN.md, graph contract) on batches of uint8 RGB images of one
    padded shape. Subclasses implement `execute`; `infer` adds the inputs that are the same for
    every backend (style statistics, strength)."""

    name = "runner"
    half = False  # computes in FP16; set by whoever builds the runner where it does

    def __init__(self, extra_inputs: ExtraInputs | None = None):
        self.extra_inputs = extra_inputs or (lambda images: {})

    def activate(self) -> None:
        """Load weights / build the engine; called once before the first `infer`."""

    @abstractmethod
    def execute(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph on named inputs (`images`: uint8 N x H x W x 3, H and W multiples of 8);
        return its outputs by name (`stylized`: uint8 N x H x W x 3; `finite`: bool N)."""

    def infer(self, images: np.ndarray) -> np.ndarray:
        """uint8 N x H x W x 3 in, uint8 N x H x W x 3 out (H, W multiples of 8)."""
        images = np.ascontiguousarray(images)
        outputs = self.execute({"images": images, **self.extra_inputs(images)})
        finite = outputs.get("finite")
        if finite is not None and not finite.all():
            bad = np.flatnonzero(~finite.astype(bool)).tolist()
            hint = " (overflow in reduced precision?)" if self.half else ""
            raise NonFiniteOutput(f"{self.name}: NaN or inf in the output of batch item(s) {bad}{hint}", bad, self.half)
        return outputs["stylized"]

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
