"""The integer C of an export of the gradient-trained family (``DIR/c/``): ``model.h``
(sizes, the rounding, the layer record and the statements of :func:`c_step.c_macros`),
``model_data.h`` (every layer's weights as a const array packed at their width, and the
layers' constants) and the fixed sources ``diet.c``, ``diet.h``, ``diet_main.c`` and
``tsnn_common.h`` (package data, ``c_src/``, the last shared with the STDP family's C),
which implement :mod:`core.diet_integer`; and the test images as pixel codes with their
keys (``test_pixels.bin``)."""

from __future__ import annotations

import struct
from importlib import resources
from pathlib import Path

import numpy as np

from tinysnn_dse.core import diet, integer
from tinysnn_dse.core.diet_integer import POISSON_SCALE, IntDiet, IntLayer
from tinysnn_dse.core.modes import RoundMode
from tinysnn_dse.export import c_step
from tinysnn_dse.export.c import CArray, pack_bits, twos

SOURCES = ("diet.c", "diet.h", "diet_main.c", "tsnn_common.h", "tsnn_io.h")
PIXEL_MAGIC = b"TSNNPIX1"


def weight_arrays(d: IntDiet) -> list[CArray]:
    """Each layer's weight codes, row-major [n_in][n], two's complement at the width of
    its format."""
    out = []
    for k, layer in enumerate(d.layers):
        bits = layer.w_bits
        data = pack_bits(twos(layer.w.ravel(), bits), bits)
        what = f"layer {k} weights [{layer.w.shape[0]}][{layer.w.shape[1]}], two's complement"
        out.append(CArray(f"tsnn_w{k}", what, int(layer.w.size), bits, data))
    return out


def _layer_c(k: int, layer: IntLayer, d: IntDiet) -> str:
    hidden = k < d.depth
    kk = layer.k
    half = integer.half_offset(d.rounding, kk) if kk > 0 and not d.rounding.stochastic else 0
    p2a, p2b = 1 << max(0, integer.UNIFORM_BITS - kk), 1 << max(0, kk - integer.UNIFORM_BITS)
    vals = {
        "n_in": layer.w.shape[0],
        "n": layer.w.shape[1],
        "w_bits": layer.w_bits,
        "w": f"tsnn_w{k}",
        "sh_in": layer.big - layer.fi,
        "sh_leak": layer.big - layer.fv - diet.LEAK_BITS if hidden else 0,
        "sh_th": layer.big - layer.ft if hidden else 0,
        "sh_v": layer.big - layer.fv,
        "k": kk,
        "half": half,
        "p2a": p2a,
        "p2b": p2b,
        "v_lo": layer.lo,
        "v_hi": layer.hi,
        "lam": layer.lam if hidden else 0,
        "th": layer.th if hidden else 0,
        "thr": layer.thr if hidden else 0,
    }
    body = ", ".join(f".{n} = {v if isinstance(v, str) else _lit(int(v))}" for n, v in vals.items())
    return f"    {{{body}}}, /* layer {k}: {'hidden' if hidden else 'output'} */"


def _lit(v: int) -> str:
    """An int64 literal (INT64_C, so that wide constants keep their type)."""
    return f"INT64_C({v})" if abs(v) >= 2**31 else str(v)


def state_types(d: IntDiet) -> dict[str, tuple[int, int, str]]:
    """The C type of ``diet.c``'s state (issue 26 item 1): int32 where the bound of its
    values is below 2**31, else int64; name -> (bits, bound, what). A membrane is a code
    of its layer's format (``lo``..``hi``); a layer's input sums at most ``n_in`` products
    of an input (a pixel code of at most 255 for layer 0 under direct input, else a spike)
    and a weight code."""
    u = max(max(abs(layer.lo), abs(layer.hi)) for layer in d.layers)
    direct = d.encoding == diet.Encoding.DIRECT
    cur = max(
        int(layer.w.shape[0])
        * int(np.abs(layer.w).max(initial=0))
        * (255 if k == 0 and direct else 1)
        for k, layer in enumerate(d.layers)
    )
    return {
        "tsnn_u_t": (32 if u < 2**31 else 64, u, "membrane codes of every layer"),
        "tsnn_cur_t": (32 if cur < 2**31 else 64, cur, "a layer's input of a step, W codes"),
    }


def in_bytes(d: IntDiet) -> int:
    """The bytes of one input of ``diet_main.c``: an image's pixel codes, or an event
    sample's ``T`` frames of 0/1 spikes (step-major)."""
    n_in = int(d.layers[0].w.shape[0])
    return n_in * (d.timesteps if d.encoding == diet.Encoding.EVENTS else 1)


def model_h(d: IntDiet, title: str) -> str:
    n_max = max(layer.w.shape[1] for layer in d.layers)
    lines = [
        f"/* {title}: the gradient-trained family's integer design (tinysnn export). */",
        "#ifndef TSNN_MODEL_H",
        "#define TSNN_MODEL_H",
        "",
        "#include <stdint.h>",
        "",
        f"#define TSNN_DEPTH {d.depth}",
        f"#define TSNN_N_IN {d.layers[0].w.shape[0]}",
        f"#define TSNN_N_OUT {d.layers[-1].w.shape[1]}",
        f"#define TSNN_MAX_N {n_max}",
        f"#define TSNN_T {d.timesteps}",
        f"#define TSNN_POISSON {int(d.encoding == diet.Encoding.POISSON)}",
        f"#define TSNN_EVENTS {int(d.encoding == diet.Encoding.EVENTS)}",
        "/* the bytes of one input: an image's pixels, or an event sample's TSNN_T frames */",
        f"#define TSNN_IN_BYTES {in_bytes(d)}",
        f"#define TSNN_POISSON_SCALE {POISSON_SCALE}",
        *(f"#define TSNN_ROUND_{m.name} {m.code}" for m in RoundMode),
        f"#define TSNN_ROUNDING {d.rounding.code}",
        "",
        *(
            f"typedef int{b}_t {name}; /* {what}: |x| <= {bound:,}{' < 2^31' if b == 32 else ''} */"
            for name, (b, bound, what) in state_types(d).items()
        ),  # fmt: skip
        "",
        "/* one layer: its sizes, packed weights and the constants of its step (diet.c) */",
        "typedef struct {",
        "    int32_t n_in, n;",
        "    unsigned w_bits;",
        "    const uint8_t *w;",
        "    int sh_in, sh_leak, sh_th, sh_v, k;",
        "    int64_t half, p2a, p2b, v_lo, v_hi, lam, th, thr;",
        "} tsnn_layer;",
        "",
        "/* the neuron step's statements, translated from core/step.py */",
        *c_step.c_macros(),
        "",
        "#endif",
        "",
    ]
    return "\n".join(lines)


def model_data_h(d: IntDiet, arrays: list[CArray]) -> str:
    parts = ["/* The parameters, packed at their widths (tinysnn export). */",
             "#ifndef TSNN_MODEL_DATA_H", "#define TSNN_MODEL_DATA_H", "",
             '#include "model.h"', ""]  # fmt: skip
    parts += [a.c() for a in arrays]
    parts.append("static const tsnn_layer tsnn_layers[TSNN_DEPTH + 1] = {")
    parts += [_layer_c(k, layer, d) for k, layer in enumerate(d.layers)]
    parts += ["};", "", "#endif", ""]
    return "\n".join(parts)


def write(d: IntDiet, out: Path, title: str) -> tuple[list[Path], list[CArray]]:
    """``model.h``, ``model_data.h`` and the fixed sources into ``out``; the files and the
    parameter arrays."""
    out.mkdir(parents=True, exist_ok=True)
    arrays = weight_arrays(d)
    (out / "model.h").write_text(model_h(d, title))
    (out / "model_data.h").write_text(model_data_h(d, arrays))
    src = resources.files("tinysnn_dse.export").joinpath("c_src")
    for name in SOURCES:
        (out / name).write_text(src.joinpath(name).read_text())
    return [out / n for n in ("model.h", "model_data.h", *SOURCES)], arrays


def pixel_file(pixels: np.ndarray, labels: np.ndarray, keys: np.ndarray) -> bytes:
    """The test images for ``diet_main.c``: ``TSNNPIX1``, then uint32 version (1), images
    and inputs, then per image uint32 label, uint64 key and its pixel codes (uint8 each),
    little-endian."""
    n, n_in = pixels.shape
    out = [PIXEL_MAGIC, struct.pack("<III", 1, n, n_in)]
    for b in range(n):
        out.append(struct.pack("<IQ", int(labels[b]), int(keys[b]) & (2**64 - 1)))
        out.append(np.asarray(pixels[b], dtype=np.uint8).tobytes())
    return b"".join(out)
