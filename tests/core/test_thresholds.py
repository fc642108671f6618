"""Adaptive thresholds under ITQ track their FP32 trajectory (issue 13, defects 1 and 2).

A threshold decays by exp(-T dt / tau_theta) per presentation, far less than one step of
any useful Vth format; re-quantizing after every such change used to wear truncated
thresholds down one step per step and freeze rounded ones. docs/model.md ("Thresholds
under ITQ") describes the accumulator that replaced it; these tests hold every path to
the FP32 trajectory and to hand-computed values.
"""

from __future__ import annotations

import math

import pytest
import torch

from tinysnn_dse.core import sim
from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.core.quant import VTH_GUARD_BITS, Quantizers

V_TH = -52.0
G0 = torch.Generator().manual_seed(0)
ROUNDINGS = ["truncate", "nearest", "stochastic"]
PATHS = [False, True] if sim.kernels.HAVE_NUMBA else [False]
BACKEND = {False: "reference", True: "numba"}


def vth_quant(bits: int, rounding: str, int_bits: int = 9) -> Quantizers:
    return Quantizers.from_spec(
        QuantSpec(scheme="itq", rounding=rounding, vth_bits=bits, vth_int_bits=int_bits)  # type: ignore[arg-type]
    )


def present(net: sim.Net, spikes: torch.Tensor, cfg, qz: Quantizers, fast: bool, seed: int = 0):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    return sim.simulate(net, spikes, cfg, qz, g, learn=True, backend=BACKEND[fast])


@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("bits", [8, 16])
def test_a_silent_presentation_keeps_the_threshold_within_one_step(
    bits: int, rounding: str, fast: bool
) -> None:
    """Defect 1: with no input, a threshold only decays, by 2.5e-5 of theta per 250-step
    presentation (2.5e-3 mV at theta 100 mV). Truncating it after every step wore a
    16-bit (sQ9.6) threshold down 250 steps (3.9 mV) per presentation; now it stays
    within one step of the FP32 value, which is theta * exp(-250 / 1e7) by hand."""
    cfg = preset("tinysnn", 4, 3)
    qz = vth_quant(bits, rounding)
    assert qz.vth is not None
    net = sim.quantize_net(
        sim.Net(torch.zeros(4, 3), torch.tensor([100.0, 37.0, 3.0])), cfg, qz, G0
    )
    spikes = torch.zeros(1, 250, 4, dtype=torch.bool)
    out, counts = present(net, spikes, cfg, qz, fast)
    assert counts.sum() == 0
    by_hand = net.theta.double() * math.exp(-250 / 1e7)
    assert torch.all((out.theta.double() - by_hand).abs() <= qz.vth.eps)


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_thresholds_keep_decaying_under_every_rounding(rounding: str) -> None:
    """Defect 2: a decay step below half a grid step used to round back to the same
    threshold under nearest rounding, so the threshold never decayed (tau_theta was
    effectively infinite). With tau_theta = 1e5 ms, 40 silent presentations take a 100 mV
    threshold 9.5 mV down in FP32 (608 steps of sQ9.6); the quantized one follows within
    one step."""
    cfg = preset("tinysnn", 4, 2, tau_theta_ms=1e5)
    qz = vth_quant(16, rounding)
    assert qz.vth is not None
    net = sim.quantize_net(sim.Net(torch.zeros(4, 2), torch.tensor([100.0, 20.0])), cfg, qz, G0)
    fp = net
    spikes = torch.zeros(1, 250, 4, dtype=torch.bool)
    for i in range(40):
        net, _ = present(net, spikes, cfg, qz, True, seed=i)
        fp, _ = present(fp, spikes, cfg, Quantizers.fp32(), True, seed=i)
    by_hand = torch.tensor([100.0, 20.0], dtype=torch.float64) * math.exp(-40 * 250 / 1e5)
    torch.testing.assert_close(fp.theta.double(), by_hand, rtol=1e-6, atol=0)
    assert float(100.0 - net.theta[0]) > 600 * qz.vth.eps  # it decayed
    assert torch.all((net.theta.double() - fp.theta.double()).abs() <= qz.vth.eps)


def driven_input(n_in: int, steps: int, seed: int) -> torch.Tensor:
    """Input that drives its target neuron far over any threshold, so that FP32 and
    quantized thresholds see the very same spikes."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, steps, n_in, generator=g) < 0.1


@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize(("bits", "int_bits"), [(8, 9), (8, 8), (12, 9), (16, 9), (24, 9)])
def test_a_learning_threshold_tracks_its_fp32_trajectory(
    bits: int, int_bits: int, rounding: str, fast: bool
) -> None:
    """Over several presentations with spikes (theta_plus 2 mV each, one step or a
    fraction of one: 8-bit sQ9.-2 has a 4 mV step, sQ8.-1 a 2 mV step) and decay
    (tau_theta 1e4 ms), each quantized threshold stays within one step of the FP32 one
    (plus the accumulator's own rounding, 2**-16 steps per update) under every rounding,
    on both paths."""
    n_in, n = 3, 3
    cfg = preset(
        "tinysnn", n_in, n, tau_theta_ms=1e4, w_lateral=0.0, w_max=1e3, one_spike=False, eta=0.0
    )
    w = torch.eye(n_in, n) * 500.0  # an input spike fires its neuron, whatever the threshold
    qz = vth_quant(bits, rounding, int_bits)
    assert qz.vth is not None
    net = sim.quantize_net(sim.Net(w, torch.tensor([0.0, 10.0, 20.0])), cfg, qz, torch.Generator())
    fp = sim.Net(w, net.theta.clone())
    total = 0.0
    for i in range(4):
        spikes = driven_input(n_in, 250, i)
        net, c = present(net, spikes, cfg, qz, fast, seed=i)
        fp, cf = present(fp, spikes, cfg, Quantizers.fp32(), fast, seed=i)
        assert torch.equal(c, cf)  # the same spikes
        total += float(c.sum())
        updates = float(c.max()) * (i + 1) + (i + 1)
        bound = qz.vth.eps * (1 + updates * 2.0**-VTH_GUARD_BITS)
        assert torch.all((net.theta.double() - fp.theta.double()).abs() <= bound)
        assert net.vth_acc is not None
        assert torch.all((net.vth_acc - (fp.theta.double() + V_TH)).abs() <= bound)
    assert total > 20


def test_fp32_threshold_update_by_hand() -> None:
    """FP32: each spike adds theta_plus, and the presentation ends with one decay:
    theta_end = (theta_0 + k theta_plus) exp(-T dt / tau_theta)."""
    cfg = preset("tinysnn", 1, 1, tau_theta_ms=1e4, theta_plus_mv=2.0, w_max=1e3)
    net = sim.Net(torch.full((1, 1), 500.0), torch.tensor([5.0]))
    spikes = torch.zeros(1, 250, 1, dtype=torch.bool)
    spikes[0, [10, 50, 90], 0] = True
    for fast in PATHS:
        out, c = present(net, spikes, cfg, Quantizers.fp32(), fast)
        assert float(c.sum()) == 3
        want = (5.0 + 3 * 2.0) * math.exp(-250 / 1e4)
        assert float(out.theta[0]) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_design_batch_thresholds_equal_single_runs(rounding: str) -> None:
    """The batch kernel applies the same threshold arithmetic as single-point learning."""
    if not sim.kernels.HAVE_NUMBA:
        pytest.skip("numba not installed")
    cfg = preset("tinysnn", 3, 3, tau_theta_ms=1e4, w_lateral=0.0, w_max=1e3, eta=0.0)
    w = torch.eye(3, 3) * 500.0
    qzs = [vth_quant(8, rounding), vth_quant(16, rounding), Quantizers.fp32()]
    nets = [
        sim.quantize_net(sim.Net(w, torch.tensor([0.0, 30.0, 70.0])), cfg, q, torch.Generator())
        for q in qzs
    ]
    batch = sim.DesignBatch(nets, cfg, qzs)
    k = sim.consts(cfg)
    spikes = driven_input(3, 250, 0)
    trains = sim.SpikeTrains(
        torch.zeros(3, dtype=torch.long), torch.arange(3), spikes[0].T.contiguous(), (1, 250, 3)
    )
    keys = sim.pack_keys(7, 11, 0)
    batch._present(torch.ones(3, dtype=torch.bool).numpy(), trains, keys, None)
    assert k.theta_decay == pytest.approx(math.exp(-250 / 1e4))
    for i, q in enumerate(qzs):  # the same presentation through the reference path
        out, _ = _reference_with_keys(nets[i], spikes, cfg, q, torch.Generator(), keys)
        assert torch.equal(batch.theta[i], out.theta)
        if q.vth is not None:
            assert torch.equal(torch.from_numpy(batch.acc[i]), out.vth_acc)


def _reference_with_keys(net, spikes, cfg, qz, g, keys):  # type: ignore[no-untyped-def]
    """simulate_reference with the tie-break and threshold keys a batch used."""
    from tinysnn_dse.core import encoding, reference

    draws = iter([int(keys[sim.K.K_TIE]), int(keys[sim.K.K_VTH])])
    orig = reference.draw_key

    def key(_g: torch.Generator) -> int:
        return next(draws)

    reference.draw_key = key  # type: ignore[assignment]
    encoding.draw_key, orig_enc = key, encoding.draw_key  # type: ignore[assignment]
    try:
        return sim.simulate_reference(net, spikes, cfg, qz, g, learn=True)
    finally:
        reference.draw_key = orig  # type: ignore[assignment]
        encoding.draw_key = orig_enc  # type: ignore[assignment]
