"""Run a search space as an Optuna study: create or resume, dispatch, record, read back.

How a grid is run without repeats or losses, whatever the number of workers or machines:

1. ``prepare`` (one process, before any worker starts) creates or loads the study, marks
   trials whose worker stopped sending heartbeats as failed, and enqueues every design point
   that has no completed trial and no live queued or running one.
2. Workers pop queued trials (``study.optimize``; the storage hands each queued trial to
   one worker). A popped trial first checks the study for the same design key: it yields
   (is pruned, ``duplicate_of``) to a completed trial of that key, or to a queued or running
   one with a lower number. The lowest-numbered live trial of a key never yields, so a point
   queued twice by two ``explore`` processes runs once and is never dropped.
3. A trial that raises is recorded as failed (its error in ``error``); one whose process
   dies is failed by the next ``prepare`` once its heartbeat is stale. Either way the next
   ``explore`` queues its point again.

PTQ and FP32 points of one network share one FP32 training: the first worker to need it
trains it under a file lock and stores it in the artifact folder; the rest load it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from tinysnn_dse import data as data_mod
from tinysnn_dse import runner
from tinysnn_dse.axes import AXES, Axis, nearest
from tinysnn_dse.errors import ConfigError, OutputError, TinySNNError
from tinysnn_dse.explore import stopping
from tinysnn_dse.explore.policy import Trainings
from tinysnn_dse.explore.space import DesignPoint, SearchSpace
from tinysnn_dse.explore.storage import (
    StorageError,
    is_journal,
    must_exist,
    open_storage,
    sqlite_path,
)
from tinysnn_dse.records import Record, RecordError

METRIC_NAMES = ["accuracy", "memory_kb", "infer_energy_uj_per_sample"]
DIRECTIONS: list[Literal["maximize", "minimize"]] = ["maximize", "minimize", "minimize"]
HEARTBEAT_S = 15.0
STALE_AFTER_S = 90.0
UNCLAIMED_AFTER_S = 20.0
STOP_GRACE_S = 30.0  # a stopped worker's time to fail its trial before SIGKILL
ATTR_HEARTBEAT = "heartbeat_unix"

optuna.logging.set_verbosity(optuna.logging.ERROR)


def default_artifacts(url: str) -> Path:
    """Checkpoints live next to a SQLite or journal file, else in ./tinysnn-artifacts."""
    db = sqlite_path(url)
    if db is not None:
        return db.resolve().parent / "tinysnn-artifacts"
    if is_journal(url):
        return Path(url.removeprefix("journal:")).resolve().parent / "tinysnn-artifacts"
    return Path("tinysnn-artifacts").resolve()


def _load(storage: BaseStorage, study: str) -> optuna.Study:
    try:
        return optuna.load_study(study_name=study, storage=storage)
    except KeyError:
        raise StorageError(f"no study named {study!r} in this storage") from None


# --------------------------------------------------------------------------- prepare


@dataclass(frozen=True)
class Plan:
    """What ``prepare`` found and queued."""

    study: str
    total: int  # design points in the space
    completed: int  # of them, with a completed trial
    queued: int  # newly queued now
    stale_failed: int  # running trials whose worker had died, now failed
    trainings: int  # distinct trainings the space needs


def _budget_attr(space: SearchSpace) -> dict[str, Any]:
    return {"dataset": space.budget.dataset, **space.budget_dict()}


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
    s = _load(open_storage(url), study)
    host = socket.gethostname()
    return sum(
        _fail(s, t, "worker stopped")
        for t in s.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.user_attrs.get("worker_host") == host and t.user_attrs.get("worker_pid") in pids
    )


def check_budget(space: SearchSpace, data_dir: str | None = None) -> None:
    """Fail before any trial runs if the data set is missing or the budget does not fit it."""
    ds = data_mod.load(space.budget.dataset, data_dir)
    b = space.budget
    s = runner.RunSettings(
        dataset=b.dataset,
        train_samples=b.train_samples,
        test_samples=b.test_samples,
        assign_samples=b.assign_samples,
        epochs=b.epochs,
        seed=b.seed,
    ).validate()
    try:
        runner.check_split(ds, s)
    except ConfigError as e:
        raise ConfigError(f"{space.source}: data: {e}") from None


def _foreign(name: str, why: str) -> StorageError:
    return StorageError(
        f"study {name!r} exists but was not made by tinysnn explore ({why}); "
        "nothing was changed: use another --study"
    )


def _check_ours(storage: BaseStorage, name: str) -> None:
    """Refuse, before writing anything, a study of this name made by something else: other
    objectives, or trials without tinysnn's attributes (an empty study is adopted)."""
    try:
        sid = storage.get_study_id_from_name(name)
    except KeyError:
        return  # a new study
    dirs = [d.name.lower() for d in storage.get_study_directions(sid)]
    if dirs != list(DIRECTIONS):
        raise _foreign(name, f"its objectives are {', '.join(dirs)}")
    attrs = storage.get_study_user_attrs(sid)
    if "budget" in attrs:
        if not isinstance(attrs["budget"], dict) or "dataset" not in attrs["budget"]:
            raise _foreign(name, "its budget attribute is not tinysnn's")
        return
    n = storage.get_n_trials(sid)
    if n:
        raise _foreign(name, f"{n} trials and no tinysnn budget")


def prepare(space: SearchSpace, url: str, study_name: str | None = None) -> Plan:
    """Create or resume the study of ``space`` and queue every point still to run."""
    storage = open_storage(url)
    name = study_name or space.study
    _check_ours(storage, name)
    for attempt in range(5):  # two explore processes may create the same study at once
        try:
            study = optuna.create_study(
                storage=storage, study_name=name, directions=DIRECTIONS, load_if_exists=True
            )
            break
        except (StorageError, optuna.exceptions.DuplicatedStudyError) as e:
            if attempt == 4:
                msg = str(e).splitlines()[0]
                raise StorageError(f"cannot create study {name!r}: {msg}") from None
            time.sleep(0.5 + attempt)
    _check_ours(storage, name)  # made by another process between the check and here
    budget = study.user_attrs.get("budget")
    if budget is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(METRIC_NAMES)
        study.set_user_attr("budget", _budget_attr(space))
        study.set_user_attr("sampler", space.sampler)
        study.set_user_attr("space_source", space.source)
    elif budget != _budget_attr(space):
        raise StorageError(
            f"study {name!r} was run with another data budget ({json.dumps(budget)}); "
            "use another --study or the same data settings"
        )
    ran = study.user_attrs.get("sampler", space.sampler)
    if ran != space.sampler and "grid" in (ran, space.sampler):
        # a grid study's axes are table cells, a sampler's are ordered: one kind per name
        raise StorageError(
            f"study {name!r} was run with sampler {ran}, not {space.sampler}; "
            "use another --study or the same sampler"
        )
    stale = fail_stale(study)
    if space.sampler != "grid":
        done = {t.user_attrs.get("design_key") for t in _complete(study)}
        return Plan(name, len(space.points), len(done), 0, stale, space.trainings)
    live = {
        t.user_attrs.get("design_key")
        for t in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
        )
    }
    completed = {t.user_attrs.get("design_key") for t in _complete(study)}
    queued = 0
    for p in space.queue_order():
        if p.key in live:
            continue
        study.enqueue_trial(_params(p), user_attrs={"design_key": p.key, "design": p.to_dict()})
        queued += 1
    return Plan(
        name,
        len(space.points),
        sum(p.key in completed for p in space.points),
        queued,
        stale,
        space.trainings,
    )


def _params(p: DesignPoint) -> dict[str, Any]:
    """A grid point as Optuna parameters (for the dashboard): each axis's cell
    (:meth:`Axis.display`) under :func:`_display_distribution`."""
    return {
        a.name: v if a.kind in ("count", "fraction") else a.display(v, p.is_fp32, not p.is_pruned)
        for a, v in zip(AXES, p.axes.values(), strict=True)
    }


def _display_distribution(a: Axis) -> BaseDistribution:
    """A grid study's distribution of axis ``a``: fixed by the code, whatever the space,
    so that a study resumes after its space grows."""
    if a.kind == "count":
        return IntDistribution(1 if a.log else 0, 1_000_000, log=a.log)
    if a.kind == "fraction":
        return FloatDistribution(0.0, 1.0)
    return CategoricalDistribution(a.display_choices())


def _search_distribution(a: Axis, points: tuple[DesignPoint, ...]) -> BaseDistribution:
    """What a TPE or NSGA-II study suggests for axis ``a``: a ``choice`` axis over its
    whole vocabulary (fixed, so a value added later keeps the study resumable); an
    ordered axis as an integer over the space's range (bits with FP32 as 33; network size
    on a log scale), which Optuna lets change between runs of a study."""
    if a.kind == "choice":
        return CategoricalDistribution(a.choices)
    if a.kind == "fraction":
        fr = [float(getattr(p, a.name)) for p in points]
        return FloatDistribution(min(fr), max(fr))
    vals = [int(a.ordinal(getattr(p, a.name))) for p in points]
    return IntDistribution(min(vals), max(vals), log=a.log)


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high)
    assert isinstance(dist, CategoricalDistribution)
    return trial.suggest_categorical(name, dist.choices)  # type: ignore[call-overload]


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


# --------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker process needs (picklable, for ``spawn``)."""

    url: str
    study: str
    space: SearchSpace
    artifacts: str
    device: str = "cpu"
    threads: int | None = None
    power_w: float | None = None
    data_dir: str | None = None
    n_trials: int | None = None  # tpe / nsga2: trials this worker runs


def worker_settings(
    space: SearchSpace, device: str, threads: int | None, power_w: float | None
) -> runner.RunSettings:
    """A worker's run settings, validated (the parent checks them before any write)."""
    b = space.budget
    return runner.RunSettings(
        dataset=b.dataset,
        train_samples=b.train_samples,
        test_samples=b.test_samples,
        assign_samples=b.assign_samples,
        epochs=b.epochs,
        seed=b.seed,
        device=device,
        threads=threads,
        power_w=power_w,
    ).validate()


class _Heartbeat:
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


class Worker:
    """Runs trials of one study in this process; data and splits are loaded once."""

    def __init__(self, cfg: WorkerConfig, on_trial: Callable[[FrozenTrial], None] | None = None):
        self.cfg = cfg
        self.on_trial = on_trial
        self.study = _load(open_storage(cfg.url), cfg.study)
        self.store = FileSystemArtifactStore(str(Path(cfg.artifacts) / "checkpoints"))
        Path(cfg.artifacts, "checkpoints").mkdir(parents=True, exist_ok=True)
        self.settings = worker_settings(cfg.space, cfg.device, cfg.threads, cfg.power_w)
        self.points = {p.key: p for p in cfg.space.points}
        self._axes = [{a.name: getattr(p, a.name) for a in AXES} for p in cfg.space.points]
        self.trainings = Trainings(cfg.space, self.settings, Path(cfg.artifacts), cfg.data_dir)
        self.fatal: TinySNNError | None = None  # an error that ends the run (a full disk)

    def objective(self, trial: optuna.Trial) -> tuple[float, float, float]:
        # who runs it, first: a trial whose process is gone is failed by the next prepare
        trial.set_user_attr("worker_host", socket.gethostname())
        trial.set_user_attr("worker_pid", os.getpid())
        try:
            with stopping.interruptible():
                return self._objective(trial)
        except stopping.Stopped as e:  # failed by Optuna, with the reason, then re-raised
            with contextlib.suppress(Exception):
                trial.set_user_attr("error", f"{e} (retried by the next explore)")
            raise

    def _objective(self, trial: optuna.Trial) -> tuple[float, float, float]:
        study = self.study
        key = trial.user_attrs.get("design_key")
        if self.cfg.space.sampler == "grid":
            if key is None:  # the queue ran dry between two workers' checks
                trial.set_user_attr("reason", "queue empty")
                study.stop()
                raise optuna.TrialPruned("queue empty")
            p = DesignPoint.from_dict(trial.user_attrs["design"])
            for a in AXES:  # the queued axes, shown by optuna-dashboard
                _suggest(trial, a.name, _display_distribution(a))
        else:  # per axis, then the space's nearest point (a union of grids)
            pts = self.cfg.space.points
            s = {a.name: _suggest(trial, a.name, _search_distribution(a, pts)) for a in AXES}
            p = pts[nearest(s, self._axes)]
            trial.set_user_attr("design_key", p.key)
            trial.set_user_attr("design", p.to_dict())
        dup = self._duplicate_of(trial.number, p.key)
        if dup is not None:
            trial.set_user_attr("duplicate_of", dup.number)
            if self.cfg.space.sampler == "grid" or dup.values is None:
                raise optuna.TrialPruned(f"duplicate of trial {dup.number}")
            return tuple(dup.values)  # type: ignore[return-value]
        hb = _Heartbeat(trial)
        try:
            trained, quant, shared = self.trainings.train_point(p)
            split, _n = self.trainings.split()
            trained = replace(trained, data_source=self.trainings.data_source)
            ev = runner.evaluate(trained, quant, split)
            art = self._upload(trial, trained, ev)
            record = ev.record.with_study(
                p,
                trial_number=trial.number,
                checkpoint_artifact=art,
                shared_training=shared,
                # > 1: trained together with other ITQ points (space key itq_batch)
                train_batch_points=(trained.train_measured or {}).get("shared_by", 1),
            )
            trial.set_user_attr(
                "record", json.loads(json.dumps(record.to_dict(), default=_jsonable))
            )
            trial.set_user_attr("accuracy", record.accuracy)
            trial.set_user_attr("memory_bits", record.memory.bits)
            trial.set_user_attr("normalized_memory", record.memory.normalized)
        except TinySNNError as e:
            if isinstance(e, OutputError | StorageError):  # a full disk fails every trial:
                self.fatal = e  # stop this worker after this one, and say why
                study.stop()
            with contextlib.suppress(StorageError):
                trial.set_user_attr("error", str(e))
            raise
        except Exception as e:  # recorded as a failed trial; the other points go on
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            raise
        finally:
            hb.close()
        return (
            record.accuracy,
            record.memory.kib,
            record.energy["infer"].modelled_j_per_sample * 1e6,
        )

    def _upload(self, trial: optuna.Trial, trained: runner.Trained, ev: runner.Evaluation) -> str:
        """The trial's checkpoint into the artifact store, saved whole in a temporary folder
        beside the store first; a full disk is one line (:func:`runner.write_guard`)."""
        where = f"the checkpoint of trial {trial.number} into {self.cfg.artifacts}"
        with runner.write_guard(where), \
                tempfile.TemporaryDirectory(dir=self.cfg.artifacts) as tmp, \
                warnings.catch_warnings():  # fmt: skip
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ckpt, _rec = runner.save(Path(tmp), trained, ev)
            return str(
                upload_artifact(
                    artifact_store=self.store,
                    file_path=str(ckpt),
                    study_or_trial=trial,
                    mimetype="application/octet-stream",
                )
            )

    def _duplicate_of(self, number: int, key: str) -> FrozenTrial | None:
        for t in self.study.get_trials(deepcopy=False):
            if t.number == number or t.user_attrs.get("design_key") != key:
                continue
            if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs:
                return t
            if t.state in (TrialState.RUNNING, TrialState.WAITING) and t.number < number:
                return t
        return None

    def run(self) -> None:
        """Run trials until the queue is empty (grid) or ``n_trials`` are done."""
        if self.settings.threads:
            import torch

            torch.set_num_threads(self.settings.threads)

        def after(study: optuna.Study, t: FrozenTrial) -> None:
            stopping.check()  # a signal during Optuna's bookkeeping: the trial is told
            if self.on_trial:
                self.on_trial(t)
            if self.cfg.space.sampler == "grid" and not study.get_trials(
                deepcopy=False, states=(TrialState.WAITING,)
            ):
                study.stop()

        if self.cfg.space.sampler == "grid":
            if not self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                return
            n = None
        else:
            self.study.sampler = _sampler(self.cfg.space)
            n = self.cfg.n_trials
            if n is None:  # a worker on its own (explore shares the run's trials out)
                n = self.cfg.space.n_trials or len(self.cfg.space.points)
            if n == 0:
                return
        with stopping.deferred():
            self.study.optimize(self.objective, n_trials=n, callbacks=[after], catch=(Exception,))
        if self.fatal is not None:
            raise self.fatal


def _sampler(space: SearchSpace) -> optuna.samplers.BaseSampler:
    seed = space.seed + os.getpid() % 10_000  # distinct streams for parallel workers
    if space.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return str(x)


def worker_main(cfg: WorkerConfig, errors: Any = None) -> None:
    """Entry point of a worker process: it ends with its parent, stops cleanly on SIGINT,
    SIGTERM or SIGHUP (its running trial failed with the reason), and hands a user error
    to the parent (``errors``, a queue) as one line instead of printing it."""
    stopping.install()
    stopping.die_with_parent()
    try:
        Worker(cfg).run()
    except stopping.Stopped as e:
        raise SystemExit(e.exit_code) from None
    except TinySNNError as e:
        if errors is not None:
            errors.put(str(e))
        raise SystemExit(e.exit_code) from None


# --------------------------------------------------------------------------- reading back


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    failed: int
    running: int
    waiting: int
    seconds_per_point: float | None
    points: list[tuple[float, float]]  # (accuracy, normalized memory) of completed points
    errors: list[str]  # "trial N (key): error" of failed trials
    trainings: int = 0  # distinct trainings the space needs (set by EtaClock)
    trainings_done: int = 0  # of them, made (shared and batched ones included)
    eta_s: float | None = None  # seconds left, None before anything has been measured
    eta_rough: bool = True  # too little measured yet to trust the ETA
    done_keys: frozenset[str] = frozenset()  # design keys with a completed trial


class EtaClock:
    """The ETA of a run, from the work that takes its time: trainings.

    A point's training is done once its cached training is in the artifact folder (FP32
    trainings shared by PTQ points, every point of an ITQ batch at the batch's end) or
    the point is complete. The ETA is this run's wall time per training made times the
    trainings left, plus the points left to evaluate at the mean trial time divided among
    the workers; it is *rough* until three trainings and a quarter of the work were
    measured in this run, because trainings differ (an ITQ batch or the baseline take
    several times a tinySNN FP32 training)."""

    def __init__(self, space: SearchSpace, artifacts: Path, plan: Plan, workers: int = 1):
        self.t0 = time.monotonic()
        self.workers = max(1, workers)
        files = Trainings(space, runner.RunSettings(), artifacts)
        by_training: dict[str, list[tuple[str, Path, Path]]] = {}
        for p in space.points:
            by_training.setdefault(p.training_key, []).append(
                (p.key, files.training_file(p.training_key), files.training_file(p.key))
            )
        self.groups = list(by_training.values())
        self.start: int | None = None

    def done_trainings(self, done_keys: set[str]) -> int:
        """Trainings made: cached in the artifact folder, or behind a completed point."""
        return sum(
            any(k in done_keys or a.is_file() or b.is_file() for k, a, b in g) for g in self.groups
        )

    def update(self, p: Progress) -> Progress:
        made = self.done_trainings(set(p.done_keys))
        if self.start is None:
            self.start = made
        ran, left = made - self.start, len(self.groups) - made
        elapsed = time.monotonic() - self.t0
        evals = (p.seconds_per_point or 0.0) * max(0, p.total - p.done) / self.workers
        eta: float | None = None
        if left == 0:
            eta = evals if p.seconds_per_point is not None or p.done >= p.total else None
        elif ran > 0:
            eta = elapsed / ran * left + (0.0 if ran < left else evals)
        rough = ran < 3 or ran < 0.25 * (len(self.groups) - self.start)
        return replace(
            p, trainings=len(self.groups), trainings_done=made, eta_s=eta,
            eta_rough=rough and left > 0,
        )  # fmt: skip


def progress(url: str, study: str, total: int) -> Progress:
    s = _load(open_storage(url), study)
    trials = s.get_trials(deepcopy=False)
    done_keys = {
        t.user_attrs.get("design_key")
        for t in trials
        if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs
    }
    durations = [
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in trials
        if t.state == TrialState.COMPLETE and t.datetime_complete and t.datetime_start
    ]
    count = {st: sum(t.state == st for t in trials) for st in TrialState}
    points = [
        (float(t.user_attrs["accuracy"]), float(t.user_attrs["normalized_memory"]))
        for t in trials
        if t.state == TrialState.COMPLETE and "accuracy" in t.user_attrs
    ]
    why = s.user_attrs  # reasons of trials failed from outside (error_<number>)
    errors = [
        f"trial {t.number} ({t.user_attrs.get('design_key')}): "
        + str(
            t.user_attrs.get("error")
            or why.get(f"error_{t.number}")
            or "no reason stored (its process was killed, or the storage was full)"
        )
        for t in trials
        if t.state == TrialState.FAIL and t.user_attrs.get("design_key") not in done_keys
    ]
    return Progress(
        done_keys=frozenset(str(k) for k in done_keys),
        total=total,
        done=len(done_keys),
        failed=count[TrialState.FAIL],
        running=count[TrialState.RUNNING],
        waiting=count[TrialState.WAITING],
        seconds_per_point=sum(durations) / len(durations) if durations else None,
        points=points,
        errors=errors,
    )


def hypervolume_history(
    url: str, study: str, reference: tuple[float, float, float]
) -> list[tuple[int, float]]:
    """(trial number, hypervolume of the completed trials up to it) for the study's three
    objectives (accuracy up; memory KiB and modelled inference uJ per image down) against
    ``reference`` (accuracy, memory, energy: a point every design beats). Computed by
    Optuna's own hypervolume history (``plot_hypervolume_history``, whose plotted line is
    the data), so no hypervolume code of ours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_hypervolume_history

    s = _load(open_storage(url, write=False), study)
    if not _complete(s):
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = plot_hypervolume_history(s, list(reference))
    line = ax.lines[0]
    xs = [int(x) for x in np.asarray(line.get_xdata(), dtype=float)]
    ys = [float(y) for y in np.asarray(line.get_ydata(), dtype=float)]
    plt.close(ax.get_figure(root=True))
    return list(zip(xs, ys, strict=True))


def load_records(url: str, study: str | None = None) -> tuple[str, list[Record]]:
    """(study name, records of completed trials, one per design point, lowest number first);
    a study written before records had a schema (tinysnn 0.1.0) loads too, and one that
    cannot be read is a one-line :class:`RecordError` naming the trial."""
    must_exist(url)
    storage = open_storage(url, write=False)
    if study is None:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        if len(names) != 1:
            raise StorageError(
                "no study in this storage" if not names else
                f"several studies in this storage ({', '.join(names)}); choose one with --study"
            )  # fmt: skip
        study = names[0]
    s = _load(storage, study)
    seen: set[str] = set()
    out = []
    for t in sorted(_complete(s), key=lambda t: t.number):
        rec = t.user_attrs.get("record")
        key = str(t.user_attrs.get("design_key"))
        if rec is None or key in seen:
            continue
        seen.add(key)
        try:
            out.append(Record.from_dict(rec))
        except RecordError as e:
            raise RecordError(
                f"study {study!r}, trial {t.number}: {e}; re-run `tinysnn explore` for it "
                "with a new --study name"
            ) from None
    return study, out


def artifact_path(artifacts: Path, artifact_id: str) -> Path:
    return artifacts / "checkpoints" / artifact_id


def check_artifacts(artifacts: Path, create: bool = True) -> None:
    """The artifact folder, created (``create``) or only checked to be creatable."""
    if not create:
        cur = artifacts
        while not cur.exists() and cur.parent != cur:
            cur = cur.parent
        if not cur.is_dir() or not os.access(cur, os.W_OK | os.X_OK):
            raise ConfigError(
                f"cannot use artifact folder {artifacts}: {cur} is not a writable folder"
            )
        return
    try:
        artifacts.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot use artifact folder {artifacts}: {e.strerror or e}") from None
