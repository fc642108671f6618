"""Design-space exploration: search spaces, Optuna studies, worker processes.

Owns Optuna; never imports the CLI, rich, YAML or the report layer. Progress reaches the
caller as a callback ``on_progress(Progress)``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tinysnn_dse.explore.space import DesignPoint, SearchSpace, parse_space
from tinysnn_dse.explore.study import (
    DEFAULT_STORAGE,
    Plan,
    Progress,
    StorageError,
    Worker,
    WorkerConfig,
    check_artifacts,
    check_budget,
    default_artifacts,
    fail_workers,
    hypervolume_history,
    load_records,
    open_storage,
    prepare,
    progress,
    worker_main,
)

__all__ = [
    "DEFAULT_STORAGE",
    "DesignPoint",
    "ExploreResult",
    "Plan",
    "Progress",
    "SearchSpace",
    "StorageError",
    "default_artifacts",
    "explore",
    "hypervolume_history",
    "load_records",
    "parse_space",
    "prepare",
]


@dataclass(frozen=True)
class ExploreResult:
    plan: Plan
    progress: Progress
    seconds: float
    artifacts: Path


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
) -> ExploreResult:
    """Create or resume the study of ``space`` and run its points with ``workers`` processes.

    ``devices`` are handed to workers round-robin (default: ``cpu``). ``threads`` per
    worker defaults to the CPU count divided by the workers on CPU devices.
    """
    if workers < 1:
        raise StorageError(f"--workers must be at least 1, got {workers}")
    devices = devices or ["cpu"]
    open_storage(url)  # a bad URL fails here, before anything is created
    art = (artifacts or default_artifacts(url)).resolve()
    check_artifacts(art)
    check_budget(space, data_dir)
    plan = prepare(space, url, study)
    if on_plan:
        on_plan(plan)
    t0 = time.perf_counter()
    per_worker = threads or max(1, (os.cpu_count() or 1) // workers)
    # tpe / nsga2: the trials of this run in all (--n-trials, else the space's n_trials,
    # else one per point), shared among the workers
    total = None
    if space.sampler != "grid":
        total = n_trials or space.n_trials or len(space.points)
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
            n_trials=_share(total, workers, i) if total else None,
        )
        for i in range(workers)
    ]

    def report() -> Progress:
        p = progress(url, plan.study, plan.total)
        if on_progress:
            on_progress(p)
        return p

    report()
    if workers == 1:
        Worker(cfgs[0], on_trial=lambda _t: None if report() else None).run()
    else:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=worker_main, args=(c,), daemon=False) for c in cfgs]
        for pr in procs:
            pr.start()
        try:
            while any(pr.is_alive() for pr in procs):
                report()
                for pr in procs:
                    pr.join(timeout=poll_s / len(procs))
        finally:
            alive = [pr for pr in procs if pr.is_alive()]
            for pr in alive:
                pr.terminate()
            for pr in procs:
                pr.join()
            if alive:  # their running trials are failed now, to be retried on resume
                fail_workers(url, plan.study, {pr.pid for pr in alive if pr.pid})
    return ExploreResult(plan, report(), time.perf_counter() - t0, art)


def _share(n: int, workers: int, i: int) -> int:
    return n // workers + (1 if i < n % workers else 0)
