"""A worker: runs the trials of one study in its process, one design point each (the
objective: find or make the point's training, test it, record it, upload its
checkpoint), until the queue is empty (grid) or its share of trials is done."""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.trial import FrozenTrial, TrialState

from tinysnn_dse import runner
from tinysnn_dse.axes import AXES, nearest
from tinysnn_dse.errors import OutputError, TinySNNError
from tinysnn_dse.explore import stopping
from tinysnn_dse.explore.distributions import display_distributions, suggest, suggest_axes
from tinysnn_dse.explore.liveness import Heartbeat
from tinysnn_dse.explore.policy import Trainings
from tinysnn_dse.explore.space import DesignPoint, SearchSpace
from tinysnn_dse.explore.storage import StorageError, load_study, open_storage
from tinysnn_dse.explore.study import budget_settings
from tinysnn_dse.files import write_guard


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
    return budget_settings(space, device=device, threads=threads, power_w=power_w)


class Worker:
    """Runs trials of one study in this process; data and splits are loaded once."""

    def __init__(self, cfg: WorkerConfig, on_trial: Callable[[FrozenTrial], None] | None = None):
        self.cfg = cfg
        self.on_trial = on_trial
        self.study = load_study(open_storage(cfg.url), cfg.study)
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
            for name, dist in display_distributions(p).items():  # shown by optuna-dashboard
                suggest(trial, name, dist)
        else:  # per axis, then the space's nearest point (a union of grids)
            pts = self.cfg.space.points
            s = suggest_axes(trial, pts)
            p = pts[nearest(s, self._axes)]
            trial.set_user_attr("design_key", p.key)
            trial.set_user_attr("design", p.to_dict())
        dup = self._duplicate_of(trial.number, p.key)
        if dup is not None:
            trial.set_user_attr("duplicate_of", dup.number)
            if self.cfg.space.sampler == "grid" or dup.values is None:
                raise optuna.TrialPruned(f"duplicate of trial {dup.number}")
            return tuple(dup.values)  # type: ignore[return-value]
        hb = Heartbeat(trial)
        try:
            trained, quant, shared = self.trainings.train_point(p)
            split, _n = self.trainings.split()
            trained = replace(trained, data_source=self.trainings.data_source)
            ev = runner.evaluate(trained, quant, split)
            if self.cfg.space.robustness is not None:  # adversarial accuracy (the space's)
                rec = runner.robust_record(trained, quant, ev, split, self.cfg.space.robustness,
                                           self.trainings.tensors)  # fmt: skip
                ev = ev._replace(record=rec)
            chosen = dict(self.cfg.space.floor_auto).get(p.key)
            if chosen is not None:  # its membrane floor was chosen on the holdout (auto)
                rec = ev.record
                ev = ev._replace(record=replace(
                    rec, config={**rec.config, "vmem_floor_auto": json.loads(chosen)}))  # fmt: skip
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
        beside the store first; a full disk is one line (:func:`write_guard`)."""
        where = f"the checkpoint of trial {trial.number} into {self.cfg.artifacts}"
        with write_guard(where), \
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
        races = 0
        while True:
            try:
                with stopping.deferred():
                    self.study.optimize(self.objective, n_trials=n, callbacks=[after],
                                        catch=(Exception,))  # fmt: skip
                break
            except ValueError as e:
                # Optuna's tell found this worker's trial already finished: seen once in
                # CI (a resumed two-worker grid study on SQLite), not reproduced since. The
                # stored trial stands; a grid worker goes on with the queue rather than
                # ending the explore with an error.
                grid = self.cfg.space.sampler == "grid"
                races += 1
                if not (grid and str(e).startswith("Cannot tell a ")) or races > len(
                    self.cfg.space.points
                ):
                    raise
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
