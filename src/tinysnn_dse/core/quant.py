"""Fixed-point quantization (method.md section 4).

A format Qi.f has word length ``b = s + i + f`` with ``s`` = 1 sign bit when the parameter
can be negative, ``i`` integer bits and ``f = b - s - i`` fractional bits (``f`` may be
negative for very short words: the step is then a power of two above 1). The step is
``eps = 2**-f`` and values saturate at ``[lo, hi]``::

    lo = -2**i (signed) or 0 (unsigned),      hi = 2**i - eps

Rounding, with ``floor_eps(x)`` the largest multiple of eps <= x:

    truncate    q(x) = floor_eps(x)
    nearest     q(x) = floor_eps(x + eps/2)
    stochastic  q(x) = floor_eps(x) + eps with probability (x - floor_eps(x)) / eps

then saturation to ``[lo, hi]``. FP32 (``bits is None``) is the identity.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from tinysnn_dse.core.params import ModelConfig, QuantSpec, Rounding, validate_bits
from tinysnn_dse.errors import ConfigError


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
    def lo(self) -> float:
        return -(2.0**self.int_bits) if self.signed else 0.0

    @property
    def hi(self) -> float:
        return 2.0**self.int_bits - self.eps

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


def quantize(
    x: torch.Tensor,
    fmt: FixedPoint | None,
    rounding: Rounding,
    generator: torch.Generator | None = None,
    u: torch.Tensor | None = None,
) -> torch.Tensor:
    """Quantize ``x`` (any shape) to ``fmt`` with the given rounding; returns a new tensor.

    Stochastic rounding draws one uniform number per element from ``generator`` (which must
    live on ``x``'s device), or takes them from ``u`` (``x``'s shape) when given; the other
    modes draw nothing.
    """
    if fmt is None:
        return x
    inv = 1.0 / fmt.eps  # a power of two: scaling is exact in binary floating point
    y = x * inv
    if rounding == "truncate":
        y = torch.floor(y)
    elif rounding == "nearest":
        y = torch.floor(y + 0.5)
    elif rounding == "stochastic":
        if generator is None and u is None:
            raise ValueError("stochastic rounding needs an explicit torch.Generator")
        fl = torch.floor(y)
        if u is None:
            u = torch.rand(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        else:
            u = u.to(y.device, y.dtype)
        y = fl + (u < (y - fl)).to(y.dtype)
    else:  # pragma: no cover - validated where modes enter
        raise ConfigError(f"unknown rounding {rounding!r}")
    return torch.clamp(y, fmt.lo * inv, fmt.hi * inv) * fmt.eps


@dataclass(frozen=True)
class Quantizers:
    """The three formats of a design point plus its rounding; ``None`` formats are FP32."""

    weight: FixedPoint | None
    vmem: FixedPoint | None
    vth: FixedPoint | None
    rounding: Rounding

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
        return cls(weight=None, vmem=None, vth=None, rounding="nearest")

    @property
    def is_fp32(self) -> bool:
        return self.weight is None and self.vmem is None and self.vth is None

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


def observed_ranges(theta: torch.Tensor, cfg: ModelConfig) -> tuple[float, float]:
    """The range (mV) that Vmem and Vth take in a trained network (paper section 2.3:
    integer bits come from the range observed during processing).

    Vth = v_th + theta per neuron, learned; Vmem stays below the highest threshold (a
    neuron fires and resets when it reaches it) and above the resting and reset levels,
    down to -100 mV under inhibition. Both share the range, so a quantized Vmem can always
    reach its quantized threshold.
    """
    vth = theta.detach().to(torch.float64) + cfg.exc.v_th_mv
    e, i = cfg.exc, cfg.inh
    hi = max(0.0, float(vth.max()) if vth.numel() else 0.0, e.v_th_mv, i.v_th_mv)
    lo = min(-100.0, float(vth.min()) if vth.numel() else 0.0, e.v_rest_mv, e.v_reset_mv,
             i.v_rest_mv, i.v_reset_mv)  # fmt: skip
    return lo, hi


def with_observed_ranges(q: QuantSpec, theta: torch.Tensor, cfg: ModelConfig) -> QuantSpec:
    """``q`` with its Vmem and Vth ranges set from a trained network's thresholds."""
    r = observed_ranges(theta, cfg)
    return dataclasses.replace(q, vmem_range_mv=r, vth_range_mv=r)
