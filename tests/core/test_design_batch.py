"""K design points trained together (sim.DesignBatch) against single-point training."""

from __future__ import annotations

import pytest
import torch

from tinysnn_dse.core import sim
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.params import QuantSpec, apply_overrides, preset
from tinysnn_dse.core.quant import Quantizers
from tinysnn_dse.errors import ConfigError

pytestmark = pytest.mark.skipif(not sim.kernels.HAVE_NUMBA, reason="numba not installed")

DETERMINISTIC = [
    QuantSpec(),
    QuantSpec(scheme="itq", rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16),
    QuantSpec(scheme="itq", rounding="truncate", weight_bits=6),
    QuantSpec(scheme="itq", rounding="nearest", weight_bits=4, vmem_bits=12, vth_bits=12),
]


def start(cfg, qz: Quantizers) -> sim.Net:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(0)
    net = sim.init_net(cfg, g)
    return net if qz.is_fp32 else sim.quantize_net(net, cfg, qz, g)


@pytest.mark.parametrize("topology", ["lateral", "inhibitory"])
def test_each_point_of_a_batch_equals_its_single_run(topology: str) -> None:
    """Bright images (no re-presentation) and deterministic rounding: the batch draws
    the generator as a single run does, so every point must end where a single run of
    that point ends: same spike counts and thresholds, weights to float32 rounding."""
    cfg = preset("tinysnn", 196, 40, topology=topology)
    qzs = [Quantizers.from_spec(q) for q in DETERMINISTIC]
    pix = 0.3 + 0.7 * torch.rand(6, 196, generator=torch.Generator().manual_seed(5))
    batch = sim.DesignBatch([start(cfg, q) for q in qzs], cfg, qzs)
    g = torch.Generator().manual_seed(1)
    stats = [OpCounts() for _ in qzs]
    counts = torch.stack([batch.train_sample(p, g, stats) for p in pix])  # [S, K, N]
    got = batch.nets()
    for i, qz in enumerate(qzs):
        g1 = torch.Generator().manual_seed(1)
        net, ref_counts, one, m1 = start(cfg, qz), [], OpCounts(), sim.QuantMeter()
        for p in pix:
            net, c = sim.train_sample(net, p, cfg, qz, g1, stats=one, meter=m1)
            ref_counts.append(c)
        assert one.presentations == len(pix)  # no boosts: the premise of the comparison
        assert torch.equal(counts[:, i], torch.stack(ref_counts))
        assert torch.equal(got[i].theta, net.theta)
        torch.testing.assert_close(got[i].w, net.w, rtol=0, atol=1e-6)
        assert stats[i].to_dict() == one.to_dict()
        # the batch's meter, accumulated by the kernel over every presentation: one Vmem
        # rounding per neuron, layer and step of each presentation (none in FP32), and
        # what clipped, as the single run counts it
        bm = batch.meters[i]
        layers = 2 if topology == "inhibitory" else 1
        want = one.presentations * cfg.encoding.steps * 40 * layers if qz.vmem else 0
        assert (bm.roundings, m1.roundings) == (want, want)
        assert (bm.saturated, bm.vth_updates, bm.vth_clipped) == (
            m1.saturated, m1.vth_updates, m1.vth_clipped
        )  # fmt: skip
    assert counts.sum() > 0


def test_points_differ_by_precision_and_share_randomness() -> None:
    """Two identical points see identical random numbers (common random numbers), even
    with stochastic rounding and re-presentations; a different precision gives a
    different network; the same seed gives the same batch."""
    cfg = preset("tinysnn", 196, 30)
    specs = [
        QuantSpec(scheme="itq", rounding="stochastic", weight_bits=8, vmem_bits=16, vth_bits=16),
        QuantSpec(scheme="itq", rounding="stochastic", weight_bits=8, vmem_bits=16, vth_bits=16),
        QuantSpec(scheme="itq", rounding="stochastic", weight_bits=4, vmem_bits=16, vth_bits=16),
    ]
    qzs = [Quantizers.from_spec(q) for q in specs]
    pix = torch.rand(6, 196, generator=torch.Generator().manual_seed(7)) ** 3
    pix[2] *= 0.02  # faint: re-presented at boosted rates

    def run() -> tuple[list[sim.Net], list[OpCounts]]:
        batch = sim.DesignBatch([start(cfg, q) for q in qzs], cfg, qzs)
        g = torch.Generator().manual_seed(3)
        stats = [OpCounts() for _ in qzs]
        for p in pix:
            batch.train_sample(p, g, stats)
        return batch.nets(), stats

    (a, sa), (b, _) = run(), run()
    assert all(
        torch.equal(x.w, y.w) and torch.equal(x.theta, y.theta) for x, y in zip(a, b, strict=True)
    )
    assert torch.equal(a[0].w, a[1].w) and torch.equal(a[0].theta, a[1].theta)
    assert not torch.equal(a[0].w, a[2].w)
    assert sa[0].presentations > len(pix)  # the faint image was re-presented
    for net, qz in zip(a, qzs, strict=True):  # weights stay on each point's grid
        eps = qz.weight.eps  # type: ignore[union-attr]
        assert torch.equal(torch.round(net.w / eps) * eps, net.w)


def test_bad_batches_are_refused() -> None:
    cfg = preset("baseline", 16, 4)
    with pytest.raises(ConfigError, match="tinysnn rule"):
        sim.DesignBatch([start(cfg, Quantizers.fp32())], cfg, [Quantizers.fp32()])
    with pytest.raises(ValueError, match="one quantizer per network"):
        sim.DesignBatch([], preset("tinysnn", 16, 4), [])


def test_kernels_leave_torch_thread_count_alone() -> None:
    """numba's OpenMP layer changes the thread count torch reads back; the parallel kernels
    (inference, spike trains, design batches) must leave it as the caller set it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = preset("tinysnn", 64, 20)
        g = torch.Generator().manual_seed(0)
        net = sim.init_net(cfg, g)
        x = torch.rand(8, 64, generator=g)
        sim.infer(net, x, cfg, Quantizers.fp32(), g)
        assert torch.get_num_threads() == 1
        sim.DesignBatch([net, net], cfg, [Quantizers.fp32()] * 2).train_sample(x[0], g)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_points_may_vary_learning_parameters() -> None:
    """Points with their own theta_plus, eta, s_th, lateral inhibition and norm: each ends
    where a single run with that configuration ends (deterministic rounding, no boosts)."""
    base = preset("tinysnn", 196, 40)
    variants = [
        {},
        {"theta_plus_mv": 4.0, "eta": 0.02},
        {"s_th": 5.0, "w_lateral": 10.0},
        {"norm_per_input": 0.08},
    ]
    cfgs = [apply_overrides(base, v) if v else base for v in variants]
    qzs = [Quantizers.fp32()] * len(cfgs)
    pix = 0.3 + 0.7 * torch.rand(5, 196, generator=torch.Generator().manual_seed(4))
    batch = sim.DesignBatch([start(base, q) for q in qzs], base, qzs, cfgs=cfgs)
    g = torch.Generator().manual_seed(1)
    counts = torch.stack([batch.train_sample(p, g) for p in pix])
    got = batch.nets()
    for i, cfg in enumerate(cfgs):
        g1 = torch.Generator().manual_seed(1)
        net, ref = start(base, qzs[i]), []
        for p in pix:
            net, c = sim.train_sample(net, p, cfg, qzs[i], g1)
            ref.append(c)
        assert torch.equal(counts[:, i], torch.stack(ref))
        assert torch.equal(got[i].theta, net.theta)
        torch.testing.assert_close(got[i].w, net.w, rtol=0, atol=1e-6)
    assert not torch.equal(got[0].w, got[1].w)


def test_points_may_not_vary_other_parameters() -> None:
    base = preset("tinysnn", 16, 4)
    other = apply_overrides(base, {"tau_trace_ms": 10.0})
    qz = Quantizers.fp32()
    with pytest.raises(ValueError, match="differ only in"):
        sim.DesignBatch([start(base, qz)] * 2, base, [qz] * 2, cfgs=[base, other])
