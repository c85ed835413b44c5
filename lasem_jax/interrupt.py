"""Graceful stops: SIGINT/SIGTERM end the run after the current epoch; a second signal at once."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from types import FrameType

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_requested: list[int] = []


class Stopped(Exception):
    """Raised by a training loop at an epoch boundary after a stop was requested.

    Attributes:
      signum: the signal that asked for the stop.
      task: the task being trained (0-based).
      epoch: epochs of that task done (and checkpointed, when the run has a workdir).
    """

    def __init__(self, signum: int, task: int, epoch: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name} at task {task}, epoch {epoch}")
        self.signum, self.task, self.epoch = signum, task, epoch


def requested() -> int | None:
    """The signal number of a pending stop request, or None."""
    return _requested[0] if _requested else None


def request(signum: int = signal.SIGINT) -> None:
    """Asks every training loop to stop at its next epoch boundary (what the handler does)."""
    if not _requested:
        _requested.append(signum)


def check(task: int, epoch: int) -> None:
    """Raises `Stopped` if a stop was requested (call after checkpointing an epoch)."""
    signum = requested()
    if signum is not None:
        raise Stopped(signum, task, epoch)


def _handler(signum: int, frame: FrameType | None) -> None:
    del frame
    if _requested:  # The second signal: stop now; the last complete checkpoint stays valid.
        for s in _SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        raise KeyboardInterrupt
    request(signum)
    name = signal.Signals(signum).name
    print(
        f"\n{name}: finishing the current epoch and writing a checkpoint; send {name} again to "
        "stop at once.",
        file=sys.stderr,
        flush=True,
    )


@contextlib.contextmanager
def graceful_stop() -> Iterator[None]:
    """Installs the SIGINT/SIGTERM handlers for the duration of a run (main thread only)."""
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    _requested.clear()
    for s in _SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _requested.clear()
