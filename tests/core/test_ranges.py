"""Vmem and Vth formats come from the ranges an FP32 run observes, at both ends (issue 13,
defect 3): strong lateral inhibition drives potentials far below -100 mV, and a format
that clips them changes the spikes."""

from __future__ import annotations

import math

import torch

from tinysnn_dse.core import sim
from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.core.quant import ObservedRanges, Quantizers, with_ranges


def two_neurons() -> tuple:  # type: ignore[type-arg]
    """Neuron A, driven hard for 50 steps, fires every 6 steps; each spike pushes B down
    by w_lateral = 150 mV, to about -1,400 mV. Then B gets 1 mV per step: in FP32 it
    recovers towards +35 mV with tau_m 100 ms but needs ~280 steps to reach threshold,
    so it stays silent for the remaining 200; clipped at -128 mV it needs only ~63."""
    cfg = preset("tinysnn", 2, 2)
    net = sim.Net(torch.tensor([[20.0, 0.0], [0.0, 1.0]]), torch.zeros(2))
    spikes = torch.zeros(1, 250, 2, dtype=torch.bool)
    spikes[0, :50, 0] = True
    spikes[0, 50:, 1] = True
    return cfg, net, spikes


def run(cfg, net, spikes, qz, meter=None):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(0)
    return sim.simulate_reference(net, spikes, cfg, qz, g, learn=False, meter=meter)[1][0]


def test_fp32_run_observes_the_low_end() -> None:
    cfg, net, spikes = two_neurons()
    m = sim.QuantMeter(track=True)
    counts = run(cfg, net, spikes, Quantizers.fp32(), m)
    assert counts.tolist() == [9.0, 0.0]
    # by hand: nine spikes of A, 150 mV each, less the leak between them
    assert -1400 < m.lo < -1100 and m.hi > -52


def test_observed_format_keeps_the_fp32_spikes_and_the_prior_did_not() -> None:
    """With integer bits from the observed range (and its 10 % margin) nothing clips and
    quantized inference fires as FP32 does, at 32 and 16 bits. The prior range
    [-100, 0] mV (sQ7.x, floor -128 mV: the formats before issue 13) turns B's 0 spikes
    into several, even at 32 bits."""
    cfg, net, spikes = two_neurons()
    m = sim.QuantMeter(track=True)
    fp32 = run(cfg, net, spikes, Quantizers.fp32(), m)
    obs = ObservedRanges(vmem=(m.lo, m.hi), vth=(cfg.exc.v_th_mv,) * 2, source="test")
    for bits in (32, 16):
        q = QuantSpec(vmem_bits=bits, vth_bits=bits)
        qz = Quantizers.from_spec(with_ranges(q, obs, cfg))
        assert qz.vmem is not None and qz.vmem.lo < m.lo
        meter = sim.QuantMeter()
        assert torch.equal(run(cfg, net, spikes, qz, meter), fp32)
        assert meter.saturated == 0 and meter.roundings == 250 * 2
        prior = Quantizers.from_spec(q)
        assert prior.vmem is not None and prior.vmem.lo == -128
        clipped = sim.QuantMeter()
        assert run(cfg, net, spikes, prior, clipped)[1] >= 5
        assert clipped.saturated_fraction > 0.02  # and the record says how much


def test_kernel_observes_and_counts_as_the_reference_does() -> None:
    """The inference kernel's meter (range in FP32, clipped roundings when quantized)
    agrees with the reference path's on a real network."""
    if not sim.kernels.HAVE_NUMBA:
        return
    for model, qz in [
        (m, q)
        for m in ("tinysnn", "baseline")
        for q in (Quantizers.fp32(), Quantizers.from_spec(QuantSpec(vmem_bits=8, vth_bits=16)))
    ]:
        cfg = preset(model, 64, 30)
        g = torch.Generator().manual_seed(3)
        net = sim.init_net(cfg, g)
        net = sim.Net(net.w * 4, torch.rand(30, generator=g) * 5)
        pix = torch.rand(20, 64, generator=torch.Generator().manual_seed(4))
        trains = sim.skip_trains(pix, 250, sim.rate_scale(cfg), g)
        a, b = sim.QuantMeter(track=True), sim.QuantMeter(track=True)
        ref = sim.infer_reference(net, trains, cfg, qz, torch.Generator().manual_seed(0), a)
        fast = sim.infer_fast(net, trains, cfg, qz, torch.Generator().manual_seed(0), b)
        assert torch.equal(ref, fast)
        assert (a.roundings, a.saturated) == (b.roundings, b.saturated)
        if qz.vmem is None:  # the reference sums the input current in another order
            assert abs(a.lo - b.lo) < 1e-3 and abs(a.hi - b.hi) < 1e-3
            assert a.lo < (-300 if model == "tinysnn" else -70)
        elif model == "tinysnn":
            assert a.saturated > 0  # sQ7.0 clips this network's lows


def test_observe_ranges_on_pixels() -> None:
    """sim.observe_ranges (what runner.observed_quant calls): Vmem over every step of an
    FP32 pass, Vth over the thresholds; the formats derived from it hold both."""
    cfg = preset("tinysnn", 64, 30)
    g = torch.Generator().manual_seed(3)
    net = sim.init_net(cfg, g)
    net = sim.Net(net.w * 4, torch.rand(30, generator=g) * 50)
    pix = torch.rand(20, 64, generator=torch.Generator().manual_seed(4))
    r = sim.observe_ranges(net, pix, cfg, torch.Generator().manual_seed(0), "test")
    thr = net.theta.double() + cfg.exc.v_th_mv
    assert r.vth == (float(thr.min()), float(thr.max()))
    assert r.vmem[0] < -150 and math.isfinite(r.vmem[1])
    qz = Quantizers.from_spec(with_ranges(QuantSpec(vmem_bits=16, vth_bits=8), r, cfg))
    assert qz.vmem is not None and qz.vth is not None
    assert qz.vmem.lo < r.vmem[0] and qz.vth.hi >= r.vth[1] and qz.vth.lo <= r.vth[0]
