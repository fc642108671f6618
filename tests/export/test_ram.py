"""The RAM reader of the exported C (export/ram.py) by hand: a source with conditions,
casts, typedefs and two-dimensional arrays; const data is not RAM."""

from __future__ import annotations

from tinysnn_dse.export import ram

SRC = """
#include "model.h"
static int64_t a[TSNN_N];            /* one */
static const int8_t table[TSNN_N] = {0};
static tsnn_vmem_t v[TSNN_N];
#if TSNN_MODE == TSNN_MODE_B
static uint8_t only_b[TSNN_N_IN + 1];
#elif TSNN_MODE == TSNN_MODE_A
static uint32_t only_a[(uint32_t)TSNN_STEPS * TSNN_N_IN]; /* cast */
#else
static uint8_t neither[3];
#endif
#if !TSNN_POISSON
static int64_t cur0[TSNN_DEPTH + 1][TSNN_N];
#endif
#ifdef TSNN_UNDEFINED
static uint8_t never[9];
#endif
static void f(void) { static int inside_function; }
"""
HDR = """
#define TSNN_N 100
#define TSNN_N_IN 784u
#define TSNN_STEPS 500
#define TSNN_MODE_A 1
#define TSNN_MODE_B 2
#define TSNN_MODE TSNN_MODE_A
#define TSNN_POISSON 0
#define TSNN_DEPTH 2
typedef int16_t tsnn_vmem_t; /* a 12-bit Vmem code */
"""


def test_ram_arrays_by_hand() -> None:
    got = {a.name: (a.ctype, a.elements, a.bytes) for a in ram.ram_arrays(SRC, [HDR])}
    assert got == {
        "a": ("int64_t", 100, 800),
        "v": ("tsnn_vmem_t", 100, 200),
        "only_a": ("uint32_t", 500 * 784, 4 * 500 * 784),
        "cur0": ("int64_t", 300, 2400),
    }
    other = HDR.replace("TSNN_MODE TSNN_MODE_A", "TSNN_MODE 7").replace("POISSON 0", "POISSON 1")
    got = {a.name: a.bytes for a in ram.ram_arrays(SRC, [other])}
    assert got == {"a": 800, "v": 200, "neither": 3}
    assert ram.ram_arrays(SRC, [HDR])[0].what == "one"


def test_state_types_are_the_narrowest_exact_ones() -> None:
    """int32 where the bound of the values is below 2**31 (hand-computed), else int64."""
    import dataclasses

    from tinysnn_dse.core import integer
    from tinysnn_dse.core.params import QuantSpec, preset
    from tinysnn_dse.core.quant import Quantizers
    from tinysnn_dse.export.c import state_types

    cfg = preset("tinysnn", 784, 400, "mnist")
    qz = Quantizers.from_spec(QuantSpec(weight_bits=8, vmem_bits=16, vth_bits=16))
    d = integer.design_of(cfg, qz)
    assert d is not None
    t = state_types(d, 784)
    assert t["tsnn_cur_t"][:2] == (32, 784 * 255)  # 199,920 < 2**31
    assert t["tsnn_rec_t"][1] == (400 * abs(d.w_rec) + abs(d.w_exc_inh)) << d.k
    assert t["tsnn_rec_t"][0] == (32 if t["tsnn_rec_t"][1] < 2**31 else 64)
    shift = max(0, d.vmem.frac_bits - d.vth.frac_bits)
    assert t["tsnn_thr_t"][:2] == (32 if 2**16 << shift < 2**31 else 64, 2**16 << shift)
    wide = dataclasses.replace(d, n_in=2**31 // 255 + 1)
    assert state_types(wide, wide.n_in)["tsnn_cur_t"][0] == 64
