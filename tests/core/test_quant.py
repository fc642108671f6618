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
    """With theta_plus 2 mV thresholds climb far above 0 mV; the formats must follow them
    (paper 2.3: integer bits from the observed range), or every threshold saturates."""
    import torch

    from tinysnn_dse.core.params import QuantSpec, preset
    from tinysnn_dse.core.quant import Quantizers, observed_ranges, with_observed_ranges

    cfg = preset("tinysnn", 4, 3)
    theta = torch.tensor([10.0, 150.0, 290.0])
    lo, hi = observed_ranges(theta, cfg)
    assert lo <= -100.0 and hi == pytest.approx(290.0 - 52.0)
    q = QuantSpec(scheme="ptq", weight_bits=8, vmem_bits=8, vth_bits=8)
    fixed = Quantizers.from_spec(q)  # the default range [-100, 0] mV
    assert fixed.vth is not None and fixed.vth.hi < 238.0
    obs = Quantizers.from_spec(with_observed_ranges(q, theta, cfg))
    assert obs.vth is not None and obs.vmem is not None
    assert obs.vth.hi >= 238.0 and obs.vth.lo <= -100.0 and obs.vmem.hi == obs.vth.hi
    thr = obs.th(theta + cfg.exc.v_th_mv, None)
    assert torch.all((thr - (theta + cfg.exc.v_th_mv)).abs() <= obs.vth.eps)
