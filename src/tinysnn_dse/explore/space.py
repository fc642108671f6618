"""Search spaces: a parsed, validated description of the design points to explore.

The CLI reads the YAML file and hands the resulting mapping to :func:`parse_space`; this
module never imports YAML. The format is documented in ``docs/search-spaces.md``::

    study: smoke                     # default study name
    data: {dataset: digits, train_samples: 300, test_samples: 300, epochs: 1, seed: 0}
    sampler: grid                    # grid (every point, the default) | tpe | nsga2
    n_trials: 20                     # tpe / nsga2 only (--n-trials overrides)
    params: {theta_plus_mv: 2}       # model parameters for every point (tinysnn params)
    designs:                         # a union of grids; each key takes a value or a list
      - {model: [baseline, sl-stdp], neurons: 100}
      - model: tinysnn
        neurons: 100
        scheme: [ptq, itq]
        rounding: [truncate, nearest, stochastic]
        weight_bits: [fp32, 8, 4]
        neuron_bits: [fp32, 16]      # Vmem and Vth together (or vmem_bits / vth_bits)

Every error names the file, the key and what is allowed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tinysnn_dse import data as data_mod
from tinysnn_dse import event_data
from tinysnn_dse.axes import ALIASES, AXES, BY_NAME, check_family, short_repr
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.errors import ConfigError, DataError
from tinysnn_dse.records import DesignPoint
from tinysnn_dse.runner import MAX_SEED, family_of
from tinysnn_dse.runner.robustness import Robustness

SAMPLERS = ("grid", "tpe", "nsga2")
#: the most design points one space may hold (the shipped ones hold at most 580)
MAX_POINTS = 20_000
TOP_KEYS = (
    "study", "description", "data", "sampler", "n_trials", "seed", "itq_batch", "params",
    "robustness", "designs",
)  # fmt: skip
DATA_KEYS = ("dataset", "train_samples", "test_samples", "assign_samples", "epochs", "seed",
             "time_bins", "spatial_factor")  # fmt: skip
#: a design block's keys: the axes (tinysnn_dse.axes), their shorthands, and params
DESIGN_KEYS = (*(a.name for a in AXES), *ALIASES, "params")


@dataclass(frozen=True)
class Budget:
    """Data set and training budget shared by every point of a space."""

    dataset: str = "digits"
    train_samples: int | None = None
    test_samples: int | None = None
    assign_samples: int | None = None
    epochs: int = 1
    seed: int = 0
    #: a user's data set (a path): the SHA-256 of its files, so that a study and its
    #: shared trainings are never reused on other data under the same path
    data_sha256: str | None = None


def quant_of(p: DesignPoint) -> QuantSpec:
    """``p``'s quantization (its Vmem/Vth ranges still a prior: the study observes them)."""
    return QuantSpec(
        scheme=p.scheme,  # type: ignore[arg-type]
        rounding=p.rounding,  # type: ignore[arg-type]
        weight_bits=p.weight_bits,
        vmem_bits=p.vmem_bits,
        vth_bits=p.vth_bits,
    )


def canonical(p: DesignPoint) -> DesignPoint:
    """FP32 is one point whatever scheme or rounding is named beside it, and an unpruned
    point one whatever pruning method (:attr:`DesignPoint.canonical`)."""
    return p.canonical


@dataclass(frozen=True)
class SearchSpace:
    study: str
    source: str
    budget: Budget
    sampler: str = "grid"
    n_trials: int | None = None
    seed: int = 0
    points: tuple[DesignPoint, ...] = field(default_factory=tuple)
    description: str = ""
    itq_batch: int = 1  # ITQ points of one tinySNN-rule network trained together, at most
    #: adversarial accuracy of every point after its test (runner.robustness), or None
    robustness: Robustness | None = None
    #: the points whose membrane floor was chosen on the holdout (``vmem_floor: auto``,
    #: :func:`explore.policy.resolve_floors`): (key, the choice as JSON)
    floor_auto: tuple[tuple[str, str], ...] = ()

    def itq_group(self, p: DesignPoint) -> tuple[DesignPoint, ...]:
        """The ITQ points trained together with ``p`` (``p`` alone if it is not batched):
        the quantized ITQ points of ``p``'s network (tinySNN rule), sorted by key, cut into
        groups of at most ``itq_batch``."""
        groups = _itq_groups(self.points, self.itq_batch)
        return groups.get(p.key, (p,))

    def queue_order(self) -> tuple[DesignPoint, ...]:
        """The points in the order ``explore`` queues them (workers take the oldest), so
        that long trainings start first and parallel workers seldom wait on one another's
        training locks:

        0. the point that starts each training other points need (an FP32 network that
           PTQ points share and quantized-neuron ITQ points take their ranges from);
        1. the point that starts each other training, unbatched;
        2. one point of each ITQ group (it trains the whole group);
        3. the rest, which reuse a training started above: in the order their trainings
           started, so that a worker reaches the points of the last group to start last.

        Within a rank, the space's order. Results do not depend on the order."""
        users: dict[str, int] = {}
        for p in self.points:
            for key in _trainings_needed(p):
                users[key] = users.get(key, 0) + 1
        groups = _itq_groups(self.points, self.itq_batch)
        starters: list[tuple[int, int, str, DesignPoint]] = []
        rest: list[tuple[int, str, DesignPoint]] = []
        started: set[str] = set()
        for i, p in enumerate(self.points):
            group = groups.get(p.key)
            start = ",".join(q.key for q in group) if group else p.training_key
            if start in started:
                rest.append((i, start, p))
                continue
            started.add(start)
            rank = 2 if group else 0 if users.get(p.training_key, 0) > 1 else 1
            starters.append((rank, i, start, p))
        starters.sort(key=lambda x: (x[0], x[1]))
        pos = {start: n for n, (_r, _i, start, _p) in enumerate(starters)}
        rest.sort(key=lambda x: (pos[x[1]], x[0]))
        return tuple(p for *_x, p in starters) + tuple(p for *_x, p in rest)

    @property
    def trainings(self) -> int:
        """Distinct trainings the points need (PTQ points share their FP32 training; ITQ
        points with quantized Vmem or Vth need it too, for the range of their formats)."""
        return len({key for p in self.points for key in _trainings_needed(p)})

    def budget_dict(self) -> dict[str, Any]:
        """What fixes the trained networks: the data budget (and the ITQ batch size when
        points are batched, since batched points share their random numbers)."""
        d = asdict(self.budget)
        if d["data_sha256"] is None:  # a built-in set: the dict studies stored before
            del d["data_sha256"]
        if self.itq_batch > 1:
            d["itq_batch"] = self.itq_batch
        return d


def needs_reference(p: DesignPoint) -> bool:
    """Whether ``p``'s training needs the FP32 training of its network first: an ITQ point
    of the STDP family with quantized Vmem or Vth (the range of its formats), and every
    ITQ point of the gradient-trained family (it fine-tunes that training, in the formats
    of its ranges)."""
    if p.scheme != "itq" or p.is_fp32:
        return False
    return p.family != "stdp" or p.vmem_bits is not None or p.vth_bits is not None


def stage_before(p: DesignPoint) -> DesignPoint | None:
    """The FP32 point whose training ``p``'s FP32 training starts from, where it is a stage
    of a schedule (IIR: the same network one step longer), else None."""
    axes = family_of(p.model).stage_before(_model(p))
    return None if axes is None else replace(p.fp32, **axes)


def _trainings_needed(p: DesignPoint) -> tuple[str, ...]:
    """Training keys ``p`` needs: its own, the FP32 training of its network where
    :func:`needs_reference`, and the stages that one starts from."""
    keys = [p.training_key]
    # the FP32 training: p's own (FP32 and PTQ points), or the one p's starts from
    fp32_used = needs_reference(p) or p.training_key == p.fp32.training_key
    q: DesignPoint | None = p.fp32 if fp32_used else None
    if q is not None and q.training_key != p.training_key:
        keys.append(q.training_key)
    while q is not None:
        q = stage_before(q)
        if q is not None:
            keys.append(q.training_key)
    return tuple(keys)


def _batchable(p: DesignPoint) -> bool:
    # STDP pruning trains in batches too (magnitude pruning needs no ITQ training of its own)
    if p.scheme != "itq" or p.is_fp32:
        return False
    return family_of(p.model).batchable(_model(p))


def _model(p: DesignPoint, dataset: str | None = None) -> Any:
    """``p``'s model at a nominal size (784 inputs, 10 classes): what its family builds of
    its axes and parameters, checked (a one-line ConfigError otherwise); a floor still to
    be chosen (``vmem_floor: auto``, :func:`explore.policy.resolve_floors`) as none."""
    if p.vmem_floor == "auto":
        p = replace(p, vmem_floor=0)
    return family_of(p.model).model(p.model, 784, p.neurons, 10, dataset, p.model_params)


def _itq_groups(points: tuple[DesignPoint, ...], size: int) -> dict[str, tuple[DesignPoint, ...]]:
    """Point key -> its ITQ training group (see :meth:`SearchSpace.itq_group`)."""
    if size <= 1:
        return {}
    nets: dict[str, list[DesignPoint]] = {}
    for p in points:
        if _batchable(p):
            nets.setdefault(p.fp32.training_key, []).append(p)
    out: dict[str, tuple[DesignPoint, ...]] = {}
    for members in nets.values():
        members.sort(key=lambda q: q.key)  # the same groups whatever order points come in
        for i in range(0, len(members), size):
            group = tuple(members[i : i + size])
            out.update({q.key: group for q in group})
    return out


# --------------------------------------------------------------------------- parsing


class _Ctx:
    def __init__(self, source: str) -> None:
        self.source = source

    def err(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: {msg}")


def _as_list(ctx: _Ctx, key: str, v: Any) -> list[Any]:
    vals = list(v) if isinstance(v, (list, tuple)) else [v]
    if not vals:
        raise ctx.err(key, "empty list; give at least one value")
    return vals


def _int(
    ctx: _Ctx, key: str, v: Any, lo: int = 1, allow_none: bool = False, hi: int | None = None
) -> int | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        allowed = f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}"
        allowed += " or null (all)" if allow_none else ""
        raise ctx.err(key, f"{short_repr(v)} is not allowed; expected {allowed}")
    return v


def _choice(ctx: _Ctx, key: str, v: Any, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise ctx.err(key, f"unknown value {short_repr(v)}; allowed: {', '.join(allowed)}")
    return str(v)


def _mapping(ctx: _Ctx, key: str, v: Any, allowed: tuple[str, ...] | None) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ctx.err(key, f"expected a mapping, got {type(v).__name__}")
    if allowed is not None:
        for k in v:
            if k not in allowed:
                raise ctx.err(f"{key}.{k}", f"unknown key; allowed: {', '.join(allowed)}")
    return v


def _params(ctx: _Ctx, key: str, v: Any) -> tuple[tuple[str, Any], ...]:
    """A ``params`` mapping (checked against each point's family: :func:`_check_models`)."""
    d = _mapping(ctx, key, v or {}, None)
    return tuple(sorted((str(k), d[k]) for k in d))


def _check_models(
    ctx: _Ctx,
    where: str,
    points: list[DesignPoint],
    common: tuple[tuple[str, Any], ...],
    dataset: str | None = None,
) -> None:
    """Every point's axes mean something for its family, and its parameters are real
    parameters of its family with valid values, for the space's data set; one check per
    model and parameters (an error in the space's own ``params`` is named as such)."""
    seen: set[tuple[str, tuple[tuple[str, Any], ...]]] = set()
    for p in points:
        check_family(p.axes, f"{ctx.source}: {where}")
        sig = (p.model, tuple(sorted((k, repr(v)) for k, v in p.model_params.items())))
        if sig in seen:
            continue
        seen.add(sig)
        try:
            _model(p)
        except ConfigError:
            pass
        else:
            try:  # sound on its own: does it fit the data (an event set's frames)?
                _model(p, dataset)
            except ConfigError as e:
                raise ctx.err(where, f"{e} (model {p.model}, data {dataset})") from None
            continue
        try:
            _model(p)
        except ConfigError as e:
            try:  # the space's common params alone
                _model(replace(p, params=common))
            except ConfigError as e0:
                raise ctx.err("params", f"{e0} (model {p.model})") from None
            raise ctx.err(f"{where}.params", f"{e} (model {p.model})") from None


def parse_space(raw: Any, source: str) -> SearchSpace:
    """Validate a search-space mapping (from YAML) and enumerate its design points."""
    ctx = _Ctx(source)
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    for k in raw:
        if k not in TOP_KEYS:
            raise ctx.err(str(k), f"unknown key; allowed: {', '.join(TOP_KEYS)}")
    if "designs" not in raw:
        raise ctx.err("designs", "missing; list at least one block of design axes")
    study = raw.get("study", source.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    if not isinstance(study, str) or not study.strip():
        raise ctx.err("study", "expected a non-empty name")
    data = _mapping(ctx, "data", raw.get("data", {}), DATA_KEYS)
    events = None  # an event data set's binning (data.event_data)
    if "time_bins" in data or "spatial_factor" in data:
        events = event_data.EventOptions(data.get("time_bins", event_data.TIME_BINS),
                                         data.get("spatial_factor", 1.0))  # fmt: skip
    try:  # a built-in name, or the path of a user's data (data.check_name)
        dataset = data_mod.check_name(data.get("dataset", "digits"), f"{source}: data.dataset",
                                      events)  # fmt: skip
        sha = data_mod.fingerprint(dataset) if data_mod.is_user_data(dataset) else None
    except DataError as e:
        raise ConfigError(str(e)) from None
    budget = Budget(
        dataset=dataset,
        data_sha256=sha,
        train_samples=_int(ctx, "data.train_samples", data.get("train_samples"), 1, True),
        test_samples=_int(ctx, "data.test_samples", data.get("test_samples"), 1, True),
        assign_samples=_int(ctx, "data.assign_samples", data.get("assign_samples"), 1, True),
        epochs=_int(ctx, "data.epochs", data.get("epochs", 1)) or 1,
        seed=_int(ctx, "data.seed", data.get("seed", 0), 0, hi=MAX_SEED) or 0,
    )
    sampler = _choice(ctx, "sampler", raw.get("sampler", "grid"), SAMPLERS)
    n_trials = _int(ctx, "n_trials", raw.get("n_trials"), 1, True)
    seed = _int(ctx, "seed", raw.get("seed", 0), 0, hi=MAX_SEED) or 0
    common = _params(ctx, "params", raw.get("params"))
    blocks = raw["designs"]
    if not isinstance(blocks, list) or not blocks:
        raise ctx.err("designs", "expected a non-empty list of blocks")
    if len(blocks) > MAX_POINTS:
        raise ctx.err("designs", f"{len(blocks):,} blocks; at most {MAX_POINTS:,}")
    points: dict[str, DesignPoint] = {}
    for i, blk in enumerate(blocks):
        where = f"designs[{i}]"
        blk = _mapping(ctx, where, blk, DESIGN_KEYS)
        if "model" not in blk:
            raise ctx.err(
                f"{where}.model", f"missing; allowed: {', '.join(BY_NAME['model'].choices)}"
            )
        for alias, names in ALIASES.items():
            if alias in blk and any(n in blk for n in names):
                raise ctx.err(f"{where}.{alias}", f"give {alias} or {'/'.join(names)}")
        raw_axes = {a.name: blk.get(a.name, a.default) for a in AXES}
        tied: dict[str, str] = {}  # axis -> the axis whose values it takes (an alias)
        for alias, (first, *rest) in ALIASES.items():
            if alias in blk:
                raw_axes[first] = blk[alias]
                for n in rest:
                    del raw_axes[n]
                    tied[n] = first
        lists = {name: _as_list(ctx, f"{where}.{name}", v) for name, v in raw_axes.items()}
        size = math.prod(len(v) for v in lists.values())
        if size + len(points) > MAX_POINTS:
            raise ctx.err(
                where, f"{size:,} combinations; a space holds at most {MAX_POINTS:,} design points"
            )
        axes = {
            name: [BY_NAME[name].parse(v, f"{ctx.source}: {where}.{name}") for v in vals]
            for name, vals in lists.items()
        }
        combos = [dict(zip(axes, vals, strict=True)) for vals in itertools.product(*axes.values())]
        for c in combos:
            c.update({n: c[first] for n, first in tied.items()})
        prm = dict(common)
        prm.update(_params(ctx, f"{where}.params", blk.get("params")))
        block = [DesignPoint(**c, params=tuple(sorted(prm.items()))) for c in combos]  # type: ignore[arg-type]
        _check_models(ctx, where, block, common, budget.dataset)
        for p in block:
            p = canonical(p)
            points.setdefault(p.key, p)
    itq_batch = _int(ctx, "itq_batch", raw.get("itq_batch", 1)) or 1
    robust = None
    if raw.get("robustness") is not None:
        robust = Robustness.from_mapping(raw["robustness"], f"{source}: robustness")
        if data_mod.is_event_data(budget.dataset):
            raise ctx.err("robustness", "adversarial attacks perturb images; this data set "
                          "is events")  # fmt: skip
    # FP32 first (they train the networks PTQ reuses), then ITQ, then PTQ.
    order = sorted(points.values(), key=lambda p: 0 if p.is_fp32 else 1 if p.scheme == "itq" else 2)
    # Batched ITQ groups interleaved (first member of every group, then the second ...), so
    # that parallel workers start on different groups rather than wait on one.
    groups = _itq_groups(tuple(order), itq_batch)
    rank = {k: g.index(next(q for q in g if q.key == k)) for k, g in groups.items()}
    order = sorted(
        order,
        key=lambda p: (0 if p.is_fp32 else 1 if p.scheme == "itq" else 2, rank.get(p.key, 0)),
    )
    return SearchSpace(
        study=study.strip(),
        source=source,
        budget=budget,
        sampler=sampler,
        n_trials=n_trials,
        seed=seed,
        points=tuple(order),
        description=str(raw.get("description", "")),
        itq_batch=itq_batch,
        robustness=robust,
    )
