"""The study of a search space: created or resumed, checked to be ours, and its design
points queued (``prepare``, one process, before any worker starts).

How a grid is run without repeats or losses, whatever the number of workers or machines:

1. ``prepare`` creates or loads the study, fails trials whose worker is gone
   (:mod:`liveness`), and enqueues every design point that has no completed trial and no
   live queued or running one.
2. Workers (:mod:`worker`) pop queued trials (``study.optimize``; the storage hands each
   queued trial to one worker). A popped trial first checks the study for the same design
   key: it yields (is pruned, ``duplicate_of``) to a completed trial of that key, or to a
   queued or running one with a lower number. The lowest-numbered live trial of a key never
   yields, so a point queued twice by two ``explore`` processes runs once and is never
   dropped.
3. A trial that raises is recorded as failed (its error in ``error``); one whose process
   dies is failed by the next ``prepare`` once its heartbeat is stale. Either way the next
   ``explore`` queues its point again.

PTQ and FP32 points of one network share one FP32 training (:mod:`policy`).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from tinysnn_dse import data as data_mod
from tinysnn_dse import runner
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.explore.distributions import grid_params
from tinysnn_dse.explore.liveness import fail_stale
from tinysnn_dse.explore.space import SearchSpace
from tinysnn_dse.explore.storage import StorageError, open_storage

METRIC_NAMES = ["accuracy", "memory_kb", "infer_energy_uj_per_sample"]
DIRECTIONS: list[Literal["maximize", "minimize"]] = ["maximize", "minimize", "minimize"]


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


def budget_settings(space: SearchSpace, **run: Any) -> runner.RunSettings:
    """The run settings of ``space``'s data budget (``run``: device, threads, ...), checked."""
    b = space.budget
    return runner.RunSettings(
        dataset=b.dataset,
        train_samples=b.train_samples,
        test_samples=b.test_samples,
        assign_samples=b.assign_samples,
        epochs=b.epochs,
        seed=b.seed,
        **run,
    ).validate()


def check_budget(space: SearchSpace, data_dir: str | None = None) -> None:
    """Fail before any trial runs if the data set is missing or the budget does not fit it."""
    ds = data_mod.load(space.budget.dataset, data_dir)
    s = budget_settings(space)
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
        done = {t.user_attrs.get("design_key") for t in completed_trials(study)}
        return Plan(name, len(space.points), len(done), 0, stale, space.trainings)
    live = {
        t.user_attrs.get("design_key")
        for t in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
        )
    }
    completed = {t.user_attrs.get("design_key") for t in completed_trials(study)}
    queued = 0
    for p in space.queue_order():
        if p.key in live:
            continue
        study.enqueue_trial(grid_params(p), user_attrs={"design_key": p.key, "design": p.to_dict()})
        queued += 1
    return Plan(
        name,
        len(space.points),
        sum(p.key in completed for p in space.points),
        queued,
        stale,
        space.trainings,
    )


def completed_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
