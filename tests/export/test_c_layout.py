"""The exported C's constants come from the one layout (core/layout.py): ``model.h``
defines every integer constant ``KC_<NAME>`` as ``TSNN_<NAME>`` with the value the
simulator's integer kernel reads, the mode codes by name, and the fixed sources use no
``TSNN_`` name that is not defined (tests/core/test_layout.py: the other users)."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest
import torch

from tinysnn_dse.core import integer, layout, sim
from tinysnn_dse.core.modes import RoundMode
from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.core.quant import Quantizers
from tinysnn_dse.core.readout import assign_labels
from tinysnn_dse.export import c as c_mod

DEFINE = re.compile(r"^#define (TSNN_\w+) (.+)$", re.M)
CASES = [
    ("tinysnn", "nearest", "soft-vote"),
    ("baseline", "stochastic", "all"),
    ("tinysnn", "truncate", "proportion"),
]


def _model(model: str, rounding: str, readout: str) -> tuple[c_mod.CModel, integer.IntDesign]:
    cfg = preset(model, 12, 5, readout=readout)
    q = QuantSpec(rounding=rounding, weight_bits=8, vmem_bits=16, vth_bits=16,  # type: ignore[arg-type]
                  vmem_int_bits=7, vth_int_bits=7)  # fmt: skip
    qz = Quantizers.from_spec(q)
    g = torch.Generator().manual_seed(0)
    net = sim.quantize_net(sim.init_net(cfg, g), cfg, qz, g)
    d = integer.design_of(cfg, qz)
    assert d is not None
    counts = torch.rand(9, 5, generator=g)
    a = assign_labels(counts, torch.arange(9) % 3, 3)
    return c_mod.build(net, cfg, d, a, 3, "test"), d


def _int(text: str) -> int:
    m = re.fullmatch(r"INT64_C\((-?\d+)\)|\(?(-?\d+)\)?", text.strip())
    assert m is not None, text
    return int(m.group(1) or m.group(2))


@pytest.mark.parametrize(("model", "rounding", "readout"), CASES)
def test_model_h_holds_the_kernels_constants(model: str, rounding: str, readout: str) -> None:
    cm, d = _model(model, rounding, readout)
    defs = dict(DEFINE.findall(cm.model_h))
    c = d.consts()
    for name, i in layout.fields("KC").items():
        macro = f"TSNN_{name}"
        if i in layout.KC_NOT_IN_C:
            assert macro not in defs
        else:
            assert _int(defs[macro]) == int(c[i]), macro
    for r in RoundMode:
        assert _int(defs[f"TSNN_ROUND_{r.name}"]) == r.code
    assert _int(defs["TSNN_ROUNDING"]) == RoundMode(rounding).code
    assert _int(defs["TSNN_READOUT"]) == _int(
        defs[f"TSNN_READOUT_{readout.upper().replace('-', '_')}"]
    )
    assert _int(defs["TSNN_W_STORAGE"]) == _int(defs["TSNN_STORAGE_DENSE"])


def test_c_sources_use_only_defined_names(tmp_path: Path) -> None:
    """Every ``TSNN_`` name the fixed sources read is defined by model.h (of either
    topology and any readout), by the sources themselves, or by a sparse storage."""
    defined = {"TSNN_IDX_BITS", "TSNN_PTR_BITS"}  # csr storage only (c.build's defines)
    for case in CASES:
        model_h = _model(*case)[0].model_h
        defined |= set(dict(DEFINE.findall(model_h)))
        defined |= set(re.findall(r"^#define (TSNN_\w+)\(", model_h, re.M))  # step.c_macros
    src = resources.files("tinysnn_dse.export").joinpath("c_src")
    used: set[str] = set()
    for name in c_mod.SOURCES:
        text = src.joinpath(name).read_text()
        defined |= set(re.findall(r"#define (TSNN_\w+)", text))
        used |= set(re.findall(r"\bTSNN_\w+", re.sub(r"/\*.*?\*/", "", text, flags=re.S)))
    assert used - defined == set()


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc)")
@pytest.mark.parametrize(("model", "rounding", "readout"), CASES)
def test_generated_header_compiles(model: str, rounding: str, readout: str, tmp_path: Path) -> None:
    cm, _ = _model(model, rounding, readout)
    c_mod.write(cm, tmp_path)
    cmd = ["cc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-c", "-o",
           str(tmp_path / "tinysnn.o"), str(tmp_path / "tinysnn.c")]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
