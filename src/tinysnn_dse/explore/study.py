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
import sqlalchemy.exc
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from tinysnn_dse import data as data_mod
from tinysnn_dse import runner
from tinysnn_dse.axes import AXES, Axis, nearest
from tinysnn_dse.errors import ConfigError, TinySNNError
from tinysnn_dse.explore.policy import Trainings
from tinysnn_dse.explore.space import DesignPoint, SearchSpace
from tinysnn_dse.records import Record, RecordError

METRIC_NAMES = ["accuracy", "memory_kb", "infer_energy_uj_per_sample"]
DIRECTIONS: list[Literal["maximize", "minimize"]] = ["maximize", "minimize", "minimize"]
HEARTBEAT_S = 15.0
STALE_AFTER_S = 90.0
ATTR_HEARTBEAT = "heartbeat_unix"
DEFAULT_STORAGE = "sqlite:///tinysnn.db"

optuna.logging.set_verbosity(optuna.logging.ERROR)


class StorageError(TinySNNError):
    """A storage URL that cannot be opened, or a study that does not match its space."""


# --------------------------------------------------------------------------- storage


def open_storage(url: str) -> BaseStorage:
    """An Optuna storage for a SQLAlchemy URL or ``journal:PATH`` (also a ``.log`` path)."""
    if url.startswith("journal:") or url.endswith((".log", ".journal")):
        path = url.removeprefix("journal:")
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(path))
        except OSError as e:
            raise StorageError(f"cannot open journal {path}: {e.strerror or e}") from None
    if "://" not in url:
        raise StorageError(
            f"storage {url!r} is not a database URL (sqlite:///FILE, postgresql://...) "
            "or journal:FILE"
        )
    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine["connect_args"] = {"timeout": 60}
        db = url.split(":///", 1)[-1]
        if db and db != ":memory:" and not Path(db).parent.is_dir():
            raise StorageError(f"cannot open {url}: folder {Path(db).parent} does not exist")
    else:
        engine["pool_pre_ping"] = True
        engine["connect_args"] = {"connect_timeout": 10} if "postgres" in url else {}
    for attempt in range(8):
        try:
            return RDBStorage(url, engine_kwargs=engine)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as e:
            # Processes that open a fresh database at the same moment race to create
            # Optuna's tables ("duplicate key", "already exists"); the loser tries again.
            text = str(e).lower()
            if attempt == 7 or not ("duplicate" in text or "already exists" in text):
                msg = str(getattr(e, "orig", None) or e).strip().splitlines()
                raise StorageError(f"cannot open storage {_redact(url)}: {msg[0]}") from None
            time.sleep(0.2 + 0.3 * attempt)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as e:
            msg = str(getattr(e, "orig", None) or e).strip().splitlines()
            raise StorageError(
                f"cannot open storage {_redact(url)}: {msg[0] if msg else e}"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _must_exist(url: str) -> None:
    """Reading commands never create a database file as a side effect."""
    path = None
    if url.startswith("sqlite:///") and url[10:] not in ("", ":memory:"):
        path = Path(url[10:])
    elif url.startswith("journal:") or url.endswith((".log", ".journal")):
        path = Path(url.removeprefix("journal:"))
    if path is not None and not path.is_file():
        raise StorageError(f"{url}: no such study storage (run tinysnn explore first)")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def default_artifacts(url: str) -> Path:
    """Checkpoints live next to a SQLite or journal file, else in ./tinysnn-artifacts."""
    if url.startswith("sqlite:///") and url[10:] not in ("", ":memory:"):
        return Path(url[10:]).resolve().parent / "tinysnn-artifacts"
    if url.startswith("journal:") or url.endswith((".log", ".journal")):
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


def prepare(space: SearchSpace, url: str, study_name: str | None = None) -> Plan:
    """Create or resume the study of ``space`` and queue every point still to run."""
    storage = open_storage(url)
    name = study_name or space.study
    for attempt in range(5):  # two explore processes may create the same study at once
        try:
            study = optuna.create_study(
                storage=storage, study_name=name, directions=DIRECTIONS, load_if_exists=True
            )
            break
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.DuplicatedStudyError) as e:
            if attempt == 4:
                msg = str(e).splitlines()[0]
                raise StorageError(f"cannot create study {name!r}: {msg}") from None
            time.sleep(0.5 + attempt)
    if study.directions and len(study.directions) != len(DIRECTIONS):
        raise StorageError(f"study {name!r} exists but was not made by tinysnn explore")
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
        self.settings = runner.RunSettings(
            dataset=cfg.space.budget.dataset,
            train_samples=cfg.space.budget.train_samples,
            test_samples=cfg.space.budget.test_samples,
            assign_samples=cfg.space.budget.assign_samples,
            epochs=cfg.space.budget.epochs,
            seed=cfg.space.budget.seed,
            device=cfg.device,
            threads=cfg.threads,
            power_w=cfg.power_w,
        ).validate()
        self.points = {p.key: p for p in cfg.space.points}
        self._axes = [{a.name: getattr(p, a.name) for a in AXES} for p in cfg.space.points]
        self.trainings = Trainings(cfg.space, self.settings, Path(cfg.artifacts), cfg.data_dir)

    def objective(self, trial: optuna.Trial) -> tuple[float, float, float]:
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
        trial.set_user_attr("worker_host", socket.gethostname())
        trial.set_user_attr("worker_pid", os.getpid())
        hb = _Heartbeat(trial)
        try:
            trained, quant, shared = self.trainings.train_point(p)
            split, _n = self.trainings.split()
            trained = replace(trained, data_source=self.trainings.data_source)
            ev = runner.evaluate(trained, quant, split)
            with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                ckpt, _rec = runner.save(Path(tmp), trained, ev)
                art = upload_artifact(
                    artifact_store=self.store,
                    file_path=str(ckpt),
                    study_or_trial=trial,
                    mimetype="application/octet-stream",
                )
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
        self.study.optimize(self.objective, n_trials=n, callbacks=[after], catch=(Exception,))


def _sampler(space: SearchSpace) -> optuna.samplers.BaseSampler:
    seed = space.seed + os.getpid() % 10_000  # distinct streams for parallel workers
    if space.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return str(x)


def worker_main(cfg: WorkerConfig) -> None:
    """Entry point of a worker process."""
    try:
        Worker(cfg).run()
    except TinySNNError as e:
        raise SystemExit(f"error: {e}") from None


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
    errors = [
        f"trial {t.number} ({t.user_attrs.get('design_key')}): {t.user_attrs.get('error')}"
        for t in trials
        if t.state == TrialState.FAIL and t.user_attrs.get("design_key") not in done_keys
    ]
    return Progress(
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

    s = _load(open_storage(url), study)
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
    _must_exist(url)
    storage = open_storage(url)
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


def check_artifacts(artifacts: Path) -> None:
    try:
        artifacts.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot use artifact folder {artifacts}: {e.strerror or e}") from None
