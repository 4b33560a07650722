"""One runner interface, one small class per backend (as Polygraphy's runners):
`activate()`, `infer(uint8 N x H x W x 3) -> uint8 N x H x W x 3`, `close()`."""
from .base import Runner

__all__ = ["Runner"]
