"""The bookkeeping every training loop here shares, so each loop file holds only its recipe:
resuming from the latest checkpoint, the JSONL log, the progress bar, checkpoints every N steps
and at exit (Ctrl-C included), batches decoded one step ahead, and mixed precision.
"""
from __future__ import annotations

import json
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator

import torch
from tqdm import tqdm

from nst_fast.errors import WeightsError
from nst_fast.interrupts import on_interrupt, sigterm_as_interrupt
from training.checkpoint import clear_checkpoints, latest_checkpoint, load_checkpoint, save_checkpoint

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# Models and batches in channels_last: it feeds cuDNN's tensor cores, and oneDNN's faster NHWC
# kernels on CPU too (AdaIN step, 2-core AVX-512 EPYC: FP32 5.7 -> 6.5 images/s, bf16 9.1 -> 11.1)
LAYOUT = torch.channels_last


def open_log(path: Path, start: int):
    """The JSONL log for appending, without records past `start` (left by a run killed after its
    last checkpoint), so a resumed run's log has each step once."""
    if path.exists():
        keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= start]
        path.write_text("".join(line + "\n" for line in keep))
    return open(path, "a")


def prepare(cfg) -> torch.device:
    """Threads, seed and device of a run, before any model is built."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    if device.type == "cpu" and cfg.amp == "bf16":
        from nst_fast.backends import cpu_bf16

        if not cpu_bf16():  # measured on an AVX2-only AMD EPYC: 50-60 s a transformer step against 3.6 in FP32
            warnings.warn("--amp bf16 on a CPU without bf16 instructions (AMX or AVX-512 BF16) is emulated and "
                          "about 14x slower than FP32 here: drop --amp", stacklevel=2)
    return device


def adam(params, lr: float, decay: float):
    """Adam and a scheduler decaying its rate as lr / (1 + decay * step), as in the AdaIN paper."""
    optimizer = torch.optim.Adam(params, lr=lr)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1.0 / (1.0 + decay * i))


def autocast(device: torch.device, amp: str):
    """Mixed precision for the forward pass: "bf16", "fp16" or "none" (plain FP32)."""
    if amp not in ("none", *AMP_DTYPES):
        raise ValueError(f"amp must be none, bf16 or fp16, got {amp!r}")
    return torch.autocast(device.type, dtype=AMP_DTYPES.get(amp, torch.bfloat16), enabled=amp != "none")


def grad_scaler(device: torch.device, amp: str) -> torch.amp.GradScaler:
    """FP16 gradients underflow without loss scaling; bf16 has FP32's range and needs none."""
    return torch.amp.GradScaler(device.type, enabled=amp == "fp16")


class Prefetch:
    """Decodes the batch for step + 1 in a thread while step trains. On CUDA the batch is pinned
    in the thread, so the copy to the GPU is asynchronous."""

    def __init__(self, load: Callable[[int], tuple[torch.Tensor, ...]], start: int, device: torch.device,
                 memory_format: torch.memory_format = torch.contiguous_format):
        self.load, self.device, self.memory_format = load, device, memory_format
        self.pool = ThreadPoolExecutor(1)
        self.pending = self.pool.submit(self._load, start)

    def _load(self, step: int) -> tuple[torch.Tensor, ...]:
        batch = self.load(step)
        return tuple(x.pin_memory() for x in batch) if self.device.type == "cuda" else batch

    def take(self, step: int) -> tuple[torch.Tensor, ...]:
        """The batch of `step` (which must follow the last one taken) on the device."""
        batch = self.pending.result()
        self.pending = self.pool.submit(self._load, step + 1)
        return tuple(x.to(self.device, non_blocking=True, memory_format=self.memory_format) for x in batch)

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class Run:
    """A run folder (log.jsonl, checkpoints/) around one model, used as a context manager:

        with Run(out, cfg, model, optimizer, scheduler, desc="adain") as run:
            for step in run.steps():
                ...  # one optimiser update
                run.done = step + 1
                if run.done % cfg.sample_every == 0 or run.last(): ...  # samples
                run.record(step + 1, t0, images, loss=loss, content=...)

    On leaving, however that happens, the last finished step is checkpointed.
    `fixed` names config fields that a resumed run must share with its checkpoint; `averaged`, a
    moving average of the model's weights, is checkpointed with it.
    """

    def __init__(self, out: Path, cfg, model, optimizer, scheduler, scaler=None, resume: bool = True,
                 desc: str = "train", fixed: tuple[str, ...] = (), averaged=None):
        self.out, self.cfg, self.desc = Path(out), cfg, desc
        self.state = (model, optimizer, scheduler, scaler, averaged)
        (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.start = 0
        if not resume:
            clear_checkpoints(self.out / "checkpoints")
        ckpt = latest_checkpoint(self.out / "checkpoints")
        if ckpt is not None:
            self.start, saved = load_checkpoint(ckpt, model, optimizer, scheduler, scaler, averaged)
            check_same(ckpt, saved, asdict(cfg), fixed)
            print(f"resumed from {ckpt} at step {self.start}")
        self.done = self.start  # steps whose optimiser update has been applied
        self.bar = None

    def __enter__(self) -> Run:
        self.log = open_log(self.out / "log.jsonl", self.start)
        # `kill` (SIGTERM) stops a background run like Ctrl-C does: checkpointed at the last step
        self.signals = ExitStack()
        self.signals.enter_context(sigterm_as_interrupt())
        # What Ctrl-C or `kill` makes the command say, once __exit__ has checkpointed the last step
        on_interrupt(lambda: f"{self.desc}: interrupted after step {self.done}, checkpointed in "
                             f"{self.out / 'checkpoints'}; the same command resumes from there")
        return self

    def steps(self) -> Iterator[int]:
        """The steps still to train; ends early once `last` has said so (the time budget is spent)."""
        self.bar = tqdm(range(self.start, self.cfg.steps), initial=self.start, total=self.cfg.steps,
                        desc=self.desc, unit="step")
        self.deadline = time.monotonic() + 60 * self.cfg.minutes if self.cfg.minutes else None
        self.stopping = False
        for step in self.bar:
            yield step
            if self.stopping:
                return

    def last(self) -> bool:
        """Whether the step just done is the run's last: --steps reached or --minutes spent. Ask once
        per step, after setting `done`: from a True answer on, `steps` yields no more."""
        self.stopping = self.done >= self.cfg.steps or \
            (self.deadline is not None and time.monotonic() >= self.deadline)
        return self.stopping

    def record(self, done: int, t0: float, images: int, **values: torch.Tensor | float) -> dict:
        """Step `done` is finished: log its values (tensors or numbers), learning rate and speed,
        and checkpoint when due. Returns the logged record."""
        self.done = done  # first, so an interrupt from here on checkpoints this step
        record = {"step": done, **{k: v.item() if torch.is_tensor(v) else float(v) for k, v in values.items()},
                  "lr": self.state[2].get_last_lr()[0], "images_per_s": images / (time.perf_counter() - t0),
                  "time": time.time()}
        self.log.write(json.dumps(record) + "\n")
        self.log.flush()
        self.bar.set_postfix({k: f"{record[k]:.3g}" for k in values if k != "loss"})
        if done % self.cfg.checkpoint_every == 0:
            self.checkpoint()
        return record

    def checkpoint(self) -> Path:
        model, optimizer, scheduler, scaler, averaged = self.state
        return save_checkpoint(self.out / "checkpoints", self.done, model, optimizer, scheduler,
                               asdict(self.cfg), self.cfg.keep, scaler, averaged)

    def __exit__(self, *exc) -> None:
        self.signals.close()
        if self.done > self.start and self.done % self.cfg.checkpoint_every:
            self.checkpoint()
        self.log.close()
        if self.bar is not None:
            self.bar.close()


def check_same(path: Path, saved: dict, current: dict, fixed: tuple[str, ...]) -> None:
    """A checkpoint of another recipe (another style, say) would silently train the wrong thing."""
    norm = lambda v: list(v) if isinstance(v, (tuple, list)) else v
    differ = [k for k in fixed if norm(saved.get(k)) != norm(current.get(k))]
    if differ:
        detail = ", ".join(f"{k}: {saved.get(k)!r} there, {current.get(k)!r} now" for k in differ)
        raise WeightsError(f"{path}: checkpoint of a different recipe ({detail}); "
                           f"use another output folder or --fresh")
