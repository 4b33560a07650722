"""Training recipes: every knob with its default, importable without torch (the CLI reads them)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AdaINConfig:
    content: str
    style: str
    out: str = "runs/adain"
    steps: int = 3000
    batch_size: int = 8
    crop: int = 128
    lr: float = 5e-4
    lr_decay: float = 5e-5
    style_weight: float = 1.0
    content_weight: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    keep: int = 3
    device: str = "cpu"
    vgg: str | None = None
    threads: int | None = None
