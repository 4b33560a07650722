"""Pictures of a training run: loss curves from its log.jsonl."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np


def read_log(path: str | Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")


def plot_losses(log: str | Path, out: str | Path, keys=("content", "style"), title: str = "") -> Path:
    """One panel per loss, raw (faint) and smoothed, log scale; written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(log)
    steps = np.array([r["step"] for r in records])
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        values = np.array([r[key] for r in records])
        window = max(1, len(values) // 50)
        ax.plot(steps, values, alpha=0.25, lw=0.8)
        ax.plot(steps[window - 1:], smooth(values, window), lw=1.5)
        ax.set(title=f"{key} loss", xlabel="step", yscale="log")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)


def plot_run(out: Path, keys: tuple[str, ...], title: str) -> None:
    """OUT/losses.png from OUT/log.jsonl, or a warning where matplotlib is missing: it is a dev/demo
    extra, and the weights matter more than the plot."""
    try:
        plot_losses(out / "log.jsonl", out / "losses.png", keys=keys, title=title)
    except ImportError as e:
        warnings.warn(f"no loss plot ({e}); pip install matplotlib")
