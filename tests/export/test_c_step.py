"""The neuron step's statements in C (export/c_step.py): the translation is the statement,
and the compiled macros give the Python's values."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinysnn_dse.core import step
from tinysnn_dse.export import c_step


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
        keep = int(rng.integers(0, 2))
        z = step.reset_to(c, thr := int(rng.integers(-(2**11), c + 1)), rest, keep)
        rows.append((v, rest, gain, base, inp, refr, k, p2a, p2b, u, a, r, c, thr, keep, z))
    table = ",\n".join("{" + ", ".join(f"INT64_C({x})" for x in row) + "}" for row in rows)
    prog = tmp_path / "step.c"
    prog.write_text(
        "#include <stdint.h>\n#include <stdio.h>\n"
        + "\n".join(c_step.c_macros())
        + f"\nstatic const int64_t rows[][16] = {{{table}}};\n"
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
        bad += TSNN_RESET_TO(x[12], x[13], x[1], x[14]) != x[15];
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
    assert c_step.c_macro(step.leak) == (
        "#define TSNN_LEAK(v, rest, gain, base) ((((v) - (rest)) * (gain)) + (base))"
    )
    assert (
        c_step.c_macro(step.gate)
        == "#define TSNN_GATE(x, inp, refr) (((refr) <= 0) ? ((x) + (inp)) : (x))"
    )

    def two_lines(x: int) -> int:
        y = x + 1
        return y

    with pytest.raises(ValueError, match="one return expression"):
        c_step.c_macro(two_lines)
