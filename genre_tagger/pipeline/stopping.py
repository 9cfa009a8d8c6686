"""Stopping cleanly: a scan asked to stop finishes what is in flight, and no process it
started outlives it.

:class:`StopRequest` turns SIGINT (Ctrl-C) and SIGTERM (a service manager, ``kill``) into
a request that the work loops check between files: no new file is started, the ones in
flight land in the cache, and the command ends with ``128 + signal``. A second signal
stops at once (:func:`at_once`): the work loops abandon the files in flight, end their
workers and return, so that the command still says what it did (and no semaphore of a
worker pool is left to the resource tracker to call leaked); a third signal, or work that
has not returned :data:`AT_ONCE_GRACE_S` after the second, ends the process there and
then. Worker processes never see these signals
(:func:`ignore_stop_signals`); they end with their parent however it ends, SIGKILL
included (:func:`exit_with_parent`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Callable

__all__ = ["StopRequest", "at_once", "exit_with_parent", "ignore_stop_signals", "never", "uninterrupted"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1
_WATCH_S = 0.5  # how often a worker looks whether its parent is still there
#: how long after a second stop signal the work may take to return before the process ends there
AT_ONCE_GRACE_S = 3.0
# Signals are the process's, so is the state a second one sets (read by at_once()).
_second: dict = {"signal": None}


def at_once() -> bool:
    """Whether a second stop signal came: work in flight is to be abandoned, not finished."""
    return _second["signal"] is not None


def never() -> bool:
    """A stop callable for work that is never asked to stop."""
    return False


class StopRequest:
    """``with StopRequest() as stop:`` -- while inside, SIGINT and SIGTERM set
    :attr:`signal` instead of raising; ``stop()`` says whether one came. A second signal
    calls ``on_second`` (default: :meth:`stop_at_once`)."""

    def __init__(self, on_second: Callable[[int], None] | None = None):
        self.signal: int | None = None
        self._on_second = on_second or self.stop_at_once
        self._previous: dict[int, object] = {}
        self._timer: threading.Timer | None = None

    def __call__(self) -> bool:
        return self.signal is not None

    @property
    def twice(self) -> bool:
        """Whether a second signal came (and the work in flight was abandoned)."""
        return self._timer is not None

    def stop_at_once(self, signum: int) -> None:
        """The second signal: :func:`at_once` is true from now on, and the process ends
        with ``128 + signum`` at a third signal, or if the work has not returned (left
        this block) :data:`AT_ONCE_GRACE_S` later: work stuck where it does not look."""
        if self._timer is not None:
            os._exit(128 + signum)
        _second["signal"] = signum
        self._timer = threading.Timer(AT_ONCE_GRACE_S, os._exit, (128 + signum,))
        self._timer.daemon = True
        self._timer.start()

    @property
    def exit_code(self) -> int:
        """The conventional exit status: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + (self.signal or 0)

    @property
    def name(self) -> str:
        return {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}.get(self.signal, str(self.signal))

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is None:
            self.signal = signum
        elif _critical["depth"]:  # the end of the block says it (see uninterrupted)
            _critical["pending"] = lambda: self._on_second(signum)
        else:
            self._on_second(signum)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if self._timer is not None:  # the work returned: what it did is said, however long that takes
            self._timer.cancel()
        _second["signal"] = None


_critical: dict = {"depth": 0, "pending": None}


@contextmanager
def uninterrupted() -> Iterator[None]:
    """``with uninterrupted():`` -- a second stop signal that comes inside the block (which
    abandons the work in flight) takes effect at its end: a tag write and the journal
    record of it land together, or neither does."""
    _critical["depth"] += 1
    try:
        yield
    finally:
        _critical["depth"] -= 1
        pending = _critical["pending"] if not _critical["depth"] else None
        if pending is not None:
            _critical["pending"] = None
            pending()


def ignore_stop_signals() -> None:
    """In a worker process: leave SIGINT and SIGTERM to the parent, which stops the work
    (a terminal's Ctrl-C reaches every process of the group, and would otherwise break a
    worker in the middle of a numba call)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def exit_with_parent(kernel: bool = True) -> None:
    """In a worker process: end it when its parent ends, whatever ends the parent
    (SIGKILL included). With ``kernel`` on Linux, the kernel sends SIGKILL at once
    (``PR_SET_PDEATHSIG``: only for a worker started by the parent's main thread, since
    the signal follows the thread that started it); everywhere, a thread checks every
    :data:`_WATCH_S` s that the parent is still the same, so the worker is gone within a
    second."""
    parent = os.getppid()
    if kernel and sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent ended before we got here
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="exit-with-parent", daemon=True).start()


def _watch(parent: int) -> None:
    while True:
        time.sleep(_WATCH_S)
        if os.getppid() != parent:
            os._exit(1)
