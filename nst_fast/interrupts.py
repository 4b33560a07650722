"""SIGTERM (kill, a scheduler's stop) handled as Ctrl-C is, so long jobs stop cleanly either way:
the batch runner finishes the images in flight, training checkpoints its last step. A command runs
inside `stopping_cleanly`, so an interrupt at any moment, also while weights load or graphs export,
ends it with status 130 and its summary."""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from typing import Callable

INTERRUPTED = 130  # the shell's status for a process stopped by SIGINT
_state: dict = {"started": None, "summary": None}


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


def started() -> float | None:
    """time.perf_counter() when the current command started (None outside `stopping_cleanly`)."""
    return _state["started"]


def on_interrupt(summary: Callable[[], str]) -> None:
    """What the current command says when it is interrupted from now on (e.g. a run's summary)."""
    _state["summary"] = summary


@contextlib.contextmanager
def stopping_cleanly(echo: Callable[[str], None]):
    """The whole of a command: SIGTERM as Ctrl-C, and either one, not caught inside, echoes the
    registered summary and exits with INTERRUPTED."""
    _state.update(started=time.perf_counter(), summary=None)
    try:
        with sigterm_as_interrupt():
            yield
    except KeyboardInterrupt:
        summary = _state["summary"]
        try:
            echo(summary() if summary else "interrupted before any work started")
        except KeyboardInterrupt:  # a second Ctrl-C while saying so: stop now
            pass
        sys.exit(INTERRUPTED)
    finally:
        _state.update(started=None, summary=None)
