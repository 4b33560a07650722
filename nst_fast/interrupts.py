"""SIGTERM (kill, a scheduler's stop) handled as Ctrl-C is, so long jobs stop cleanly either way:
the batch runner finishes the images in flight, training checkpoints its last step."""
from __future__ import annotations

import contextlib
import signal
import threading


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Inside this block SIGTERM raises KeyboardInterrupt (main thread only: signals go there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
