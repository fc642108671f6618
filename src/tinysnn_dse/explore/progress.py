"""Progress of a run as the study holds it, and its ETA (:class:`EtaClock`: from the
trainings made, the work that takes a run's time)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from optuna.trial import TrialState

from tinysnn_dse import runner
from tinysnn_dse.explore.policy import Trainings
from tinysnn_dse.explore.space import SearchSpace
from tinysnn_dse.explore.storage import load_study, open_storage
from tinysnn_dse.explore.study import Plan


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
    s = load_study(open_storage(url), study)
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
