"""Properties of the fixed-point quantizers (method.md section 4)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.core.quant import FixedPoint, Quantizers, derive_format, int_bits_for, quantize
from tinysnn_dse.errors import ConfigError

formats = st.builds(
    FixedPoint,
    bits=st.integers(2, 24),
    int_bits=st.integers(0, 8),
    signed=st.booleans(),
).filter(lambda f: -8 <= f.frac_bits <= 40)


def in_range_values(fmt: FixedPoint, u: list[float]) -> torch.Tensor:
    return torch.tensor([fmt.lo + x * (fmt.hi - fmt.lo) for x in u], dtype=torch.float64)


unit = st.lists(st.floats(0, 1), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(fmt=formats, u=unit, rounding=st.sampled_from(["truncate", "nearest", "stochastic"]))
def test_result_inside_range_on_grid_and_idempotent(
    fmt: FixedPoint, u: list[float], rounding: str
) -> None:
    g = torch.Generator().manual_seed(0)
    x = in_range_values(fmt, u) * 1.5  # some values outside the range: they saturate
    q = quantize(x, fmt, rounding, g)  # type: ignore[arg-type]
    assert bool((q >= fmt.lo).all()) and bool((q <= fmt.hi).all())
    steps = q / fmt.eps
    assert torch.equal(steps, torch.round(steps))  # on the grid
    assert torch.equal(quantize(q, fmt, rounding, g), q)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(fmt=formats, u=unit)
def test_nearest_error_at_most_half_a_step(fmt: FixedPoint, u: list[float]) -> None:
    x = in_range_values(fmt, u)
    err = (quantize(x, fmt, "nearest") - x).abs()
    assert bool((err <= fmt.eps / 2 + 1e-12).all())


@settings(max_examples=200, deadline=None)
@given(fmt=formats, u=unit)
def test_truncation_error_under_one_step_and_never_up(fmt: FixedPoint, u: list[float]) -> None:
    x = in_range_values(fmt, u)
    d = x - quantize(x, fmt, "truncate")
    assert bool((d >= 0).all()) and bool((d < fmt.eps).all())


@pytest.mark.parametrize("x", [0.3, 0.5 + 1 / 512, 0.123456, 0.99])
def test_stochastic_rounding_unbiased(x: float) -> None:
    """Mean of n draws within 4 standard errors (sigma <= eps/2 per draw) of x."""
    fmt = FixedPoint(bits=8, int_bits=1, signed=False)  # step 1/128
    n = 200_000
    g = torch.Generator().manual_seed(1)
    q = quantize(torch.full((n,), x, dtype=torch.float64), fmt, "stochastic", g)
    assert set(torch.unique(q).tolist()) <= {
        math.floor(x * 128) / 128,
        math.floor(x * 128 + 1) / 128,
    }
    tol = 4 * (fmt.eps / 2) / math.sqrt(n)
    assert abs(float(q.mean()) - x) <= tol


def test_stochastic_rounding_reproducible_with_seed() -> None:
    fmt = FixedPoint(bits=6, int_bits=1, signed=False)
    x = torch.rand(1000, generator=torch.Generator().manual_seed(5))
    a = quantize(x, fmt, "stochastic", torch.Generator().manual_seed(9))
    b = quantize(x, fmt, "stochastic", torch.Generator().manual_seed(9))
    assert torch.equal(a, b)


def test_stochastic_rounding_needs_a_generator() -> None:
    with pytest.raises(ValueError):
        quantize(torch.zeros(3), FixedPoint(8, 1, False), "stochastic", None)


def test_derived_formats_for_default_ranges() -> None:
    qz = Quantizers.from_spec(QuantSpec(weight_bits=8, vmem_bits=16, vth_bits=8))
    assert qz.weight == FixedPoint(8, 1, False)  # weights [0, 1]: Q1.7, step 1/128
    assert qz.weight.eps == 1 / 128
    assert qz.vmem == FixedPoint(16, 7, True)  # [-100, 0] mV: sign + 7 integer + 8 fraction
    assert qz.vmem.eps == 1 / 256
    assert qz.vth is not None and qz.vth.frac_bits == 0 and qz.vth.lo == -128
    assert Quantizers.from_spec(QuantSpec()).weight is None  # FP32 is its own level
    assert int_bits_for(0.5) == 0 and int_bits_for(1.0) == 1 and int_bits_for(100) == 7


def test_int_bits_override_and_short_words() -> None:
    f = derive_format("vmem_bits", 8, (-100.0, 0.0), int_bits=5)
    assert f == FixedPoint(8, 5, True) and f.eps == 0.25
    f4 = derive_format("vmem_bits", 4, (-100.0, 0.0))
    assert f4 is not None and f4.eps == 16.0 and f4.lo == -128  # 16 levels of 16 mV


@pytest.mark.parametrize("bits", [0, 1, 33, 64, -3])
def test_impossible_widths_are_rejected(bits: int) -> None:
    with pytest.raises(ConfigError, match="2 to 32"):
        derive_format("weight_bits", bits, (0.0, 1.0))


def test_observed_ranges_cover_learned_thresholds() -> None:
    """Formats follow the ranges observed on an FP32 run at both ends (with a margin):
    thresholds far above 0 mV and potentials far below -100 mV stay inside their
    formats; Vmem and Vth get formats of their own."""
    from tinysnn_dse.core.params import QuantSpec, preset
    from tinysnn_dse.core.quant import ObservedRanges, Quantizers, with_ranges

    cfg = preset("tinysnn", 4, 3)
    obs = ObservedRanges(vmem=(-1185.0, 232.0), vth=(84.5, 283.7), source="test")
    q = QuantSpec(scheme="ptq", weight_bits=8, vmem_bits=16, vth_bits=8)
    qz = Quantizers.from_spec(with_ranges(q, obs, cfg))
    assert qz.vmem is not None and qz.vth is not None
    assert qz.vmem.lo <= -1185.0 - 0.1 * (283.7 + 1185.0) and qz.vmem.hi >= 283.7
    assert qz.vmem == FixedPoint(16, 11, True)  # sign + 11 integer bits: down to -2048 mV
    assert qz.vth.lo <= 84.5 and qz.vth.hi >= 283.7 + 0.1 * (283.7 - 84.5)
    assert qz.vth == FixedPoint(8, 9, False)  # all thresholds positive: no sign bit
    itq = Quantizers.from_spec(with_ranges(QuantSpec(scheme="itq", vth_bits=8), obs, cfg))
    assert itq.vth is not None and itq.vth.signed  # ITQ starts at v_th = -52 mV


# ------------------------------------------------------------------ exactness (issue 13)

from fractions import Fraction  # noqa: E402

import numpy as np  # noqa: E402

from tinysnn_dse.core import kernels  # noqa: E402
from tinysnn_dse.core.quant import qparams  # noqa: E402


def exact(x: float, fmt: FixedPoint, rounding: str, u: float = 0.0) -> Fraction:
    """method.md section 4 in exact rational arithmetic."""
    eps = Fraction(2) ** -fmt.frac_bits
    y = Fraction(x) / eps
    fl = y.numerator // y.denominator
    if rounding == "nearest":
        fl = (y + Fraction(1, 2)).numerator // (y + Fraction(1, 2)).denominator
    elif rounding == "stochastic":
        fl += 1 if Fraction(u) < y - fl else 0
    return min(max(fl, fmt.lo_code), fmt.hi_code) * eps


def f32(x: Fraction | float) -> float:
    return float(np.float32(float(x)))


def edge_values(fmt: FixedPoint) -> list[float]:
    """Grid points, midpoints and both range ends, and one float32 and one float64 ulp
    either side of each; values beyond the range."""
    eps = fmt.eps
    out: list[float] = []
    # codes of 2**23 and above: where float32's spacing is 1 or 2, so fl + 1/2 rounds
    big = (2**23, 2**23 + 1, 2**24 - 1, 2**24 + 2, -(2**23) - 1, -(2**24) - 2)
    for k in (fmt.lo_code, fmt.lo_code + 1, -3, -1, 0, 1, 2, 7, fmt.hi_code - 1, fmt.hi_code, *big):
        if not fmt.lo_code <= k <= fmt.hi_code:
            continue
        for base in (k * eps, (k + 0.5) * eps):
            out.append(base)
            for dt in (np.float32, np.float64):
                b = dt(base)
                out += [float(np.nextafter(b, dt(-np.inf))), float(np.nextafter(b, dt(np.inf)))]
    out += [fmt.lo - eps, fmt.hi + eps, 2 * fmt.hi + 1, 2 * fmt.lo - 1, 0.3 * eps, -0.7 * eps]
    # exactness holds where x / eps is zero or a normal float64 (quant's docstring)
    return [v for v in out if np.isfinite(v) and (v == 0 or abs(v * fmt.inv) >= 2.0**-1022)]


WIDTH_FORMATS = [
    FixedPoint(b, i, s)
    for b in range(2, 33)
    for s in (False, True)
    for i in {0, 1, 7, b - 1 - int(s), b + 2}
    if -(2**6) <= b - i - int(s) <= 60
]


@pytest.mark.parametrize("rounding", ["truncate", "nearest", "stochastic"])
def test_quantizer_exact_at_every_width(rounding: str) -> None:
    """torch (float64 and float32 inputs) and the kernels' one fixed-point operation
    against exact rational arithmetic, at every width 2-32, at midpoints, grid points and
    both range ends and one ulp either side of each. Float64 results are exact; a float32
    result is the nearest float32 of the exact value, never above the ceiling. (The
    Triton twin, gpu_kernels._fxp, runs the same operations; tests/test_cuda.py.)"""
    us = [0.0, 0.25, 0.5, 0.999]
    bad = []
    for fmt in WIDTH_FORMATS:
        q = qparams(fmt, rounding)
        xs = edge_values(fmt)
        for u in us if rounding == "stochastic" else [0.0]:
            ut = torch.full((len(xs),), u, dtype=torch.float32)
            got64 = quantize(torch.tensor(xs, dtype=torch.float64), fmt, rounding, u=ut)  # type: ignore[arg-type]
            x32 = [f32(x) for x in xs]
            got32 = quantize(torch.tensor(x32, dtype=torch.float32), fmt, rounding, u=ut)  # type: ignore[arg-type]
            for i, x in enumerate(xs):
                want = exact(x, fmt, rounding, f32(u))
                want32 = min(f32(exact(x32[i], fmt, rounding, f32(u))), fmt.hi32)
                k64 = kernels.fxp(np.float64(x), q, np.float32(u))
                k32 = kernels.fxp32(np.float32(x32[i]), q, np.float32(u))
                if not (float(got64[i]) == want == k64):
                    bad.append((fmt, x, float(got64[i]), float(want), k64))
                if not (float(got32[i]) == want32 == float(k32)):
                    bad.append((fmt, x32[i], float(got32[i]), want32, float(k32)))
                if q[kernels.QP_NARROW]:  # the float32 arithmetic the normalisation runs
                    f = np.float32
                    c, _ = kernels.fxp_code32(
                        f(x32[i]), f(fmt.inv), f(fmt.lo_code), f(fmt.hi_code),
                        rounding == "stochastic", f(min(q[kernels.QP_CUT], 2.0)), f(u),
                    )  # fmt: skip
                    if float(c * f(fmt.eps)) != want32:
                        bad.append((fmt, x32[i], "fxp_code32", float(c * f(fmt.eps)), want32))
                if fmt.inv >= 1:  # the float32 rounding of learning's Vmem, any width
                    q64, q32p = kernels.grid_scalars(q)  # back in Python as float64s:
                    q32 = tuple(np.float32(v) for v in q32p)  # float32, as the kernel has it
                    st = rounding == "stochastic"
                    args = (np.float32(x32[i]), q64, q32)
                    v32, clip32 = kernels.on_grid(*args, True, st, np.float32(u))
                    v64, clip64 = kernels.on_grid(*args, False, st, np.float32(u))
                    if not (float(v32) == want32 == float(v64) and clip32 == clip64):
                        bad.append((fmt, x32[i], "on_grid", float(v32), want32, float(v64)))
    assert not bad, bad[:5]


def test_one_ulp_below_a_midpoint_rounds_down() -> None:
    """float32 ``floor(y + 1/2)`` rounded y = 1/2 - 2**-25 up to 1 (34,757 such cases
    over widths 2-32, issue 13); the exact operation keeps it at 0."""
    fmt = FixedPoint(8, 1, False)
    x = torch.tensor([float(np.nextafter(np.float32(fmt.eps / 2), np.float32(0)))])
    assert float(quantize(x, fmt, "nearest")[0]) == 0.0


def test_float32_store_never_exceeds_the_ceiling() -> None:
    """Q1.31's ceiling 2 - 2**-31 has no float32: the state holds 2 - 2**-23, not 2.0."""
    fmt = FixedPoint(32, 1, False)
    q = quantize(torch.tensor([5.0, 1.9999999]), fmt, "nearest")
    assert float(q[0]) == fmt.hi32 == 2 - 2**-23 < 2.0
    assert float(q[1]) <= fmt.hi


@pytest.mark.parametrize("bits", [24, 25, 28, 32])
def test_nearest_leaves_grid_values_alone(bits: int) -> None:
    """A value on the grid (and representable in float32) is its own rounding: adding 1/2
    in float32 before the floor moved odd codes near 2**24 up a step."""
    fmt = FixedPoint(bits, 1, False)
    x = torch.tensor([1 - 2**-24, 0.75 + 2**-24, 0.5 + 2**-22, 2**-20, 1.0])
    x = x[(x * fmt.inv).frac() == 0]  # on this grid
    assert torch.equal(quantize(x, fmt, "nearest"), x)


def test_normalisation_rounds_exactly() -> None:
    """The batch kernel's normalisation rounds with the same exact operation: a weight one
    float32 ulp below the first midpoint of the 8-bit grid rounds down to 0 (float32
    ``floor(y + 1/2)`` rounded it up a step)."""
    fmt = FixedPoint(8, 1, False)
    for below in (float(np.nextafter(np.float32(1 / 256), np.float32(0))), 0.5 + 1 / 256 - 2**-24):
        w = np.array([[[below]]], dtype=np.float32)
        norm = np.array([below], dtype=np.float32)  # the column already sums to norm
        kernels.normalize_multi(w, norm, np.float32(1.0), qparams(fmt, "nearest")[None], 0)
        assert float(w[0, 0, 0]) == float(exact(below, fmt, "nearest"))
