"""The neuron step, written once: the statements every backend runs.

A LIF population's step (docs/model.md; method.md section 4) is, per neuron,

    x  = leak(v, rest, gain, base)        (v - rest) * gain + base
    x  = gate(x, inp, refr)               + inp unless refractory
    v' = the Vmem grid's rounding of x    (kernels.fxp_code; integer: floor, round_up)
    v' = floor_at(v', floor)              the membrane floor (excitatory layer; off: -1e30)
    spike where v' >= threshold: v' = reset_to(v', threshold, v_reset, keep), refractory.

The same statements serve both arithmetics. Float (FP32 or rounded onto a fixed-point
grid afterwards): ``gain`` is the leak factor exp(-dt / tau_m) and ``base`` the resting
potential, both in mV. Integer (the exported datapath, :mod:`integer`): ``v`` and
``rest`` are Vmem codes, ``gain`` = D * 2**(k - 16) and ``base`` = rest * 2**k, and the
result is in accumulator units (2**-k of a code), brought back by a floor shift and,
with stochastic rounding, :func:`round_up`.

Each function here is plain Python on scalars or arrays, one expression, so that every
backend takes it as written rather than as a copy:

- the Numba kernels (:mod:`kernels`, :mod:`int_kernels`) compile them inlined
  (``njit(inline="always")``; the loops that call them vectorize as before, measured);
- the torch references (:mod:`neuron`, :mod:`integer`) call :func:`leak` on tensors;
- the Triton kernels (:mod:`gpu_kernels`) jit :func:`leak`;
- the exported C gets them as macros of ``model.h``, translated from these functions'
  syntax trees (:func:`tinysnn_dse.export.c_step.c_macros`), so the C cannot hold
  another form; tests/core/test_step.py checks each against hand-computed values and
  exact references, and the compiled macros against the Python.

Numba's disk cache keys a kernel on its own file only, so the kernel modules hold a
digest of these statements' source, ``STEP_STAMP``, that tests/core/test_step.py holds
equal to the source: editing a statement means editing that line there too, which also
retires their cached code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def leak(v: Any, rest: Any, gain: Any, base: Any) -> Any:
    """The potential ``v`` after one step's leak towards ``rest``."""
    return (v - rest) * gain + base


def gate(x: Any, inp: Any, refr: Any) -> Any:
    """``x`` plus the input ``inp``, unless the neuron is refractory (``refr`` > 0)."""
    return x + inp if refr <= 0 else x


def reset_to(v: Any, thr: Any, v_reset: Any, keep: Any) -> Any:
    """The potential a spike leaves (``v`` at or above the threshold ``thr``): ``v_reset``
    plus ``keep`` times the overshoot (keep 0: reset to the value, :class:`modes.Reset`)."""
    return v_reset + (v - thr) * keep


def floor_at(v: Any, floor: Any) -> Any:
    """``v`` held at or above the membrane floor (BindsNET's ``lbound``)."""
    return max(v, floor)


def round_up(a: Any, q: Any, u: Any, p2k: Any, p2a: Any, p2b: Any) -> Any:
    """Stochastic rounding of the accumulator ``a`` (integer) given its floor ``q`` =
    floor(a / p2k): one code up where the remainder's share of a step exceeds the 24-bit
    uniform ``u``, compared as ``(a - q * p2k) * p2a > u * p2b`` with ``p2a / p2b`` =
    2**24 / p2k (one of them 1), exact in 64 bits."""
    return q + 1 if (a - q * p2k) * p2a > u * p2b else q


def clamp(x: Any, lo: Any, hi: Any) -> Any:
    """``x`` held to [lo, hi] (the register's range)."""
    return min(max(x, lo), hi)


#: the statements, in the order the C defines them (``export/c_step.py``)
STATEMENTS: tuple[Callable[..., Any], ...] = (leak, gate, floor_at, reset_to, round_up, clamp)
