"""The integer C of an export (``DIR/c/``): ``model.h`` (sizes, formats, the
datapath's constants and the neuron step's statements, :func:`c_step.c_macros`),
``model_data.h`` (the parameters as const arrays, each packed at its bit width) and the
fixed sources ``tinysnn.c``, ``tinysnn.h`` and ``main.c`` (package data, ``c_src/``),
which implement docs/model.md's "Integer inference"."""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from tinysnn_dse.core import integer, layout
from tinysnn_dse.core.integer import IntDesign
from tinysnn_dse.core.kernels import ENCODER_STREAM
from tinysnn_dse.core.memory import sparse_storage
from tinysnn_dse.core.modes import RoundMode, Topology
from tinysnn_dse.core.params import ModelConfig
from tinysnn_dse.core.readout import PROPORTION_BITS, Assignment, class_weights
from tinysnn_dse.core.sim import Net
from tinysnn_dse.export import c_step

SOURCES = ("tinysnn.c", "tinysnn.h", "main.c", "tsnn_common.h", "tsnn_io.h")
READOUT_CODES = {"all": 0, "proportion": 1, "soft-vote": 2}
STORAGE_CODES = {"dense": 0, "bitmap": 1, "csr": 2}


def pack_bits(values: np.ndarray, width: int) -> bytes:
    """Non-negative integers (each below 2**width) as a little-endian bit stream: value
    k occupies bits k*width .. k*width + width - 1, least significant bit first."""
    v = np.asarray(values, dtype=np.uint64).ravel()
    if v.size and int(v.max()) >= 2**width:
        raise ValueError(f"a value does not fit {width} bits")
    bits = ((v[:, None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits.ravel(), bitorder="little").tobytes()


def unpack_bits(data: bytes, width: int, n: int) -> np.ndarray:
    """The inverse of :func:`pack_bits` (uint64 [n])."""
    bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[: n * width]
    w = bits.reshape(n, width).astype(np.uint64) << np.arange(width, dtype=np.uint64)
    return w.sum(axis=1, dtype=np.uint64)


def twos(codes: np.ndarray, width: int) -> np.ndarray:
    """Signed codes as their ``width``-bit two's complement (non-negative)."""
    c = np.asarray(codes, dtype=np.int64)
    return np.where(c < 0, c + (1 << width), c).astype(np.uint64)


@dataclass(frozen=True)
class CArray:
    """One exported parameter array: C name, what it holds, elements, bits each, and the
    bytes it takes in the header (its bit stream, rounded up to whole bytes)."""

    name: str
    what: str
    elements: int
    bits: int
    data: bytes

    @property
    def bytes(self) -> int:
        return len(self.data)

    def c(self) -> str:
        body = ",".join(str(b) for b in self.data) or "0"
        head = f"/* {self.what}: {self.elements} x {self.bits} bits */\n"
        n = max(1, len(self.data))
        return f"{head}static const uint8_t {self.name}[{n}] TSNN_FLASH = {{{body}}};\n"


@dataclass(frozen=True)
class CModel:
    """What the C export holds: its parameter arrays, the Vmem state it keeps per neuron,
    the readout tables, and the weight storage (dense, bitmap or csr)."""

    arrays: list[CArray]
    readout: list[CArray]
    storage: str
    vmem_ctype_bits: int
    vmem_neurons: int
    model_h: str
    data_h: str

    @property
    def parameter_bytes(self) -> int:
        return sum(a.bytes for a in self.arrays)

    @property
    def vmem_bytes(self) -> int:
        return self.vmem_neurons * self.vmem_ctype_bits // 8


#: bits of a counter-encoder threshold (at most 2**24: a pixel that spikes at every step)
ENC_THR_BITS = 25


def _ctype_bits(bits: int) -> int:
    return 8 if bits <= 8 else 16 if bits <= 16 else 32


def _i64(x: int) -> str:
    return f"INT64_C({int(x)})"


def datapath_macros(d: IntDesign) -> dict[str, str]:
    """The integer datapath's constants as ``model.h`` defines them: ``TSNN_<NAME>`` for
    every ``layout.KC_<NAME>`` but :data:`layout.KC_NOT_IN_C`, each the value of
    :meth:`IntDesign.consts` that the simulator's integer kernel and reference read."""
    c = d.consts()
    return {f"TSNN_{name}": _i64(int(c[i])) for name, i in layout.fields("KC").items()
            if i not in layout.KC_NOT_IN_C}  # fmt: skip


def _macro(word: str) -> str:
    return word.upper().replace("-", "_")


def _code_macros() -> dict[str, str]:
    """The codes tinysnn.c compares TSNN_ROUNDING, TSNN_W_STORAGE and TSNN_READOUT with,
    by name (``TSNN_ROUND_STOCHASTIC``, ...), from the same tables as the values."""
    out = {f"TSNN_ROUND_{_macro(r.value)}": str(r.code) for r in RoundMode}
    out.update({f"TSNN_STORAGE_{_macro(k)}": str(v) for k, v in STORAGE_CODES.items()})
    out.update({f"TSNN_READOUT_{_macro(k)}": str(v) for k, v in READOUT_CODES.items()})
    return out


def state_types(d: IntDesign, n_in: int) -> dict[str, tuple[int, int, str]]:
    """The C type of each state array of ``tinysnn.c`` (issue 26 item 1): int32 where the
    bound of its values (from the quantities :meth:`IntDesign.acc_bound_bits` bounds a
    step's accumulator by) is below 2**31, else int64; name -> (bits, bound, what)."""
    fv_ft = d.vmem.frac_bits - d.vth.frac_bits
    bounds = {
        "tsnn_cur_t": (n_in * d.weight.hi_code, "input current, the weight codes of a step"),
        "tsnn_rec_t": ((d.n_exc * abs(d.w_rec) + abs(d.w_exc_inh)) << d.k,
                       "recurrent input, accumulator units"),
        "tsnn_thr_t": (2**d.vth.bits << max(0, fv_ft), "thresholds in Vmem codes"),
    }  # fmt: skip
    return {k: (32 if b < 2**31 else 64, b, what) for k, (b, what) in bounds.items()}


def build(
    net: Net,
    cfg: ModelConfig,
    d: IntDesign,
    assignment: Assignment,
    n_classes: int,
    title: str,
) -> CModel:
    """The C model of a deployed network ``net`` (quantized) on the integer datapath
    ``d``, read out by ``cfg.readout`` over ``assignment``."""
    from tinysnn_dse.core.quant import Quantizers

    qz = Quantizers(d.weight, d.vmem, d.vth, d.rounding)
    w = integer.codes(net.w, d.weight)  # [n_in, n] non-negative
    n_in, n = w.shape
    keep = np.ones_like(w, dtype=bool) if net.keep is None else net.keep.cpu().numpy()
    retained = int(keep.sum())
    storage, _, _ = sparse_storage(n_in, n, retained, d.weight.bits)
    wb = d.weight.bits
    arrays: list[CArray] = []
    defines: dict[str, str] = {}
    if storage == "dense":
        arrays.append(CArray("tsnn_w", "input weights, row-major by input (uQ codes)",
                             w.size, wb, pack_bits(w, wb)))  # fmt: skip
    elif storage == "bitmap":
        arrays.append(CArray("tsnn_w_map", "retained synapses, one bit per (input, neuron)",
                             keep.size, 1, pack_bits(keep.astype(np.uint64), 1)))  # fmt: skip
        arrays.append(CArray("tsnn_w", "retained weights, row-major by input", retained, wb,
                             pack_bits(w[keep], wb)))  # fmt: skip
    else:  # csr: a row per excitatory neuron (Eq. 4's count)
        idx_bits = max(1, math.ceil(math.log2(n_in)))
        ptr_bits = max(1, math.ceil(math.log2(retained + 1)))
        kt, wt = keep.T, w.T  # [n, n_in]
        rows, cols = np.nonzero(kt)
        ptr = np.concatenate([[0], np.cumsum(kt.sum(axis=1))])
        arrays.append(CArray("tsnn_csr_ptr", "row pointers (one row per neuron)", n + 1,
                             ptr_bits, pack_bits(ptr, ptr_bits)))  # fmt: skip
        arrays.append(CArray("tsnn_csr_idx", "input index of each retained weight", retained,
                             idx_bits, pack_bits(cols, idx_bits)))  # fmt: skip
        arrays.append(CArray("tsnn_w", "retained weights, row by row", retained, wb,
                             pack_bits(wt[rows, cols], wb)))  # fmt: skip
        defines.update(TSNN_IDX_BITS=str(idx_bits), TSNN_PTR_BITS=str(ptr_bits))
    tb = d.vth.bits
    tc = integer.threshold_codes(net.theta, cfg, qz)
    arrays.append(CArray("tsnn_vth", "excitatory thresholds (Vth codes)", n, tb,
                         pack_bits(twos(tc, tb), tb)))  # fmt: skip
    inhibitory = cfg.topology == Topology.INHIBITORY
    if inhibitory:
        arrays.append(CArray("tsnn_vth_inh", "inhibitory thresholds (Vth codes)", n, tb,
                             pack_bits(twos(np.full(n, d.inh_thr), tb), tb)))  # fmt: skip
    # the readout tables (not in Eq. 4), written as typed C arrays; their CArray entries
    # carry the sizes for the memory map (zero bytes of the arrays' length)
    readout: list[CArray] = []
    mode = cfg.readout
    labels_c = ""
    if mode in ("all", "proportion"):
        lab = assignment.labels.cpu().numpy().astype(np.int64)
        labels_c = (f"/* assigned class of each neuron (-1: none) */\nstatic const int8_t "
                    f"tsnn_label[{n}] = {{{','.join(str(int(x)) for x in lab)}}};\n")  # fmt: skip
        readout.append(CArray("tsnn_label", "assigned class of each neuron", n, 8,
                              bytes(n)))  # fmt: skip
    props_c = ""
    if mode in ("proportion", "soft-vote"):
        from tinysnn_dse.core.readout import proportion_codes

        pc = proportion_codes(assignment.proportions.cpu()).numpy()
        props_c = (f"/* proportions per (neuron, class), Q1.{PROPORTION_BITS} */\n"
                   f"static const uint16_t tsnn_prop[{pc.size}] = "
                   f"{{{','.join(str(int(x)) for x in pc.ravel())}}};\n")  # fmt: skip
        readout.append(CArray("tsnn_prop", f"proportions, Q1.{PROPORTION_BITS}", pc.size, 16,
                              bytes(2 * pc.size)))  # fmt: skip
    enc_c = ""
    counter = cfg.encoding.encoder == "counter"
    if counter:  # the counter encoder's spike thresholds: [boost][pixel], 25 bits each
        from tinysnn_dse.core.encoding import counter_thresholds

        thr = np.stack(
            [counter_thresholds(cfg, b) for b in range(int(cfg.encoding.max_boosts) + 1)]
        )
        table = CArray("tsnn_enc_thr", "counter encoder: spike threshold of [boost][pixel]",
                       thr.size, ENC_THR_BITS, pack_bits(thr.ravel(), ENC_THR_BITS))  # fmt: skip
        enc_c = table.c()
        readout.append(table)
    class_weights(assignment, n_classes, mode)  # validates the mode
    vb = d.vmem.bits
    model_defs = {
        "TSNN_N_IN": str(n_in),
        "TSNN_N": str(n),
        "TSNN_N_CLASSES": str(n_classes),
        "TSNN_STEPS": str(cfg.encoding.steps),
        **datapath_macros(d),
        "TSNN_FV_MINUS_FT": f"({d.vmem.frac_bits - d.vth.frac_bits})",
        "TSNN_T_BITS": str(tb),
        "TSNN_T_SIGNED": "1" if d.vth.signed else "0",
        "TSNN_W_BITS": str(wb),
        "TSNN_W_STORAGE": str(STORAGE_CODES[storage]),
        "TSNN_READOUT": str(READOUT_CODES[mode]),
        **_code_macros(),
        "TSNN_MIN_SPIKES": str(int(cfg.encoding.min_spikes)),
        "TSNN_MAX_BOOSTS": str(int(cfg.encoding.max_boosts)),
        "TSNN_ENCODER_COUNTER": "1" if counter else "0",
        "TSNN_ENC_STREAM": f"UINT64_C({ENCODER_STREAM})",
        "TSNN_ENC_THR_BITS": str(ENC_THR_BITS),
        **defines,
    }
    lines = [
        f"/* {title}: sizes, formats and constants of the integer datapath (generated by",
        ' * tinysnn export; docs/model.md, "Integer inference"). Potentials in Vmem codes',
        f" * ({d.vmem.describe()}), weights {d.weight.describe()}, thresholds",
        f" * {d.vth.describe()}; the accumulator keeps {d.acc_frac} fractional bits and a step",
        f" * rounds off TSNN_K = {d.k}. */",
        "#ifndef TSNN_MODEL_H",
        "#define TSNN_MODEL_H",
        "#include <stdint.h>",
        "",
    ]
    lines += [f"#define {k} {v}" for k, v in model_defs.items()]
    lines += ["", f"typedef int{_ctype_bits(vb)}_t tsnn_vmem_t; /* a {vb}-bit Vmem code */"]
    lines += [f"typedef int{b}_t {name}; /* {what}: |x| <= {bound:,}"
              f"{' < 2^31' if b == 32 else ''} */"
              for name, (b, bound, what) in state_types(d, n_in).items()]  # fmt: skip
    lines += ["",
              "/* the neuron step's statements, translated from core/step.py (the Numba kernels",
              " * inline the same functions) */", *c_step.c_macros(), "", "#endif", ""]  # fmt: skip
    data_h = (
        f"/* {title}: the parameters, each array a little-endian bit stream of fixed-width\n"
        " * fields (generated by tinysnn export). Included by tinysnn.c only. */\n"
        "#ifndef TSNN_MODEL_DATA_H\n#define TSNN_MODEL_DATA_H\n#include <stdint.h>\n\n"
        + "".join(a.c() for a in arrays)
        + labels_c
        + props_c
        + enc_c
        + "\n#endif\n"
    )
    layers = 2 if inhibitory else 1
    return CModel(arrays, readout, storage, _ctype_bits(vb), layers * n, "\n".join(lines),
                  data_h)  # fmt: skip


def write(model: CModel, out: Path) -> list[Path]:
    """Write ``model.h``, ``model_data.h`` and the fixed sources into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.h").write_text(model.model_h)
    (out / "model_data.h").write_text(model.data_h)
    src = resources.files("tinysnn_dse.export").joinpath("c_src")
    for name in SOURCES:
        (out / name).write_text(src.joinpath(name).read_text())
    return [out / n for n in ("model.h", "model_data.h", *SOURCES)]
