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

from tinysnn_dse.axes import AXES, FAMILIES, Axis
from tinysnn_dse.explore.space import DesignPoint

#: the models the ``model`` parameter of a study names: those of the STDP family, as every
#: study stored before the second family (Optuna refuses a categorical whose choices
#: change, so a study written then resumes only if this stays); a point of another family
#: is named by the ``family`` parameter (its family's one model)
STUDY_MODELS: tuple[str, ...] = FAMILIES["stdp"]
FAMILY_PARAM = "family"
FAMILY_DISTRIBUTION = CategoricalDistribution(tuple(FAMILIES))


def grid_params(p: DesignPoint) -> dict[str, Any]:
    """A grid point as Optuna parameters (for the dashboard): each axis's cell
    (:meth:`Axis.display`) under :func:`display_distributions`, for the axes of its
    family; ``model`` for a model of :data:`STUDY_MODELS` only, and the point's family."""
    out = {
        a.name: v if a.kind in ("count", "fraction") else a.display(v, p.is_fp32, not p.is_pruned)
        for a, v in zip(AXES, p.axes.values(), strict=True)
        if a.applies_to(p.model)  # an axis of another family is no parameter of the point
    }
    if p.model not in STUDY_MODELS:
        del out["model"]
    out[FAMILY_PARAM] = p.family
    return out


def display_distributions(p: DesignPoint) -> dict[str, BaseDistribution]:
    """The distributions of :func:`grid_params`'s parameters of ``p``."""
    return {
        name: FAMILY_DISTRIBUTION if name == FAMILY_PARAM else display_distribution(BY[name])
        for name in grid_params(p)
    }


BY = {a.name: a for a in AXES}


def display_distribution(a: Axis) -> BaseDistribution:
    """A grid study's distribution of axis ``a``: fixed by the code, whatever the space,
    so that a study resumes after its space grows."""
    if a.name == "model":
        return CategoricalDistribution(STUDY_MODELS)
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
    if a.name == "model":  # the family beside it: :func:`suggest_axes`
        return CategoricalDistribution(STUDY_MODELS)
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


def suggest_axes(trial: optuna.Trial, points: tuple[DesignPoint, ...]) -> dict[str, Any]:
    """A TPE or NSGA-II trial's suggestion of every axis (:func:`search_distribution`);
    where the space holds more than one family, the family too (``family``), and a
    family other than the STDP one stands for its model."""
    s = {a.name: suggest(trial, a.name, search_distribution(a, points)) for a in AXES}
    families = sorted({p.family for p in points})
    family = families[0]
    if len(families) > 1:
        family = suggest(trial, FAMILY_PARAM, FAMILY_DISTRIBUTION)
    if family != "stdp":
        s["model"] = FAMILIES[family][0]
    return s
