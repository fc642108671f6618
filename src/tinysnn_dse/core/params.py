"""Typed, frozen parameter sets: every default of docs/method.md lives here, once.

Units are in the names (``_ms``, ``_mv``, ``_hz``). All dataclasses are frozen and
JSON-serialisable through :func:`dataclasses.asdict`, so a resolved configuration can be
stored with every checkpoint and record.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from tinysnn_dse.axes import (
    MAX_BITS,
    MIN_BITS,
    MODELS,
    PRUNE_METHODS,
    SCHEMES,
    Leak,
    ModelName,
    PruneMethod,
    Scheme,
)
from tinysnn_dse.core.modes import Reset, RoundMode, Rule, Topology
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.records import quant_label

Readout = Literal["all", "proportion", "soft-vote"]

RULES: tuple[str, ...] = tuple(r.value for r in Rule)
TOPOLOGIES: tuple[str, ...] = tuple(t.value for t in Topology)
READOUTS: tuple[str, ...] = get_args(Readout)
LEAKS: tuple[str, ...] = get_args(Leak)  # (tinysnn_dse.axes)

#: Model presets of method.md section 1.3 / 2: (topology, learning rule).
PRESETS: dict[str, tuple[Topology, Rule]] = {
    "baseline": (Topology.INHIBITORY, Rule.PAIR),
    "sl-stdp": (Topology.INHIBITORY, Rule.SL_STDP),
    "tinysnn": (Topology.LATERAL, Rule.TINYSNN),
}


#: how inference draws its input spikes (EncodingParams.encoder)
ENCODERS = ("geometric", "counter")


@dataclass(frozen=True)
class EncodingParams:
    """Poisson rate coding (method.md 1.1)."""

    dt_ms: float = 1.0
    t_present_ms: float = 250.0
    max_rate_hz: float = 128.0
    # DC15: an image that draws fewer than `min_spikes` excitatory spikes is presented
    # again with the maximum rate raised by `rate_boost_hz`, at most `max_boosts` times
    # (in training and in testing). min_spikes = 0 turns this off.
    min_spikes: float = 5.0
    rate_boost_hz: float = 32.0
    max_boosts: float = 8.0
    # presentation time at inference (assignment and test); 0: t_present_ms. Shorter
    # inference presentations trade accuracy for energy (docs/model.md)
    t_infer_ms: float = 0.0
    # how inference draws the input spikes (the same Bernoulli-per-step process either
    # way): "geometric" (gaps between spikes by skipping, float logarithms; the default)
    # or "counter" (a spike where a 24-bit counter-based uniform of (image key, boost,
    # step, input) falls below an integer threshold of the pixel: what a chip reproduces
    # bit for bit from the pixels and the image's key, encoding.counter_trains)
    encoder: str = "geometric"

    @property
    def steps(self) -> int:
        return int(round(self.t_present_ms / self.dt_ms))

    def for_inference(self) -> EncodingParams:
        """The encoding of the inference passes: ``t_infer_ms`` when it is set."""
        if self.t_infer_ms <= 0:
            return self
        return dataclasses.replace(self, t_present_ms=self.t_infer_ms, t_infer_ms=0.0)


@dataclass(frozen=True)
class ExcParams:
    """DC15 excitatory neurons with adaptive threshold (method.md 1.2)."""

    v_rest_mv: float = -65.0
    v_reset_mv: float = -60.0
    v_th_mv: float = -52.0
    tau_m_ms: float = 100.0
    t_ref_ms: float = 5.0
    theta_plus_mv: float = 2.0  # method.md starts at 0.05 (DC15); tuned: docs/results.md
    tau_theta_ms: float = 1e7
    one_spike: bool = True  # at most one excitatory spike per step during learning
    leak: Leak = "lif"  # "if": integrate-and-fire, no leak (decay 1)
    reset: Reset = Reset.VALUE  # what a spike leaves in the potential (modes.Reset)
    # how far below rest an excitatory potential may fall: a floor (BindsNET's lbound) at
    # v_rest_mv - this, applied after every step's rounding; 0: none. Spares a Vmem format
    # the inhibited tail (docs/model.md, "Membrane floor")
    vmem_floor_mv: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "reset", Reset.of(self.reset))


@dataclass(frozen=True)
class InhParams:
    """Baseline inhibitory layer and tinySNN's direct lateral inhibition (method.md 1.3)."""

    v_rest_mv: float = -60.0
    v_reset_mv: float = -45.0
    v_th_mv: float = -40.0
    tau_m_ms: float = 10.0
    t_ref_ms: float = 2.0
    w_exc_inh: float = 22.5  # exc -> inh, one to one
    w_inh_exc: float = 17.5  # inh -> exc, all to all but self (applied as -w)
    w_lateral: float = 150.0  # tinySNN: exc -> every other exc (-w); method.md 17.5, tuned


@dataclass(frozen=True)
class LearningParams:
    """Learning rules and weight bookkeeping (method.md 2)."""

    w_max: float = 1.0
    w_init_scale: float = 0.3  # W ~ w_init_scale * U(0, 1)
    norm_per_input: float = 0.1  # column sums are rescaled to norm_per_input * n_in
    tau_trace_ms: float = 20.0
    # pair STDP (DC15)
    eta_pre: float = 1e-4
    eta_post: float = 1e-2
    # SL-STDP
    eta_sl: float = 1e-2
    x_tar: float = 0.4
    # tinySNN
    eta: float = 1e-2
    s_th: float = 3.0
    update_every_ms: float = 25.0
    # pruning (docs/model.md, "Pruning"): the fraction of each excitatory
    # neuron's input synapses removed, by ``stdp`` (during training, in ``prune_rounds``
    # equal steps spread over the first ``prune_until`` of the training images) or by
    # ``magnitude`` (once, after training)
    prune: float = 0.0
    prune_method: PruneMethod = "stdp"
    prune_rounds: float = 10.0
    prune_until: float = 0.5


@dataclass(frozen=True)
class QuantSpec:
    """Fixed-point quantization of weights, Vmem and Vth (method.md 4).

    ``*_bits`` is ``None`` for FP32 (no quantization) or a word length in [2, 32].
    ``*_int_bits`` overrides the integer bits derived from ``*_range``. The Vmem and Vth
    ranges are a prior until they are observed on an FP32 run of the network
    (``quant.with_ranges``); ``ranges_source`` then says which run. ``rounding`` is given
    as its spelling and held as a :class:`RoundMode` (parsed here, once).
    """

    scheme: Scheme = "ptq"
    rounding: RoundMode = RoundMode.NEAREST
    weight_bits: int | None = None
    vmem_bits: int | None = None
    vth_bits: int | None = None
    weight_int_bits: int | None = None
    vmem_int_bits: int | None = None
    vth_int_bits: int | None = None
    weight_range: tuple[float, float] = (0.0, 1.0)
    vmem_range_mv: tuple[float, float] = (-100.0, 0.0)
    vth_range_mv: tuple[float, float] = (-100.0, 0.0)
    ranges_source: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "rounding", RoundMode.of(self.rounding))

    @property
    def is_fp32(self) -> bool:
        return self.weight_bits is None and self.vmem_bits is None and self.vth_bits is None

    @property
    def needs_ranges(self) -> bool:
        """Whether a quantized Vmem or Vth still takes its integer bits from a range that
        was not observed (neither given integer bits nor ``ranges_source``)."""
        if self.ranges_source is not None:
            return False
        return (self.vmem_bits is not None and self.vmem_int_bits is None) or (
            self.vth_bits is not None and self.vth_int_bits is None
        )

    def label(self) -> str:
        return quant_label(
            self.scheme, self.rounding, self.weight_bits, self.vmem_bits, self.vth_bits
        )


@dataclass(frozen=True)
class ModelConfig:
    """A network: size, topology, learning rule and all neuron/learning parameters. The
    topology and the rule are given as their spellings and held as :class:`Topology` and
    :class:`Rule` members (parsed here, once)."""

    model: ModelName = "tinysnn"
    n_in: int = 784
    n_exc: int = 400
    topology: Topology = Topology.LATERAL
    rule: Rule = Rule.TINYSNN
    encoding: EncodingParams = field(default_factory=EncodingParams)
    exc: ExcParams = field(default_factory=ExcParams)
    inh: InhParams = field(default_factory=InhParams)
    learning: LearningParams = field(default_factory=LearningParams)
    readout: Readout = "soft-vote"  # method.md: "all"; chosen on the holdouts: docs/model.md

    def __post_init__(self) -> None:
        object.__setattr__(self, "topology", Topology.of(self.topology))
        object.__setattr__(self, "rule", Rule.of(self.rule))

    @property
    def norm(self) -> float:
        return self.learning.norm_per_input * self.n_in


#: Defaults of a data set that differ from the ones above (docs/model.md, "Per-data-set
#: defaults"), each chosen on that data set's training holdout (docs/results.md). They
#: apply to every model; ``--param`` / a space's ``params`` override them.
DATASET_DEFAULTS: dict[str, dict[str, float]] = {
    # 64 weak inputs: thresholds that climb 2 mV a spike silence a quarter of the images
    # within one pass, and the tuned 150 mV lateral inhibition is tuned for 784 inputs
    "digits": {"theta_plus_mv": 0.5, "w_lateral": 17.5},
    # the textures of clothing draw more spikes per image than digits: thresholds that
    # climb 1 mV a spike and faster learning share them out better (holdout 75.0 -> 77.1 %)
    "fashion-mnist": {"theta_plus_mv": 1.0, "eta": 0.02},
}


def preset(
    model: str, n_in: int, n_exc: int, dataset: str | None = None, **overrides: Any
) -> ModelConfig:
    """The model presets ``baseline``, ``sl-stdp`` and ``tinysnn`` of the issue/method,
    with ``dataset``'s :data:`DATASET_DEFAULTS`, then ``overrides``."""
    if model not in PRESETS:
        raise ConfigError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    topology, rule = PRESETS[model]
    cfg = ModelConfig(model=model, n_in=n_in, n_exc=n_exc, topology=topology, rule=rule)  # type: ignore[arg-type]
    merged = {**DATASET_DEFAULTS.get(dataset or "", {}), **overrides}
    return apply_overrides(cfg, merged) if merged else validate_model(cfg)


# --------------------------------------------------------------------------- validation


def validate_bits(name: str, bits: int | None) -> None:
    if bits is None:
        return
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ConfigError(
            f"{name} must be fp32 or an integer width from {MIN_BITS} to {MAX_BITS}, got {bits!r}"
        )


def validate_quant(q: QuantSpec) -> QuantSpec:
    if q.scheme not in SCHEMES:
        raise ConfigError(f"unknown scheme {q.scheme!r}; choose one of {', '.join(SCHEMES)}")
    for name in ("weight", "vmem", "vth"):
        bits = getattr(q, f"{name}_bits")
        validate_bits(f"{name}_bits", bits)
        ib = getattr(q, f"{name}_int_bits")
        if ib is not None and (not isinstance(ib, int) or ib < -32 or ib > 32):
            raise ConfigError(f"{name}_int_bits must be an integer in [-32, 32], got {ib!r}")
    return q


def validate_model(cfg: ModelConfig) -> ModelConfig:
    if cfg.model not in MODELS:
        raise ConfigError(f"unknown model {cfg.model!r}; choose one of {', '.join(MODELS)}")
    if cfg.exc.leak not in LEAKS:
        raise ConfigError(f"unknown leak {cfg.exc.leak!r}; choose one of {', '.join(LEAKS)}")
    if cfg.readout not in READOUTS:
        raise ConfigError(f"unknown readout {cfg.readout!r}; choose one of {READOUTS}")
    if not cfg.exc.vmem_floor_mv >= 0.0:
        got = cfg.exc.vmem_floor_mv
        raise ConfigError(f"vmem_floor_mv is mV below rest, 0 or more (0: no floor), got {got!r}")
    if cfg.n_exc < 1 or cfg.n_in < 1:
        raise ConfigError(f"network size must be positive, got {cfg.n_in}x{cfg.n_exc}")
    enc = cfg.encoding
    if enc.dt_ms <= 0 or enc.t_present_ms < enc.dt_ms or enc.max_rate_hz < 0:
        raise ConfigError("encoding needs dt_ms > 0, t_present_ms >= dt_ms, max_rate_hz >= 0")
    if enc.t_infer_ms != 0 and enc.t_infer_ms < enc.dt_ms:
        raise ConfigError(f"t_infer_ms must be 0 (as training) or >= dt_ms, got {enc.t_infer_ms}")
    if enc.max_rate_hz * enc.dt_ms / 1000.0 > 1.0:
        raise ConfigError("max_rate_hz * dt_ms exceeds one spike per step")
    if enc.min_spikes < 0 or enc.rate_boost_hz < 0 or enc.max_boosts < 0:
        raise ConfigError("min_spikes, rate_boost_hz and max_boosts must be >= 0")
    if enc.encoder not in ENCODERS:
        raise ConfigError(f"unknown encoder {enc.encoder!r}; choose one of {', '.join(ENCODERS)}")
    for tau_name, tau in (
        ("exc.tau_m_ms", cfg.exc.tau_m_ms),
        ("exc.tau_theta_ms", cfg.exc.tau_theta_ms),
        ("inh.tau_m_ms", cfg.inh.tau_m_ms),
        ("learning.tau_trace_ms", cfg.learning.tau_trace_ms),
    ):
        if not tau > 0:
            raise ConfigError(f"{tau_name} must be > 0, got {tau}")
    ln = cfg.learning
    if ln.w_max <= 0 or ln.update_every_ms < enc.dt_ms or ln.s_th <= 0:
        raise ConfigError("learning needs w_max > 0, s_th > 0, update_every_ms >= dt_ms")
    if not 0.0 <= ln.prune < 1.0:
        raise ConfigError(f"prune must be a fraction in [0, 1), got {ln.prune!r}")
    if ln.prune_method not in PRUNE_METHODS:
        raise ConfigError(
            f"unknown prune_method {ln.prune_method!r}; choose one of {', '.join(PRUNE_METHODS)}"
        )
    if ln.prune_rounds < 1 or ln.prune_rounds != int(ln.prune_rounds):
        raise ConfigError(f"prune_rounds must be an integer >= 1, got {ln.prune_rounds!r}")
    if not 0.0 < ln.prune_until <= 1.0:
        raise ConfigError(f"prune_until must be in (0, 1], got {ln.prune_until!r}")
    return cfg


# --------------------------------------------------------------------------- overrides

_SECTIONS = ("encoding", "exc", "inh", "learning")


def param_names() -> dict[str, str]:
    """Every user-settable parameter as ``section.name`` -> type name (for --help/docs)."""
    out: dict[str, str] = {}
    for sec, cls in (
        ("encoding", EncodingParams),
        ("exc", ExcParams),
        ("inh", InhParams),
        ("learning", LearningParams),
    ):
        for f in dataclasses.fields(cls):
            out[f"{sec}.{f.name}"] = str(f.type)
    out["readout"] = "str"
    out["topology"] = "str"
    out["rule"] = "str"
    return out


def _coerce(value: Any, default: Any, key: str) -> Any:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in ("1", "true", "yes", "on"):
            return True
        if s in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"parameter {key} expects true/false, got {value!r}")
    if isinstance(default, (int, float)):
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"parameter {key} expects a number, got {value!r}") from None
        if not math.isfinite(v):
            raise ConfigError(f"parameter {key} must be finite, got {value!r}")
        return v
    return value


def apply_overrides(cfg: ModelConfig, overrides: dict[str, Any]) -> ModelConfig:
    """Return ``cfg`` with ``section.name=value`` overrides (a bare unique name works too)."""
    names = param_names()
    by_leaf: dict[str, list[str]] = {}
    for full in names:
        by_leaf.setdefault(full.split(".")[-1], []).append(full)
    sections: dict[str, dict[str, Any]] = {s: {} for s in _SECTIONS}
    top: dict[str, Any] = {}
    for key, value in overrides.items():
        full = key
        if key not in names:
            cands = by_leaf.get(key, [])
            if len(cands) != 1:
                hint = f"; did you mean {' or '.join(cands)}?" if cands else ""
                raise ConfigError(f"unknown parameter {key!r}{hint} (see `tinysnn params`)")
            full = cands[0]
        if "." in full:
            sec, name = full.split(".", 1)
            default = getattr(getattr(cfg, sec), name)
            sections[sec][name] = _coerce(value, default, full)
        else:
            top[full] = value
    kwargs: dict[str, Any] = dict(top)
    for sec, vals in sections.items():
        if vals:
            kwargs[sec] = dataclasses.replace(getattr(cfg, sec), **vals)
    return validate_model(dataclasses.replace(cfg, **kwargs))


def model_from_dict(d: dict[str, Any]) -> ModelConfig:
    """Inverse of ``dataclasses.asdict`` for :class:`ModelConfig`."""
    d = dict(d)
    return validate_model(
        ModelConfig(
            encoding=EncodingParams(**d.pop("encoding")),
            exc=ExcParams(**d.pop("exc")),
            inh=InhParams(**d.pop("inh")),
            learning=LearningParams(**d.pop("learning")),
            **d,
        )
    )


def quant_from_dict(d: dict[str, Any]) -> QuantSpec:
    d = dict(d)
    for k in ("weight_range", "vmem_range_mv", "vth_range_mv"):
        if k in d:
            d[k] = tuple(d[k])
    return validate_quant(QuantSpec(**d))
