"""One declaration of the per-point layouts (core/layout.py): the Numba kernels, the
Triton kernels, the packers and the integer path all take their indices from it by name,
and none writes an index of its own (the exported C header: tests/export/test_c_layout.py).

The Triton kernels are read as source (Triton is absent from the CPU build): every layout
constant they use is a ``tl.constexpr`` mirror of the same name, and no pointer into a
layout array is offset by a number."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from tinysnn_dse.core import (
    batch,
    gpu_kernels,
    int_kernels,
    integer,
    kernels,
    layout,
    marshal,
    neuron,
    quant,
)
from tinysnn_dse.core.modes import RoundMode, Topology
from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.core.quant import FixedPoint, Quantizers

CORE = Path(__file__).resolve().parents[2] / "src" / "tinysnn_dse" / "core"
NAME = re.compile(rf"^({'|'.join(layout.PREFIXES)})_[A-Z0-9_]+$")
#: the pointers of the Triton kernels into per-point layout arrays (formats, constants,
#: learning parameters, one format)
LAYOUT_POINTERS = {"fq_ptr", "nc_ptr", "lr_ptr", "q_ptr"}


def test_every_layout_is_numbered_from_zero_and_stamped() -> None:
    for p in layout.PREFIXES:
        f = layout.fields(p)
        assert list(f.values()) == list(range(layout.length(p))), p
        assert all(getattr(layout, f"{p}_{k}") == i for k, i in f.items())
    assert layout.fields("F") == {"W": 0, "V": 1, "T": 2, "A": 3}
    # the kernel modules were written against these layouts (Numba caches them on disk)
    assert kernels.LAYOUT_STAMP == int_kernels.LAYOUT_STAMP == layout.stamp()
    with pytest.raises(ImportError, match="LAYOUT_STAMP"):
        layout.require("00000000", "tinysnn_dse.core.kernels")


def _module_assignments(tree: ast.Module) -> list[tuple[str, ast.expr]]:
    """(name, value) of every assignment at module level, ``if`` blocks included."""
    out: list[tuple[str, ast.expr]] = []
    body = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.If | ast.Try):
            body += node.body + node.orelse
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                names = t.elts if isinstance(t, ast.Tuple) else [t]
                out += [(n.id, node.value) for n in names if isinstance(n, ast.Name)]
    return out


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_no_module_declares_an_index_of_its_own(path: Path) -> None:
    """A layout index is assigned in core/layout.py only; gpu_kernels.py mirrors some as
    ``X = tl.constexpr(L.X)``, the same name; the old integer layout (``IC_*``) is gone."""
    if path.name == "layout.py":
        return
    text = path.read_text()
    assert not re.search(r"\bIC_[A-Z]", text), path.name
    for name, value in _module_assignments(ast.parse(text)):
        if not NAME.match(name):
            continue
        mirrored = (
            isinstance(value, ast.Call)
            and ast.unparse(value.func) == "tl.constexpr"
            and len(value.args) == 1
            and ast.unparse(value.args[0]) == f"L.{name}"
        )
        assert path.name == "gpu_kernels.py" and mirrored, f"{path.name} declares {name}"


@pytest.mark.parametrize(
    "module", [kernels, int_kernels, integer, marshal, quant, batch, neuron, gpu_kernels]
)
def test_imported_indices_are_the_layouts(module: object) -> None:
    seen = [n for n in vars(module) if NAME.match(n)]
    for n in seen:
        value = getattr(module, n)
        value = getattr(value, "value", value)  # a tl.constexpr mirror holds its value
        assert value == getattr(layout, n), f"{module.__name__}.{n}"  # type: ignore[attr-defined]


def _jit_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            decos = [ast.unparse(d) for d in node.decorator_list]
            if any(d.startswith("triton.jit") for d in decos):
                out.append(node)
    return out


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _int_constants(node: ast.AST) -> list[int]:
    return [
        c.value
        for c in ast.walk(node)
        if isinstance(c, ast.Constant)
        and isinstance(c.value, int)
        and not isinstance(c.value, bool)
    ]


def _arith(node: ast.AST) -> bool:
    """Pointer arithmetic: names, numbers and + - * // of them (no call, no load)."""
    if isinstance(node, ast.Name | ast.Constant):
        return True
    if isinstance(node, ast.BinOp):
        return _arith(node.left) and _arith(node.right)
    return False


def test_triton_kernels_index_layouts_by_name() -> None:
    tree = ast.parse((CORE / "gpu_kernels.py").read_text())
    mirrors = {n for n, _ in _module_assignments(tree) if NAME.match(n)}
    jitted = _jit_functions(tree)
    assert {f.name for f in jitted} >= {"_qload", "_learn_kernel", "_normalize_kernel"}
    for fn in jitted:
        used = {n for n in _names(fn) if NAME.match(n)}
        assert used <= mirrors, f"{fn.name} uses {used - mirrors}, not mirrored"
        # pointers into layout arrays, and pointers made from them by arithmetic
        tainted = set(LAYOUT_POINTERS)
        assigns = [n for n in ast.walk(fn) if isinstance(n, ast.Assign) and _arith(n.value)]
        for _ in assigns:  # to a fixed point
            for a in assigns:
                if _names(a.value) & tainted:
                    tainted |= {t.id for t in a.targets if isinstance(t, ast.Name)}
        exprs = [n for n in ast.walk(fn) if isinstance(n, ast.BinOp) and _arith(n)]
        for e in exprs:
            if _names(e) & tainted:
                assert not _int_constants(e), f"{fn.name}: {ast.unparse(e)} offsets by a number"
        for node in ast.walk(fn):  # a bare pointer loads field 0 unnamed
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "tl.load":
                assert not (isinstance(node.args[0], ast.Name) and node.args[0].id in tainted), (
                    f"{fn.name}: {ast.unparse(node)}"
                )


def test_triton_format_load_matches_fxp_parameters() -> None:
    """``_qload`` returns a format's fields in the order ``_fxp`` takes them."""
    tree = ast.parse((CORE / "gpu_kernels.py").read_text())
    fns = {f.name: f for f in _jit_functions(tree)}
    ret = next(n for n in ast.walk(fns["_qload"]) if isinstance(n, ast.Return))
    assert isinstance(ret.value, ast.Tuple)
    loaded = [next(n for n in _names(e) if n.startswith("QP_")) for e in ret.value.elts]
    params = [a.arg for a in fns["_fxp"].args.args]
    assert params[0] == "x" and params[-1] == "u"
    assert [n.removeprefix("QP_").lower() for n in loaded] == params[1:-1]


def test_packers_fill_the_fields_they_name() -> None:
    """What each field holds, read back by name from the arrays the kernels get."""
    cfg = preset("baseline", 6, 3)
    qz = Quantizers.from_spec(QuantSpec(rounding="stochastic", weight_bits=8, vmem_bits=12,  # type: ignore[arg-type]
                                        vth_bits=12, vmem_int_bits=7, vth_int_bits=7))  # fmt: skip
    nc = marshal.neuron_consts(cfg, qz, True)
    assert nc[layout.C_V_TH] == np.float32(cfg.exc.v_th_mv)
    assert nc[layout.C_W_LAT] == np.float32(cfg.inh.w_inh_exc) and nc[layout.C_INHIB] == 1
    assert nc[layout.C_THETA_PLUS] == np.float32(cfg.exc.theta_plus_mv)
    assert nc[layout.C_REF] == 5 and nc[layout.C_I_REF] == 2
    lr = marshal.tinysnn_rates(cfg)
    assert lr[layout.LR_ETA] == np.float32(cfg.learning.eta) and lr[layout.LR_S_TH] == 3
    sr = marshal.stepwise_rates(cfg)
    assert sr[layout.SR_X_TAR] == np.float32(cfg.learning.x_tar)
    fq = marshal.formats(qz)
    assert fq.shape == (layout.F_LEN, layout.QP_LEN)
    assert fq[layout.F_V, layout.QP_INV] == 2.0**4 and fq[layout.F_W, layout.QP_STOCH] == 1
    assert fq[layout.F_A, layout.QP_INV] == 2.0 ** (4 + quant.VTH_GUARD_BITS)
    q = quant.qparams(FixedPoint(8, 1, False), RoundMode.NEAREST)
    assert (q[layout.QP_ON], q[layout.QP_CUT], q[layout.QP_STOCH]) == (1, 0.5, 0)
    assert (q[layout.QP_LO], q[layout.QP_HI], q[layout.QP_NARROW]) == (0, 255, 1)
    keys = marshal.pack_keys(tie=3, vth=4, w=5)
    assert (keys[layout.K_TIE], keys[layout.K_VTH], keys[layout.K_W]) == (3, 4, 5)
    m = neuron.new_meter(track=True)
    assert m[layout.M_TRACK] == 1 and m[layout.M_LO] == np.inf


@pytest.mark.parametrize(
    ("model", "rounding"), [("tinysnn", "nearest"), ("baseline", "stochastic")]
)
def test_integer_constants_one_layout(model: str, rounding: str) -> None:
    """The integer datapath's constants: one array (``KC_*``) for the Numba kernel, the
    torch reference and model.h, each field the design's value."""
    cfg = preset(model, 12, 5)
    q = QuantSpec(rounding=rounding, weight_bits=8, vmem_bits=16, vth_bits=16,  # type: ignore[arg-type]
                  vmem_int_bits=7, vth_int_bits=7)  # fmt: skip
    d = integer.design_of(cfg, Quantizers.from_spec(q))
    assert d is not None
    c = d.consts()
    assert c.shape == (layout.KC_LEN,) and c.dtype == np.int64
    k = d.k
    want = {
        "REST": d.exc.rest, "RESET": d.exc.reset, "REF": d.exc.ref_steps,
        "IREST": d.inh.rest, "IRESET": d.inh.reset, "IREF": d.inh.ref_steps,
        "DSH": d.exc.decay << d.sh_leak, "IDSH": d.inh.decay << d.sh_leak,
        "WREC": d.w_rec, "WEI": d.w_exc_inh, "ITHR": d.inh_thr_v,
        "SH_W": d.sh_w, "SCALE_W": 2**d.sh_w, "REST_K": d.exc.rest * 2**k,
        "IREST_K": d.inh.rest * 2**k, "HALF": 2 ** (k - 1) if rounding == "nearest" else 0,
        "INV_K": 0, "P2A": 2 ** max(0, 24 - k), "P2B": 2 ** max(0, k - 24),
        "V_LO": d.vmem.lo_code, "V_HI": d.vmem.hi_code, "ROUNDING": RoundMode(rounding).code,
        "INHIBITORY": int(cfg.topology == Topology.INHIBITORY), "K": k, "P2K": 2**k,
        "KEEP": 0,  # a spike resets to the value (modes.Reset.VALUE)
        "FLOOR": d.vmem.lo_code,  # no membrane floor: the format's lowest code
    }  # fmt: skip
    assert set(want) == set(layout.fields("KC"))
    assert {n: int(c[i]) for n, i in layout.fields("KC").items()} == want
    c64 = integer.kernel_consts(d, np.float64)
    assert c64[layout.KC_INV_K] == 2.0**-k
    rest = [i for i in range(layout.KC_LEN) if i != layout.KC_INV_K]
    assert np.array_equal(c64[rest], c[rest].astype(np.float64))
    assert np.array_equal(integer.kernel_consts(d, np.int64), c)
