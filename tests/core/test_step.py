"""The neuron step's statements (core/step.py): hand-computed values, exact references for
the integer rounding, the compiled forms equal to the Python, and no second copy of the
leak anywhere in the sources (their C: tests/export/test_c_step.py)."""

from __future__ import annotations

import inspect
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tinysnn_dse.core import int_kernels, integer, kernels, quant, step
from tinysnn_dse.core import layout as L
from tinysnn_dse.core.modes import RESETS, ROUNDINGS, Reset, RoundMode
from tinysnn_dse.core.params import ExcParams
from tinysnn_dse.errors import ConfigError

SRC = Path(step.__file__).resolve().parents[1]


def test_leak_and_gate_by_hand() -> None:
    # float: -60 mV at rest -65, decay 0.5 -> -62.5; plus 3 unless refractory
    assert step.leak(-60.0, -65.0, 0.5, -65.0) == -62.5
    assert step.gate(-62.5, 3.0, 0) == -59.5
    assert step.gate(-62.5, 3.0, 2) == -62.5
    # integer: code 10 at rest 4, gain 3 (accumulator units per code), base 4 * 8
    assert step.leak(10, 4, 3, 32) == 50
    assert step.clamp(50, -8, 7) == 7 and step.clamp(-50, -8, 7) == -8 and step.clamp(3, -8, 7) == 3
    # a spike at -50.5 mV over a -52 mV threshold: to -60 (keep 0), or -60 + 1.5 (keep 1)
    assert step.reset_to(np.float32(-50.5), np.float32(-52.0), np.float32(-60.0), 0) == -60.0
    assert step.reset_to(-50.5, -52.0, -60.0, 1) == -58.5
    assert step.reset_to(37, 30, -5, 0) == -5 and step.reset_to(37, 30, -5, 1) == 2


def test_modes_are_data_every_path_reads() -> None:
    """Each rounding's (stochastic, cut) and the integer offset derived from the cut,
    by hand: nearest adds half a step (2**(k-1)), truncation and stochastic nothing."""
    assert (RoundMode.NEAREST.stochastic, RoundMode.NEAREST.cut) == (False, Fraction(1, 2))
    assert (RoundMode.TRUNCATE.stochastic, RoundMode.TRUNCATE.cut) == (False, None)
    assert (RoundMode.STOCHASTIC.stochastic, RoundMode.STOCHASTIC.cut) == (True, None)
    assert set(ROUNDINGS) == set(RoundMode) and set(RESETS) == set(Reset)
    assert integer.half_offset(RoundMode.NEAREST, 4) == 8
    assert integer.half_offset(RoundMode.TRUNCATE, 4) == 0
    assert integer.half_offset(RoundMode.STOCHASTIC, 4) == 0
    q = quant.qparams(quant.FixedPoint(bits=8, int_bits=3, signed=True), RoundMode.NEAREST)
    assert q[L.QP_CUT] == 0.5 and q[L.QP_STOCH] == 0.0
    assert (
        quant.qparams(quant.FixedPoint(bits=8, int_bits=3, signed=True), "truncate")[L.QP_CUT]
        == math.inf
    )
    assert Reset.VALUE.keep == 0
    assert ExcParams(reset="value").reset is Reset.VALUE  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown reset 'soft'"):
        ExcParams(reset="soft")  # type: ignore[arg-type]


def _round_up_exact(a: int, k: int, u: int) -> int:
    """floor(a / 2**k) + [the remainder's share of a step > u / 2**24], in fractions."""
    q = a // 2**k
    frac = Fraction(a, 2**k) - q
    return q + (1 if frac > Fraction(u, 2**24) else 0)


@pytest.mark.parametrize("k", [1, 7, 24, 25, 40])
def test_round_up_matches_exact_fractions(k: int) -> None:
    rng = np.random.default_rng(k)
    p2a, p2b = (2 ** (24 - k), 1) if k <= 24 else (1, 2 ** (k - 24))
    for a, u in zip(rng.integers(-(2**50), 2**50, 400), rng.integers(0, 2**24, 400), strict=True):
        a, u = int(a), int(u)
        q = a >> k
        assert step.round_up(a, q, u, 2**k, p2a, p2b) == _round_up_exact(a, k, u), (a, u)
    # the compiled form agrees (int64 and float64 state)
    a = int(rng.integers(-(2**40), 2**40))
    u = int(rng.integers(0, 2**24))
    want = _round_up_exact(a, k, u)
    assert int_kernels.round_up(a, a >> k, u, 2**k, p2a, p2b) == want


def test_compiled_statements_equal_python() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        v, rest, gain, base, inp = (np.float32(x) for x in rng.normal(-60, 10, 5))
        refr = np.float32(rng.integers(-2, 3))
        want = step.gate(step.leak(v, rest, gain, base), inp, refr)
        got = kernels.gate(kernels.leak(v, rest, gain, base), inp, refr)
        assert np.float32(got) == want  # the same float32 operations, the same order


def test_no_second_copy_of_the_leak() -> None:
    """The leak ``(v - rest) * decay + rest`` and its integer form appear only as
    :func:`step.leak`: every other source calls it (or, in C, its macro)."""
    pattern = re.compile(r"-\s*\w*rest\w*\)\s*\*\s*\w*(decay|dsh|DSH)\w*\s*\+")
    hits = []
    for path in sorted(SRC.rglob("*")):
        if path.suffix in (".py", ".c", ".h") and path.name != "step.py":
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line) and not line.lstrip().startswith(("#", "*", "/*", "A ")):
                    hits.append(f"{path.relative_to(SRC)}:{n}: {line.strip()}")
    assert hits == []


def _digest(text: str) -> str:
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def test_kernel_modules_hold_the_statements_digest() -> None:
    """Numba caches a kernel keyed on its own file: a statement edited without editing the
    kernel modules would leave their cached code running the old one."""
    now = _digest("".join(inspect.getsource(f) for f in step.STATEMENTS))
    for mod in (kernels, int_kernels):
        assert now == mod.STEP_STAMP, (
            f"core/step.py changed: check {mod.__name__}, then set its STEP_STAMP = {now!r}"
        )


def test_membrane_floor_by_hand() -> None:
    """The floor as every path applies it (``vmem_floor_mv`` below rest): FP32 the value;
    on a Vmem grid the lowest grid value at or above it (-70.4 mV on a 0.5 mV step: -70.0;
    on a 1 mV step: -70), held to the format's range; off (-1e30): none. A potential
    below it is raised to it, one above it is left alone."""
    from tinysnn_dse.core.neuron import FLOOR_OFF, floor_code, vmem_floor
    from tinysnn_dse.core.params import preset
    from tinysnn_dse.core.quant import FixedPoint, Quantizers

    cfg = preset("tinysnn", 4, 2, vmem_floor_mv=5.4)  # 5.4 mV below rest: -70.4 mV
    assert vmem_floor(cfg, Quantizers.fp32()) == float(np.float32(-65.0 - 5.4))
    with pytest.raises(ConfigError, match="vmem_floor_mv"):
        preset("tinysnn", 4, 2, vmem_floor_mv=-3.0)
    half = FixedPoint(bits=10, int_bits=8, signed=True)  # step 0.5 mV
    one = FixedPoint(bits=9, int_bits=8, signed=True)  # step 1 mV
    assert floor_code(-70.4, half) == -140 and floor_code(-70.4, one) == -70
    assert floor_code(-1e4, one) == one.lo_code and floor_code(FLOOR_OFF, one) == one.lo_code
    assert vmem_floor(preset("tinysnn", 4, 2), Quantizers.fp32()) == FLOOR_OFF
    assert step.floor_at(-75.0, -70.0) == -70.0 and step.floor_at(-60.0, -70.0) == -60.0
    assert kernels.floor_at(np.float32(-75.5), np.float32(-70.0)) == np.float32(-70.0)
