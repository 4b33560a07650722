"""Training state on disk: model, optimiser, scheduler, step, RNG and config, written atomically."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from nst_fast.errors import WeightsError
from nst_fast.fileio import atomic_path


def save_checkpoint(directory: Path, step: int, model, optimizer, scheduler, config: dict, keep: int = 3,
                    scaler=None, averaged=None) -> Path:
    """`scaler` is an FP16 GradScaler, whose loss scale is part of the training state; `averaged` a
    moving average of the model's weights (torch.optim.swa_utils.AveragedModel)."""
    path = Path(directory) / f"step{step:07d}.pt"
    state = {
        "step": step, "config": config,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "averaged": averaged.state_dict() if averaged is not None else {},
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    for old in sorted(Path(directory).glob("step*.pt"))[:-keep]:
        old.unlink()
    return path


def clear_checkpoints(directory: Path) -> None:
    """For a fresh start: an older run's later steps would outrank the new run's checkpoints."""
    for old in Path(directory).glob("step*.pt"):
        old.unlink()


def latest_checkpoint(directory: Path) -> Path | None:
    found = sorted(Path(directory).glob("step*.pt"))
    return found[-1] if found else None


def load_checkpoint(path: Path, model, optimizer, scheduler, scaler=None, averaged=None) -> tuple[int, dict]:
    """Restore everything in place; returns (step, config). A damaged file is a WeightsError naming it.
    An average the checkpoint lacks (a run that had none) starts afresh from the model."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):  # empty when saved without FP16 scaling
            scaler.load_state_dict(state["scaler"])
        if averaged is not None and state.get("averaged"):
            averaged.load_state_dict(state["averaged"])
    except Exception as e:
        raise WeightsError(f"{path}: not a usable checkpoint for this model ({type(e).__name__}: {e})") from None
    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    return state["step"], state["config"]
