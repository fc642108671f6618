"""Stopping cleanly: a signal ends the command at a safe point, and workers end with it.

SIGINT, SIGTERM and SIGHUP become one exception, :class:`Stopped` (a ``KeyboardInterrupt``,
so that Optuna fails the running trial and re-raises it), raised in the main thread:

- at once where the main thread computes (the default, and :func:`interruptible`, which
  the objective's training and testing run in);
- at the end of a :func:`deferred` section otherwise: every storage call (a transaction is
  never cut in half: no trial is left RUNNING by a signal between Optuna's ``ask`` and the
  objective, and no "database is locked" hang), and Optuna's own bookkeeping around a
  trial (``study.optimize``), where the signal is raised at the next objective's entry or
  after the trial has been told.

A third signal while stopping ends the process at once (its trial is failed by the next
``explore``, because its process is gone). Worker processes also end when their parent
dies (``PR_SET_PDEATHSIG`` on Linux, and a thread that watches the parent elsewhere), so a
``kill -9`` of ``explore`` leaves no orphan taking trials.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

SIGNALS = tuple(
    s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
    if s is not None
)  # fmt: skip


class Stopped(KeyboardInterrupt):
    """The command was asked to stop by signal ``signum``."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_state: dict[str, object] = {"pending": None, "count": 0}
_modes: list[str] = []  # "defer" or "raise", innermost last; main thread only


def _main() -> bool:
    return threading.current_thread() is threading.main_thread()


def _handler(signum: int, _frame: FrameType | None) -> None:
    n = int(_state["count"]) + 1  # type: ignore[call-overload]
    _state["count"] = n
    if n >= 3:  # asked three times: end now, without cleaning up
        os._exit(128 + signum)
    if n >= 2:
        return  # already stopping (the exception is on its way)
    # pending until consumed: an exception raised here and swallowed (in a weakref
    # callback or a __del__, which only print it) is raised again by the next check()
    _state["pending"] = signum
    if not (_modes and _modes[-1] == "defer"):
        raise Stopped(signum)


def _unraisable(u: Any) -> None:
    """A :class:`Stopped` raised where Python cannot propagate it (a weakref callback, a
    ``__del__``) is not printed: the signal is sent again a moment later, when the main
    thread is back in ordinary code."""
    if isinstance(u.exc_value, Stopped):
        _state["count"] = 0
        _state["pending"] = None
        threading.Timer(0.01, os.kill, (os.getpid(), u.exc_value.signum)).start()
        return
    _prev_hook(u)


_prev_hook = sys.unraisablehook


def install() -> None:
    """Handle SIGINT, SIGTERM and SIGHUP in this process (main thread only; idempotent)."""
    if not _main():
        return
    for s in SIGNALS:
        signal.signal(s, _handler)
    sys.unraisablehook = _unraisable


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """:func:`install` for the duration of a run, then the previous handlers again (a
    library caller, or a test, keeps its own)."""
    if not _main():
        yield
        return
    prev = {s: signal.getsignal(s) for s in SIGNALS}
    reset()
    install()
    try:
        yield
    finally:
        for s, h in prev.items():
            signal.signal(s, h)
        sys.unraisablehook = _prev_hook
        reset()


def reset() -> None:
    """Forget a stop already raised (for a process that goes on, e.g. tests)."""
    _state["pending"] = None
    _state["count"] = 0
    _modes.clear()


def check() -> None:
    """Raise :class:`Stopped` now if a signal arrived in a deferred section."""
    sig = _state["pending"]
    if sig is not None and _main():
        _state["pending"] = None
        raise Stopped(int(sig))  # type: ignore[call-overload]


def caught() -> None:
    """The stop was handled (the run ends): no later :func:`check` raises it again."""
    _state["pending"] = None


def requested() -> bool:
    return _state["pending"] is not None or int(_state["count"]) > 0  # type: ignore[call-overload]


@contextlib.contextmanager
def _mode(mode: str) -> Iterator[None]:
    if not _main():
        yield
        return
    _modes.append(mode)
    try:
        if mode == "raise":
            check()
        yield
    finally:
        _modes.pop()
    if not _modes or _modes[-1] == "raise":
        check()


def deferred() -> contextlib.AbstractContextManager[None]:
    """A signal inside is raised when the section ends (unless an enclosing section
    defers too)."""
    return _mode("defer")


def interruptible() -> contextlib.AbstractContextManager[None]:
    """A signal inside (or one pending on entry) is raised at once."""
    return _mode("raise")


# --------------------------------------------------------------------------- workers


def die_with_parent() -> None:
    """Called first in a worker process: SIGTERM to itself when its parent dies."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent or parent == 1:  # the parent died before prctl
        os.kill(os.getpid(), signal.SIGTERM)

    def watch() -> None:
        ev = threading.Event()
        while not ev.wait(1.0):
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, daemon=True, name="tinysnn-parent-watch").start()
