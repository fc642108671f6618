"""The neuron step's statements (core/step.py): hand-computed values, exact references for
the integer rounding, their C translation compiled and run against the Python, and no
second copy of the leak anywhere in the sources."""

from __future__ import annotations

import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tinysnn_dse.core import int_kernels, kernels, step

SRC = Path(step.__file__).resolve().parents[1]


def test_leak_and_gate_by_hand() -> None:
    # float: -60 mV at rest -65, decay 0.5 -> -62.5; plus 3 unless refractory
    assert step.leak(-60.0, -65.0, 0.5, -65.0) == -62.5
    assert step.gate(-62.5, 3.0, 0) == -59.5
    assert step.gate(-62.5, 3.0, 2) == -62.5
    # integer: code 10 at rest 4, gain 3 (accumulator units per code), base 4 * 8
    assert step.leak(10, 4, 3, 32) == 50
    assert step.clamp(50, -8, 7) == 7 and step.clamp(-50, -8, 7) == -8 and step.clamp(3, -8, 7) == 3


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


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc)")
def test_c_macros_equal_python(tmp_path: Path) -> None:
    """The translated macros, compiled, give the Python statements' values on random
    integers of both signs (the rounding's two comparison forms included)."""
    rng = np.random.default_rng(2)
    rows = []
    for _ in range(300):
        v, rest = (int(x) for x in rng.integers(-(2**15), 2**15, 2))
        gain, base = int(rng.integers(0, 2**20)), int(rng.integers(-(2**30), 2**30))
        inp, refr = int(rng.integers(-(2**30), 2**30)), int(rng.integers(-3, 4))
        k = int(rng.choice([3, 24, 30]))
        p2a, p2b = (2 ** (24 - k), 1) if k <= 24 else (1, 2 ** (k - 24))
        a = step.gate(step.leak(v, rest, gain, base), inp, refr)
        u = int(rng.integers(0, 2**24))
        r = step.round_up(a, a >> k, u, 2**k, p2a, p2b)
        c = step.clamp(r >> 4, -(2**11), 2**11 - 1)
        rows.append((v, rest, gain, base, inp, refr, k, p2a, p2b, u, a, r, c))
    table = ",\n".join("{" + ", ".join(f"INT64_C({x})" for x in row) + "}" for row in rows)
    prog = tmp_path / "step.c"
    prog.write_text(
        "#include <stdint.h>\n#include <stdio.h>\n"
        + "\n".join(step.c_macros())
        + f"\nstatic const int64_t rows[][13] = {{{table}}};\n"
        + """
static int64_t floor_div2(int64_t a, int k)
{
    int64_t p = (int64_t)1 << k;
    return a >= 0 ? a / p : -((-a + p - 1) / p);
}
int main(void)
{
    int bad = 0;
    unsigned i;
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const int64_t *x = rows[i];
        int64_t a = TSNN_LEAK(x[0], x[1], x[2], x[3]);
        int64_t q, r;
        a = TSNN_GATE(a, x[4], x[5]);
        q = floor_div2(a, (int)x[6]);
        r = TSNN_ROUND_UP(a, q, x[9], (int64_t)1 << x[6], x[7], x[8]);
        bad += a != x[10] || r != x[11] || TSNN_CLAMP(floor_div2(r, 4), -2048, 2047) != x[12];
    }
    printf("%d\\n", bad);
    return 0;
}
"""
    )
    exe = tmp_path / "step"
    subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", "-o", str(exe), str(prog)], check=True)
    assert subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout == "0\n"


def test_c_macro_translation_is_the_statement() -> None:
    assert step.c_macro(step.leak) == (
        "#define TSNN_LEAK(v, rest, gain, base) ((((v) - (rest)) * (gain)) + (base))"
    )
    assert (
        step.c_macro(step.gate)
        == "#define TSNN_GATE(x, inp, refr) (((refr) <= 0) ? ((x) + (inp)) : (x))"
    )

    def two_lines(x: int) -> int:
        y = x + 1
        return y

    with pytest.raises(ValueError, match="one return expression"):
        step.c_macro(two_lines)


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


def test_kernel_modules_hold_the_current_stamp() -> None:
    assert kernels.STEP_STAMP == step.stamp() == int_kernels.STEP_STAMP
    with pytest.raises(ImportError, match="STEP_STAMP"):
        step.require("00000000", "some.module")
