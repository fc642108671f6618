"""Trial liveness: a worker's heartbeat, and failing the running trials whose worker is
gone (docs/architecture.md, "Exploration" and "Failure paths").

Liveness is our own heartbeat (the ``heartbeat_unix`` user attribute, written every
:data:`HEARTBEAT_S` seconds by a thread) rather than Optuna's, which exists only for RDB
storages; the journal backend must work too. A running trial is failed through Optuna's
public ``study.tell`` when its process is gone on this host, when it never recorded its
worker within :data:`UNCLAIMED_AFTER_S`, or when its heartbeat is :data:`STALE_AFTER_S`
old; the next ``explore`` queues its point again.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time

import optuna
from optuna.trial import FrozenTrial, TrialState

from tinysnn_dse.explore.storage import load_study, open_storage

HEARTBEAT_S = 15.0
STALE_AFTER_S = 90.0
UNCLAIMED_AFTER_S = 20.0
ATTR_HEARTBEAT = "heartbeat_unix"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fail(study: optuna.Study, t: FrozenTrial, why: str) -> bool:
    """Fail another process's running trial ``t`` through Optuna's public API; the reason
    goes to the study's user attribute ``error_<number>`` (a finished trial takes no
    attributes from outside its own ``Trial``)."""
    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, ValueError):
        study.tell(t.number, state=TrialState.FAIL)
        study.set_user_attr(f"error_{t.number}", why)
        return True
    return False


def fail_stale(study: optuna.Study, now: float | None = None) -> int:
    """Fail running trials whose worker is gone: its process no longer exists on this host,
    or its heartbeat is older than :data:`STALE_AFTER_S`."""
    now = time.time() if now is None else now
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        hb = t.user_attrs.get(ATTR_HEARTBEAT)
        last = hb if hb is not None else (t.datetime_start.timestamp() if t.datetime_start else 0)
        pid, host = t.user_attrs.get("worker_pid"), t.user_attrs.get("worker_host")
        if host == socket.gethostname() and pid is not None and not _pid_alive(int(pid)):
            n += _fail(study, t, f"worker process {pid} is gone")
        elif pid is None and hb is None and now - float(last) > UNCLAIMED_AFTER_S:
            # a worker records itself first thing in the objective; one that has not after
            # this long died between Optuna's ask and its objective
            n += _fail(study, t, f"no worker recorded itself in {now - float(last):.0f} s")
        elif now - float(last) > STALE_AFTER_S:
            n += _fail(study, t, f"no heartbeat for {now - float(last):.0f} s")
    return n


def fail_workers(url: str, study: str, pids: set[int]) -> int:
    """Fail the running trials of worker processes ``pids`` of this host (just stopped)."""
    s = load_study(open_storage(url), study)
    host = socket.gethostname()
    return sum(
        _fail(s, t, "worker stopped")
        for t in s.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.user_attrs.get("worker_host") == host and t.user_attrs.get("worker_pid") in pids
    )


class Heartbeat:
    """Writes ``heartbeat_unix`` on the running trial every :data:`HEARTBEAT_S` seconds."""

    def __init__(self, trial: optuna.Trial) -> None:
        self._stop = threading.Event()
        self._trial = trial
        self._beat()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        with contextlib.suppress(Exception):  # a missed beat is not an error
            self._trial.set_user_attr(ATTR_HEARTBEAT, time.time())

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self._beat()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
