"""One ``tinysnn explore`` run: check every option, prepare the study, run the workers
(in this process, or one process each), stop them all on a signal, report progress."""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tinysnn_dse.errors import ConfigError, Interrupted, TinySNNError
from tinysnn_dse.explore import stopping
from tinysnn_dse.explore.artifacts import check_artifacts, default_artifacts
from tinysnn_dse.explore.liveness import fail_workers
from tinysnn_dse.explore.policy import Trainings, resolve_floors
from tinysnn_dse.explore.progress import EtaClock, Progress, progress
from tinysnn_dse.explore.space import SearchSpace
from tinysnn_dse.explore.storage import DEFAULT_STORAGE, StorageError, check_url
from tinysnn_dse.explore.study import Plan, check_budget, prepare
from tinysnn_dse.explore.worker import Worker, WorkerConfig, worker_main, worker_settings

STOP_GRACE_S = 30.0  # a stopped worker's time to fail its trial before SIGKILL


@dataclass(frozen=True)
class ExploreResult:
    plan: Plan
    progress: Progress
    seconds: float
    artifacts: Path
    stopped: int | None = None  # the signal that stopped the run, if one did

    @property
    def stopped_name(self) -> str:
        return f"interrupted by {signal.Signals(self.stopped).name}" if self.stopped else ""


def check_options(
    space: SearchSpace,
    url: str,
    study: str | None,
    workers: int,
    devices: list[str],
    threads: int | None,
    power_w: float | None,
    data_dir: str | None,
    artifacts: Path | None,
) -> Path:
    """Every option and the data budget checked before anything is written; returns the
    artifact folder (not created yet)."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    if power_w is not None and not (math.isfinite(power_w) and power_w > 0):
        raise ConfigError(f"--power-w must be a positive number of watts, got {power_w}")
    if study is not None and not study.strip():
        raise ConfigError("--study is empty; give a study name")
    if artifacts is not None and not str(artifacts).strip():
        raise ConfigError("--artifacts is empty; give a folder")
    check_url(url)
    art = (artifacts or default_artifacts(url)).resolve()
    check_artifacts(art, create=False)
    check_budget(space, data_dir)
    for d in devices:  # what each worker will check, checked once here
        worker_settings(space, d, threads, power_w)
    return art


def worker_count(space: SearchSpace, workers: int, devices: list[str], to_run: int) -> int:
    """``workers``, capped at the trials there are to run and, on CPUs, at the cores."""
    n = min(workers, max(1, to_run))
    if all(d == "cpu" for d in devices):
        n = min(n, os.cpu_count() or 1)
    return n


def explore(
    space: SearchSpace,
    url: str = DEFAULT_STORAGE,
    study: str | None = None,
    workers: int = 1,
    devices: list[str] | None = None,
    threads: int | None = None,
    power_w: float | None = None,
    data_dir: str | None = None,
    artifacts: Path | None = None,
    n_trials: int | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    poll_s: float = 2.0,
    on_note: Callable[[str], None] | None = None,
) -> ExploreResult:
    """Create or resume the study of ``space`` and run its points with ``workers`` processes.

    ``devices`` are handed to workers round-robin (default: ``cpu``). ``threads`` per
    worker defaults to the CPU count divided by the workers on CPU devices. Everything is
    checked before the study is written; SIGINT, SIGTERM and SIGHUP stop every worker,
    fail their running trials (retried by the next run) and end the run with
    ``stopped`` set.
    """
    devices = devices or ["cpu"]
    art = check_options(space, url, study, workers, devices, threads, power_w, data_dir,
                        artifacts)  # fmt: skip
    with stopping.handling():
        return _explore(space, url, study, workers, devices, threads, power_w, data_dir,
                        art, n_trials, on_plan, on_progress, poll_s, on_note)  # fmt: skip


def _explore(
    space: SearchSpace,
    url: str,
    study: str | None,
    workers: int,
    devices: list[str],
    threads: int | None,
    power_w: float | None,
    data_dir: str | None,
    art: Path,
    n_trials: int | None,
    on_plan: Callable[[Plan], None] | None,
    on_progress: Callable[[Progress], None] | None,
    poll_s: float,
    on_note: Callable[[str], None] | None,
) -> ExploreResult:
    # ``vmem_floor: auto``: each network's floor chosen on its training holdout first; a
    # signal here stops the command before the study is written (a finished choice is kept)
    try:
        space = resolve_floors(
            space, Trainings(space, worker_settings(space, devices[0], threads, power_w), art,
                             data_dir, on_note), on_note,
        )  # fmt: skip
    except stopping.Stopped as e:
        stopping.caught()
        msg = f"{e} while choosing a membrane floor (vmem_floor: auto); no study was written"
        raise Interrupted(f"{msg}: run the same command again", e.exit_code) from None
    with stopping.deferred():  # a signal while the study is written waits for the end
        plan = prepare(space, url, study)
    check_artifacts(art)
    if on_plan:
        on_plan(plan)
    t0 = time.perf_counter()
    # tpe / nsga2: the trials of this run in all (--n-trials, else the space's n_trials,
    # else one per point), shared among the workers
    total = None
    if space.sampler != "grid":
        total = n_trials or space.n_trials or len(space.points)
    to_run = total if total is not None else plan.total - plan.completed
    n_workers = worker_count(space, workers, devices, to_run)
    if n_workers < workers and on_note:
        on_note(
            f"--workers {workers}: running {n_workers} (at most one per trial to run"
            + (f" and per core, {os.cpu_count()}" if all(d == "cpu" for d in devices) else "")
            + ")"
        )
    per_worker = threads or max(1, (os.cpu_count() or 1) // n_workers)
    cfgs = [
        WorkerConfig(
            url=url,
            study=plan.study,
            space=space,
            artifacts=str(art),
            device=devices[i % len(devices)],
            threads=per_worker,
            power_w=power_w,
            data_dir=data_dir,
            n_trials=_share(total, n_workers, i) if total else None,
        )
        for i in range(n_workers)
    ]
    eta = EtaClock(space, art, plan, n_workers)
    last: list[Progress] = []

    def report() -> Progress:
        try:
            p = eta.update(progress(url, plan.study, plan.total))
        except StorageError:
            if not last:
                raise
            return last[-1]  # the poll is retried by the storage; workers go on
        last[:] = [p]
        if on_progress:
            on_progress(p)
        return p

    report()
    stopped: int | None = None
    try:
        if n_workers == 1:
            Worker(cfgs[0], on_trial=lambda _t: None if report() else None).run()
        else:
            _run_workers(cfgs, url, plan.study, report, poll_s)
    except stopping.Stopped as e:
        stopped = e.signum
        stopping.caught()
    with stopping.deferred():
        final = report()
    return ExploreResult(plan, final, time.perf_counter() - t0, art, stopped)


def _run_workers(
    cfgs: list[WorkerConfig], url: str, study: str, report: Callable[[], Progress], poll_s: float
) -> None:
    """Run one process per config until all end; a signal, or this function's exit by any
    exception, stops them (SIGTERM, then SIGKILL after :data:`STOP_GRACE_S`) and fails
    whatever they left running. A worker's user error is raised here as one line."""
    ctx = mp.get_context("spawn")
    errors = ctx.SimpleQueue()
    procs = [ctx.Process(target=worker_main, args=(c, errors), daemon=False) for c in cfgs]
    try:
        with stopping.deferred():  # a signal is taken between polls, never inside one
            for pr in procs:
                pr.start()
            while any(pr.is_alive() for pr in procs):
                report()
                for pr in procs:
                    pr.join(timeout=min(1.0, poll_s / len(procs)))
                    stopping.check()
    finally:
        with stopping.deferred():
            alive = [pr for pr in procs if pr.is_alive()]
            for pr in alive:
                pr.terminate()  # SIGTERM: the worker fails its trial and ends
            deadline = time.monotonic() + STOP_GRACE_S
            for pr in alive:
                pr.join(timeout=max(0.1, deadline - time.monotonic()))
                if pr.is_alive():
                    pr.kill()
                    pr.join()
            ended = {pr.pid for pr in procs if pr.pid and pr.exitcode != 0}
            if ended:  # what a stopped or killed worker left running, failed now
                with contextlib.suppress(StorageError):
                    fail_workers(url, study, ended)
    msgs = []
    while not errors.empty():
        msgs.append(errors.get())
    if msgs:
        raise TinySNNError(msgs[0])
    bad = [pr for pr in procs if pr.exitcode not in (0, None)]
    if bad:
        pr = bad[0]
        how = (
            f"was killed by {signal.Signals(-pr.exitcode).name}"
            if pr.exitcode is not None and pr.exitcode < 0
            else f"exited with code {pr.exitcode}"
        )
        raise TinySNNError(
            f"worker process {pr.pid} {how}; its trial is failed and retried by the next "
            "explore (the others ran on)"
        )


def _share(n: int, workers: int, i: int) -> int:
    return n // workers + (1 if i < n % workers else 0)
