"""Fixed-point quantization (method.md section 4).

A format Qi.f has word length ``b = s + i + f`` with ``s`` = 1 sign bit when the parameter
can be negative, ``i`` integer bits and ``f = b - s - i`` fractional bits (``f`` may be
negative for very short words: the step is then a power of two above 1). The step is
``eps = 2**-f`` and values saturate at ``[lo, hi]``::

    lo = -2**i (signed) or 0 (unsigned),      hi = 2**i - eps

Rounding, with ``floor_eps(x)`` the largest multiple of eps <= x:

    truncate    q(x) = floor_eps(x)
    nearest     q(x) = floor_eps(x + eps/2)          (a tie rounds up)
    stochastic  q(x) = floor_eps(x) + eps with probability (x - floor_eps(x)) / eps

then saturation to ``[lo, hi]``. FP32 (``bits is None``) is the identity.

Every path computes this the same way, exactly: the value is scaled to ``y = x / eps`` in
float64 (exact: a power of two), and ``floor(y)`` steps up one where deterministic
rounding finds ``y >= floor(y) + cut`` (nearest: 1/2; :data:`modes.ROUNDINGS` holds each
mode's) or stochastic rounding finds the remainder above ``u``
(``y - floor(y)``, exact but for ``-1 < y < 0``, where ``y > u - 1`` is compared
instead). Adding ``1/2`` before the floor, in float32 or float64, rounds a value one ulp
below a midpoint up a step; these comparisons cannot. The integer code is clamped to
``[lo/eps, hi/eps]`` (exact integers in float64 for every width up to 32 bits) and
multiplied by ``eps``: :func:`quantize` of a float64 input is the exact grid value
(whenever ``x / eps`` is zero or a normal float64).

The simulation holds its state in float32, which represents every grid value of a
format with at most 24 significant bits. A wider format's value is stored as the nearest
float32 (itself on the grid), and never above ``hi``: the store takes the largest float32
not above ``hi`` where the nearest would exceed it (``Q1.31``'s ``2 - 2**-31`` is stored
as ``2 - 2**-23``, not ``2.0``). :func:`qparams` packs a format in the layout the compiled
kernels read (:mod:`tinysnn_dse.core.layout`, ``QP_*``), so that every path rounds alike.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from tinysnn_dse.core import layout as L
from tinysnn_dse.core.modes import RoundMode, Topology
from tinysnn_dse.core.params import ModelConfig, QuantSpec, validate_bits
from tinysnn_dse.errors import ConfigError

#: Extra fractional bits of the accumulator an ITQ threshold is held in while it learns
#: (docs/model.md, "Thresholds under ITQ"): the per-presentation decay of a threshold is
#: 2.5e-5 of its value, which 16 more bits below the threshold's own step still resolve.
VTH_GUARD_BITS = 16

#: Margin added to each end of an observed range before integer bits are derived.
RANGE_MARGIN = 0.1


@dataclass(frozen=True)
class FixedPoint:
    """A fixed-point format: word length, integer bits, and whether a sign bit is spent."""

    bits: int
    int_bits: int
    signed: bool

    @property
    def frac_bits(self) -> int:
        return self.bits - self.int_bits - (1 if self.signed else 0)

    @property
    def eps(self) -> float:
        return 2.0 ** (-self.frac_bits)

    @property
    def inv(self) -> float:
        """1 / eps (a power of two)."""
        return 2.0**self.frac_bits

    @property
    def lo(self) -> float:
        return -(2.0**self.int_bits) if self.signed else 0.0

    @property
    def hi(self) -> float:
        return 2.0**self.int_bits - self.eps

    @property
    def lo_code(self) -> int:
        """The smallest integer code, ``lo / eps``."""
        return -(2 ** (self.bits - 1)) if self.signed else 0

    @property
    def hi_code(self) -> int:
        """The largest integer code, ``hi / eps``."""
        return 2 ** (self.bits - (1 if self.signed else 0)) - 1

    @property
    def hi32(self) -> float:
        """The largest float32 not above ``hi`` (``hi`` itself up to 24 significant bits)."""
        h = np.float32(self.hi)
        if float(h) > self.hi:
            h = np.nextafter(h, np.float32(-np.inf))
        return float(h)

    def widened(self, guard_bits: int) -> FixedPoint:
        """The same integer bits with ``guard_bits`` more fractional bits."""
        return FixedPoint(self.bits + guard_bits, self.int_bits, self.signed)

    def describe(self) -> str:
        sign = "s" if self.signed else "u"
        return f"{sign}Q{self.int_bits}.{self.frac_bits} ({self.bits} bits, step {self.eps:g})"


def int_bits_for(max_abs: float) -> int:
    """Integer bits that hold the integer part of ``max_abs`` (1.0 -> 1, 100 -> 7)."""
    if max_abs < 1.0:
        return 0
    return int(math.floor(math.log2(max_abs))) + 1


def derive_format(
    name: str, bits: int | None, value_range: tuple[float, float], int_bits: int | None = None
) -> FixedPoint | None:
    """The format for a parameter whose values lie in ``value_range``; None for FP32."""
    validate_bits(name, bits)
    if bits is None:
        return None
    lo, hi = float(value_range[0]), float(value_range[1])
    if not lo <= hi:
        raise ConfigError(f"{name}: range [{lo}, {hi}] is empty")
    signed = lo < 0
    ib = int_bits_for(max(abs(lo), abs(hi))) if int_bits is None else int_bits
    fmt = FixedPoint(bits=bits, int_bits=ib, signed=signed)
    if fmt.frac_bits < -(2**6) or fmt.frac_bits > 60:
        raise ConfigError(f"{name}: {bits} bits with {ib} integer bits is not a usable format")
    return fmt


def qparams(fmt: FixedPoint | None, rounding: RoundMode) -> np.ndarray:
    """``fmt`` and its rounding as the float64 [QP_LEN] array every kernel reads
    (``layout.QP_*``); all zeros (``QP_ON`` = 0) for FP32."""
    q = np.zeros(L.QP_LEN, dtype=np.float64)
    if fmt is None:
        return q
    rounding = RoundMode.of(rounding)
    q[L.QP_ON] = 1.0
    q[L.QP_INV] = fmt.inv
    q[L.QP_EPS] = fmt.eps
    q[L.QP_LO] = float(fmt.lo_code)
    q[L.QP_HI] = float(fmt.hi_code)
    q[L.QP_STOCH] = 1.0 if rounding.stochastic else 0.0
    q[L.QP_CUT] = math.inf if rounding.cut is None else float(rounding.cut)
    q[L.QP_HI32] = fmt.hi32
    q[L.QP_NARROW] = 1.0 if fmt.bits <= 23 and fmt.frac_bits >= 0 else 0.0
    return q


def quantize(
    x: torch.Tensor,
    fmt: FixedPoint | None,
    rounding: RoundMode,
    generator: torch.Generator | None = None,
    u: torch.Tensor | None = None,
) -> torch.Tensor:
    """Quantize ``x`` (any shape) to ``fmt`` with the given rounding; returns a new tensor
    of ``x``'s dtype (see the module docstring: exact for float64, and for float32 up to
    24 significant bits).

    Stochastic rounding draws one uniform number per element from ``generator`` (which must
    live on ``x``'s device), or takes them from ``u`` (``x``'s shape) when given; the other
    modes draw nothing.
    """
    return quantize_counted(x, fmt, rounding, generator, u, count=False)[0]


def quantize_counted(
    x: torch.Tensor,
    fmt: FixedPoint | None,
    rounding: RoundMode,
    generator: torch.Generator | None = None,
    u: torch.Tensor | None = None,
    count: bool = True,
) -> tuple[torch.Tensor, int]:
    """:func:`quantize`, and how many elements saturated (their rounded code fell outside
    the format, as :func:`kernels.fxp_sat` counts them; 0 unless ``count``)."""
    if fmt is None:
        return x, 0
    rounding = RoundMode.of(rounding)  # a member passes through; a spelling is parsed
    # float32 arithmetic is exact for float32 inputs, codes below 2**22 and a step of at
    # most 1 (scaling cannot underflow; every step below is exact); float64 otherwise
    fast = x.dtype == torch.float32 and fmt.bits <= 23 and fmt.frac_bits >= 0
    dt = torch.float32 if fast else torch.float64
    y = x.to(dt) * fmt.inv  # exact: a power of two
    fl = torch.floor(y)
    if rounding.cut is not None:
        fl += y >= fl + float(rounding.cut)  # exact: fl + a cut of a few bits
    elif rounding.stochastic:
        if u is None:
            if generator is None:
                raise ValueError("stochastic rounding needs an explicit torch.Generator")
            u = torch.rand(y.shape, generator=generator, device=y.device, dtype=torch.float32)
        uu = u.to(y.device, dt)
        # the remainder y - fl is exact but for -1 < y < 0, compared there as y > u - 1
        fl += torch.where(fl == -1.0, y > uu - 1.0, y - fl > uu)
    code = torch.clamp(fl, float(fmt.lo_code), float(fmt.hi_code))
    n_sat = int((code != fl).sum()) if count else 0
    value = code.mul_(fmt.eps)
    if x.dtype == torch.float64:
        return value, n_sat
    if dt == torch.float32:  # at most 23 bits: every grid value is a float32
        return value, n_sat
    return torch.clamp(value.to(x.dtype), max=fmt.hi32), n_sat


@dataclass(frozen=True)
class Quantizers:
    """The three formats of a design point plus its rounding; ``None`` formats are FP32.

    ``vth_acc`` is the accumulator an ITQ threshold learns in (``vth`` with
    :data:`VTH_GUARD_BITS` more fractional bits); the neuron compares against ``vth``.
    """

    weight: FixedPoint | None
    vmem: FixedPoint | None
    vth: FixedPoint | None
    rounding: RoundMode

    def __post_init__(self) -> None:
        object.__setattr__(self, "rounding", RoundMode.of(self.rounding))

    @classmethod
    def from_spec(cls, q: QuantSpec) -> Quantizers:
        return cls(
            weight=derive_format("weight_bits", q.weight_bits, q.weight_range, q.weight_int_bits),
            vmem=derive_format("vmem_bits", q.vmem_bits, q.vmem_range_mv, q.vmem_int_bits),
            vth=derive_format("vth_bits", q.vth_bits, q.vth_range_mv, q.vth_int_bits),
            rounding=q.rounding,
        )

    @classmethod
    def fp32(cls) -> Quantizers:
        return cls(weight=None, vmem=None, vth=None, rounding=RoundMode.NEAREST)

    @property
    def is_fp32(self) -> bool:
        return self.weight is None and self.vmem is None and self.vth is None

    @property
    def stochastic(self) -> bool:
        """Whether the rounding draws a uniform per rounding (of the formats that are set)."""
        return self.rounding.stochastic

    @property
    def vth_acc(self) -> FixedPoint | None:
        return None if self.vth is None else self.vth.widened(VTH_GUARD_BITS)

    def w(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return quantize(x, self.weight, self.rounding, g)

    def v(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return quantize(x, self.vmem, self.rounding, g)

    def th(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return quantize(x, self.vth, self.rounding, g)

    def describe(self) -> dict[str, str]:
        def d(f: FixedPoint | None) -> str:
            return "fp32" if f is None else f.describe()

        return {"weight": d(self.weight), "vmem": d(self.vmem), "vth": d(self.vth)}


@dataclass(frozen=True)
class ObservedRanges:
    """The ranges (mV) Vmem and Vth took in an FP32 run of a network (paper section 2.3:
    "we observe the range of values for the parameter during SNN processing").

    ``vmem`` covers every potential of every layer at every step of the observation pass
    (the value before a reset included); ``vth`` every threshold ``v_th + theta``.
    ``source`` says which run they were read from.
    """

    vmem: tuple[float, float]
    vth: tuple[float, float]
    source: str

    def to_dict(self) -> dict[str, object]:
        return {"vmem_mv": list(self.vmem), "vth_mv": list(self.vth), "source": self.source}


def with_margin(r: tuple[float, float], margin: float = RANGE_MARGIN) -> tuple[float, float]:
    """``r`` widened by ``margin`` of its span at each end (a zero-width range by 1 mV)."""
    lo, hi = float(r[0]), float(r[1])
    m = max(margin * (hi - lo), 1.0)
    return lo - m, hi + m


def with_ranges(q: QuantSpec, r: ObservedRanges, cfg: ModelConfig) -> QuantSpec:
    """``q`` with Vmem and Vth ranges from observed ones, each widened by
    :data:`RANGE_MARGIN`. Under ITQ the Vth range also holds the initial threshold
    ``v_th`` (training starts there); the Vmem range always holds the resting and reset
    levels and reaches up to the highest threshold, so a potential can reach its
    threshold."""
    e, i = cfg.exc, cfg.inh
    t_lo, t_hi = r.vth
    if q.scheme == "itq":
        t_lo, t_hi = min(t_lo, e.v_th_mv), max(t_hi, e.v_th_mv)
    levels = [e.v_rest_mv, e.v_reset_mv]
    if cfg.topology == Topology.INHIBITORY:
        levels += [i.v_rest_mv, i.v_reset_mv, i.v_th_mv]
    v_lo = min(r.vmem[0], *levels)
    v_hi = max(r.vmem[1], t_hi, *levels)
    return dataclasses.replace(
        q, vmem_range_mv=with_margin((v_lo, v_hi)), vth_range_mv=with_margin((t_lo, t_hi))
    )
