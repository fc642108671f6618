"""The neuron step, written once: the statements every backend runs.

A LIF population's step (docs/model.md; method.md section 4) is, per neuron,

    x  = leak(v, rest, gain, base)        (v - rest) * gain + base
    x  = gate(x, inp, refr)               + inp unless refractory
    v' = the Vmem grid's rounding of x    (kernels.fxp_code; integer: floor, round_up)
    spike where v' >= threshold, then reset and refractory.

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
- the exported C gets them as macros, translated from these functions' syntax trees by
  :func:`c_macros` (``export/c.py`` writes them into ``step.h``), so the C cannot hold
  another form; tests/core/test_step.py checks each against hand-computed values.

Numba's disk cache keys a kernel on its own file only, so the kernel modules hold
:func:`stamp` of these statements and refuse to load against others (:func:`require`).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any


def leak(v: Any, rest: Any, gain: Any, base: Any) -> Any:
    """The potential ``v`` after one step's leak towards ``rest``."""
    return (v - rest) * gain + base


def gate(x: Any, inp: Any, refr: Any) -> Any:
    """``x`` plus the input ``inp``, unless the neuron is refractory (``refr`` > 0)."""
    return x + inp if refr <= 0 else x


def round_up(a: Any, q: Any, u: Any, p2k: Any, p2a: Any, p2b: Any) -> Any:
    """Stochastic rounding of the accumulator ``a`` (integer) given its floor ``q`` =
    floor(a / p2k): one code up where the remainder's share of a step exceeds the 24-bit
    uniform ``u``, compared as ``(a - q * p2k) * p2a > u * p2b`` with ``p2a / p2b`` =
    2**24 / p2k (one of them 1), exact in 64 bits."""
    return q + 1 if (a - q * p2k) * p2a > u * p2b else q


def clamp(x: Any, lo: Any, hi: Any) -> Any:
    """``x`` held to [lo, hi] (the register's range)."""
    return min(max(x, lo), hi)


#: the statements, in the order :func:`c_macros` defines them
STATEMENTS: tuple[Callable[..., Any], ...] = (leak, gate, round_up, clamp)


def _source(f: Callable[..., Any]) -> str:
    return inspect.getsource(f)


def stamp() -> str:
    """A digest (FNV-1a, 32 bits, hex) of the statements' source: it changes with any edit
    of them (docstrings included)."""
    h = 0x811C9DC5
    for byte in "".join(_source(f) for f in STATEMENTS).encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def require(seen: str, module: str) -> None:
    """Refuse ``module`` (a kernel module) written against statements of stamp ``seen``:
    its compiled code, cached on disk by Numba, would hold the old ones."""
    now = stamp()
    if seen != now:
        raise ImportError(
            f"core/step.py changed (stamp {now}) since {module} was last edited (it holds "
            f"STEP_STAMP = {seen!r}): set its STEP_STAMP = {now!r} (an edit of the file "
            "also retires Numba's cached code)"
        )


# ------------------------------------------------------------------------------ the C

_C_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}
_C_CMPOPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "=="}
_C_CALLS = {"min": "TSNN_MIN", "max": "TSNN_MAX"}


def c_name(f: Callable[..., Any]) -> str:
    """The C macro of statement ``f``: ``TSNN_`` and its name in capitals."""
    return "TSNN_" + f.__name__.upper()


def _c_expr(node: ast.expr, args: list[str]) -> str:
    """C99 text of one expression of a statement (every operand parenthesised, each
    argument as the macro's parameter); anything outside the subset is refused."""
    if isinstance(node, ast.Name) and node.id in args:
        return f"({node.id})"
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return str(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _C_BINOPS:
        op = _C_BINOPS[type(node.op)]
        return f"({_c_expr(node.left, args)} {op} {_c_expr(node.right, args)})"
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _C_CMPOPS:
        op = _C_CMPOPS[type(node.ops[0])]
        return f"({_c_expr(node.left, args)} {op} {_c_expr(node.comparators[0], args)})"
    if isinstance(node, ast.IfExp):
        test, yes, no = (_c_expr(x, args) for x in (node.test, node.body, node.orelse))
        return f"({test} ? {yes} : {no})"
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _C_CALLS and not node.keywords):  # fmt: skip
        inner = ", ".join(_c_expr(a, args) for a in node.args)
        return f"{_C_CALLS[node.func.id]}({inner})"
    raise ValueError(f"no C for {ast.dump(node)[:80]}")


def c_macro(f: Callable[..., Any]) -> str:
    """``#define TSNN_<NAME>(args) <expression>``: statement ``f`` (a function whose body
    is a docstring and one ``return``) in C."""
    fn = ast.parse(textwrap.dedent(_source(f))).body[0]
    assert isinstance(fn, ast.FunctionDef)
    body = [
        s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
    ]
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        raise ValueError(f"{f.__name__}: a statement is one return expression")
    args = [a.arg for a in fn.args.args]
    return f"#define {c_name(f)}({', '.join(args)}) {_c_expr(body[0].value, args)}"


def c_macros() -> list[str]:
    """The C of every statement, and the min/max they use (each argument once: C has no
    min of int64)."""
    return [
        "#define TSNN_MIN(a, b) ((a) < (b) ? (a) : (b))",
        "#define TSNN_MAX(a, b) ((a) > (b) ? (a) : (b))",
        *(c_macro(f) for f in STATEMENTS),
    ]
