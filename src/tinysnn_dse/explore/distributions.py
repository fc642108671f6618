"""How a design point's axes appear to Optuna, one kind of parameter per sampler family
(docs/architecture.md, "Design axes"): a grid trial carries each axis as a table cell
under distributions fixed by the code (for optuna-dashboard, and so that a study resumes
after its space grows); a TPE or NSGA-II trial suggests every axis, ordered axes as
integers over the space's range."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from tinysnn_dse.axes import AXES, Axis
from tinysnn_dse.explore.space import DesignPoint


def grid_params(p: DesignPoint) -> dict[str, Any]:
    """A grid point as Optuna parameters (for the dashboard): each axis's cell
    (:meth:`Axis.display`) under :func:`display_distribution`."""
    return {
        a.name: v if a.kind in ("count", "fraction") else a.display(v, p.is_fp32, not p.is_pruned)
        for a, v in zip(AXES, p.axes.values(), strict=True)
    }


def display_distribution(a: Axis) -> BaseDistribution:
    """A grid study's distribution of axis ``a``: fixed by the code, whatever the space,
    so that a study resumes after its space grows."""
    if a.kind == "count":
        return IntDistribution(1 if a.log else 0, 1_000_000, log=a.log)
    if a.kind == "fraction":
        return FloatDistribution(0.0, 1.0)
    return CategoricalDistribution(a.display_choices())


def search_distribution(a: Axis, points: tuple[DesignPoint, ...]) -> BaseDistribution:
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


def suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high)
    assert isinstance(dist, CategoricalDistribution)
    return trial.suggest_categorical(name, dist.choices)  # type: ignore[call-overload]
