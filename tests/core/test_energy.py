"""Modelled energy: hand-computed prices, and the orderings the paper's argument rests on."""

from __future__ import annotations

import pytest
import torch

from tinysnn_dse.core import energy as en
from tinysnn_dse.core.energy import OpCounts, modelled_energy
from tinysnn_dse.core.params import preset
from tinysnn_dse.core.quant import Quantizers
from tinysnn_dse.core.sim import infer, init_net, train_sample


def test_table_points_and_interpolation() -> None:
    assert en.add_pj(8) == pytest.approx(0.03)
    assert en.add_pj(32) == pytest.approx(0.1)
    assert en.add_pj(12) == pytest.approx(0.04)  # linear in bits between 8 and 16
    assert en.mul_pj(8) == pytest.approx(0.2)
    assert en.mul_pj(32) == pytest.approx(3.1)
    assert en.add_pj(None) == en.FP32_ADD_PJ and en.mul_pj(None) == en.FP32_MUL_PJ
    assert en.mem_pj(8) == pytest.approx(8 * 100 / 64)
    assert en.mem_pj(None, 2) == pytest.approx(64 * 100 / 64)
    widths = list(range(2, 33))
    assert all(en.add_pj(a) <= en.add_pj(b) for a, b in zip(widths, widths[1:], strict=False))
    assert all(en.mul_pj(a) <= en.mul_pj(b) for a, b in zip(widths, widths[1:], strict=False))


def test_inference_price_by_hand() -> None:
    """2 inputs x 3 lateral neurons, 8-bit everything: every term written out."""
    c = OpCounts(samples=1, presentations=1, steps=10, input_spikes=4, exc_spikes=2)
    e = modelled_energy(c, n_in=2, n_exc=3, topology="lateral", weight_bits=8, vmem_bits=8,
                        vth_bits=8)  # fmt: skip
    syn = 4 * 3 * (en.mem_pj(8) + en.add_pj(8))
    neuron = 10 * 3 * (2 * en.mem_pj(8) + en.mem_pj(8) + en.mul_pj(8) + 2 * en.add_pj(8))
    rec = 2 * (3 - 1) * en.add_pj(8)
    assert e.breakdown_j["synaptic"] == pytest.approx(syn * 1e-12)
    assert e.breakdown_j["neuron"] == pytest.approx(neuron * 1e-12)
    assert e.breakdown_j["recurrent"] == pytest.approx(rec * 1e-12)
    assert e.total_j == pytest.approx((syn + neuron + rec) * 1e-12)
    assert "learning" not in e.breakdown_j


def test_if_neurons_drop_the_leak_by_hand() -> None:
    """IF: every excitatory update loses its leak multiply and add (8 bits: 0.2 + 0.03 pJ);
    the baseline's inhibitory layer keeps its own."""
    c = OpCounts(samples=1, presentations=1, steps=10, input_spikes=4, exc_spikes=2)
    kw = dict(n_in=2, n_exc=3, weight_bits=8, vmem_bits=8, vth_bits=8)
    lif = modelled_energy(c, topology="lateral", **kw)  # type: ignore[arg-type]
    iff = modelled_energy(c, topology="lateral", leak="if", **kw)  # type: ignore[arg-type]
    leak = 10 * 3 * (en.mul_pj(8) + en.add_pj(8))
    assert leak == pytest.approx(10 * 3 * 0.23)
    assert (lif.breakdown_j["neuron"] - iff.breakdown_j["neuron"]) * 1e12 == pytest.approx(leak)
    inh_lif = modelled_energy(c, topology="inhibitory", **kw)  # type: ignore[arg-type]
    inh_if = modelled_energy(c, topology="inhibitory", leak="if", **kw)  # type: ignore[arg-type]
    assert (inh_lif.total_j - inh_if.total_j) * 1e12 == pytest.approx(leak)  # one layer's


def test_inhibitory_layer_costs_more_than_lateral_inhibition() -> None:
    c = OpCounts(samples=1, presentations=1, steps=250, input_spikes=2000, exc_spikes=20)
    lat = modelled_energy(c, 784, 400, "lateral", None, None, None)
    inh = modelled_energy(c, 784, 400, "inhibitory", None, None, None)
    assert inh.breakdown_j["neuron"] == pytest.approx(2 * lat.breakdown_j["neuron"])
    assert inh.breakdown_j["recurrent"] > lat.breakdown_j["recurrent"]
    q8 = modelled_energy(c, 784, 400, "lateral", 8, 8, 8)
    assert q8.total_j < lat.total_j < inh.total_j


def test_simulation_counts_events() -> None:
    g = torch.Generator().manual_seed(0)
    for model in ("baseline", "sl-stdp", "tinysnn"):
        cfg = preset(model, 16, 5)
        net = init_net(cfg, g)
        x = torch.rand(16, generator=g)
        ops = OpCounts()
        _net, counts = train_sample(net, x, cfg, Quantizers.fp32(), g, stats=ops)
        assert ops.samples == 1 and ops.normalisations == 1
        assert ops.presentations >= 1 and ops.steps == ops.presentations * cfg.encoding.steps
        assert ops.input_spikes > 0 and ops.exc_spikes >= int(counts.sum())
        if model == "baseline":
            assert ops.synapse_updates >= ops.input_spikes * 5
        if ops.exc_spikes:
            assert ops.synapse_updates > 0
    ops = OpCounts()
    counts = infer(net, torch.rand(7, 16, generator=g), cfg, Quantizers.fp32(), g, stats=ops)
    assert ops.samples == 7 and ops.presentations >= 7
    assert ops.exc_spikes >= int(counts.sum()) and ops.synapse_updates == 0
