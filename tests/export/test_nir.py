"""The exported NIR graph (issue 16, item 2): what `nir.read` gets back, the equations
its parameters encode, and a real consumer (Norse, optional) running it on the exported
spike trains."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tinysnn_dse.core import integer
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.export import ExportResult, export_design, spikes
from tinysnn_dse.runner import Trained, load_checkpoint

nir = pytest.importorskip("nir")
Q = QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16)


def _export(trained: Trained, out: Path, n: int = 200) -> tuple[ExportResult, object]:
    res = export_design(trained, Q, out, None, n)
    return res, nir.read(str(out / "model.nir"))


def _no_refractory(t: Trained) -> Trained:
    m = t.model
    m = dataclasses.replace(m, exc=dataclasses.replace(m.exc, t_ref_ms=0.0),
                            inh=dataclasses.replace(m.inh, t_ref_ms=0.0))  # fmt: skip
    return dataclasses.replace(t, model=m)


def test_graph_reads_back_with_the_designs_values(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    """Nodes and edges of the tinySNN graph; W is the weight codes times the step; each
    threshold is its Vth code times the Vth step, relative to rest; forward Euler at dt
    with the file's tau and r is the simulator's leak D / 2**16 and adds the input 1:1;
    the lateral weight is -w_lateral on the Vmem grid off the diagonal; the formats are in
    the metadata."""
    res, g = _export(load_checkpoint(checkpoints["tinysnn"]), tmp_path / "x")
    d = res.design
    ev = res.evaluation
    assert d is not None and ev is not None and ev.deployed is not None
    assert set(g.nodes) == {"input", "w", "exc", "lateral", "output"}
    assert sorted(g.edges) == sorted([("input", "w"), ("w", "exc"), ("exc", "output"),
                                      ("exc", "lateral"), ("lateral", "exc")])  # fmt: skip
    net, m = ev.deployed.net, ev.deployed.model
    codes = integer.codes(net.w, d.weight)
    assert np.array_equal(g.nodes["w"].weight, codes.T * d.weight.eps)
    exc = g.nodes["exc"]
    dt = 1e-3
    assert np.allclose(1 - dt / exc.tau, d.exc.decay / 2**16, rtol=0, atol=1e-12)
    assert math.isclose(d.exc.decay / 2**16, math.exp(-0.01), abs_tol=2**-17)
    assert np.allclose(exc.r * dt / exc.tau, 1.0)
    tc = integer.threshold_codes(net.theta, m, ev.deployed.qz)
    assert np.allclose(exc.v_threshold, tc * d.vth.eps - d.exc.rest * d.vmem.eps)
    assert np.allclose(exc.v_reset, 5.0) and np.allclose(exc.v_leak, 0.0)  # -60 vs -65 mV
    lat = g.nodes["lateral"].weight
    assert np.allclose(np.diag(lat), 0) and np.allclose(lat[0, 1], -150.0)
    meta = g.metadata
    assert meta["formats"]["weight"].startswith("uQ1.7") and meta["rounding"] == "nearest"
    assert float(meta["dt_s"]) == dt and int(meta["steps_per_presentation"]) == 250


def test_baseline_and_if_graphs(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """The baseline's inhibitory layer: exc -> a one-step Delay -> exc_inh (one to one) ->
    inh (LIF, tau 10 ms) -> inh_exc (all but self) -> exc; IF neurons export as nir.IF."""
    _, g = _export(load_checkpoint(checkpoints["baseline"]), tmp_path / "b", 50)
    assert {"exc_inh", "delay", "inh", "inh_exc"} <= set(g.nodes)
    assert ("exc", "delay") in g.edges and ("delay", "exc_inh") in g.edges
    assert ("exc_inh", "inh") in g.edges
    assert np.allclose(g.nodes["delay"].delay, 1e-3)
    inh = g.nodes["inh"]
    assert np.allclose(1 - 1e-3 / inh.tau, round(math.exp(-0.1) * 2**16) / 2**16, atol=1e-12)
    w = g.nodes["exc_inh"].weight
    assert np.count_nonzero(w - np.diag(np.diag(w))) == 0 and np.allclose(np.diag(w), 22.5)
    t = load_checkpoint(checkpoints["tinysnn"])
    t = dataclasses.replace(
        t, model=dataclasses.replace(t.model, exc=dataclasses.replace(t.model.exc, leak="if"))
    )
    _, g = _export(t, tmp_path / "if", 50)
    assert isinstance(g.nodes["exc"], nir.IF)


def _first_presentations(out: Path) -> torch.Tensor:
    sf = spikes.read(out / "c" / "test_spikes.bin")
    return torch.from_numpy(np.stack([p[0].dense(sf.n_in) for p in sf.images]))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tinysnn", "baseline"])
def test_norse_runs_the_graph_as_tinysnn_does(
    model: str, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    """Norse's NIR node import, fed the exported spikes of 200 MNIST test images (first
    presentation), against tinysnn's integer inference of the same design. NIR has no
    refractory period, so the network is exported with it set to 0: the rest (Euler
    leak, reset, threshold, recurrent delay, the inhibitory layer's Delay) must agree;
    what is left is tinysnn's Vmem rounding of each step against Norse's float32, a
    crossing within a step: at least 99 % of (image, neuron) counts equal."""
    pytest.importorskip("norse")
    from tinysnn_dse.export import nir_check

    t = _no_refractory(load_checkpoint(checkpoints[model]))
    res, g = _export(t, tmp_path / "x")
    ev, d = res.evaluation, res.design
    assert ev is not None and ev.deployed is not None and d is not None
    x = _first_presentations(tmp_path / "x")
    wc = torch.from_numpy(integer.weight_codes(ev.deployed.net.w, d))
    thr = d.vmem_thresholds(integer.threshold_codes(ev.deployed.net.theta, ev.deployed.model,
                                                    ev.deployed.qz))  # fmt: skip
    ours = integer.infer_reference(wc, thr, x, d, None)[0]
    theirs = nir_check.run_counts(nir_check.norse_module(g), x)
    assert ours.sum() > 200
    assert float((ours == theirs).double().mean()) >= 0.99
    assert abs(float(ours.sum() - theirs.sum())) <= 0.02 * float(ours.sum())


def test_the_readmes_norse_block_runs_model_norse_nir(checkpoints: dict[str, Path],
                                                       tmp_path: Path) -> None:  # fmt: skip
    """The export README's Norse block, run as written on model.norse.nir (tinySNN, no
    refractory period), gives the counts of tinySNN's integer inference for at least 99 %
    of (image, neuron) pairs: the variant says in Norse's terms what model.nir says."""
    pytest.importorskip("norse")
    import re

    t = _no_refractory(load_checkpoint(checkpoints["tinysnn"]))
    res, _g = _export(t, tmp_path / "x")
    ev, d = res.evaluation, res.design
    assert ev is not None and ev.deployed is not None and d is not None
    readme = (tmp_path / "x" / "README.md").read_text()
    block = re.search(r"```python\n(import nir, nirtorch.*?)```", readme, re.S)
    assert block is not None and (tmp_path / "x" / "model.norse.nir").is_file()
    x = _first_presentations(tmp_path / "x")
    scope: dict[str, object] = {"spikes": x.transpose(0, 1)}
    cwd = Path.cwd()
    try:
        import os

        os.chdir(tmp_path / "x")
        with torch.no_grad():
            exec(block.group(1), scope)  # noqa: S102  the README's own code
    finally:
        os.chdir(cwd)
    wc = torch.from_numpy(integer.weight_codes(ev.deployed.net.w, d))
    thr = d.vmem_thresholds(integer.threshold_codes(ev.deployed.net.theta, ev.deployed.model,
                                                    ev.deployed.qz))  # fmt: skip
    ours = integer.infer_reference(wc, thr, x, d, None)[0]
    theirs = scope["counts"]
    assert isinstance(theirs, torch.Tensor) and ours.sum() > 200
    assert float((ours == theirs).double().mean()) >= 0.99
