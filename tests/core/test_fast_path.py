"""The compiled fast path computes exactly what the reference path computes."""

from __future__ import annotations

import pytest
import torch

from tinysnn_dse.core import sim
from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.core.quant import Quantizers

CASES = [
    ({}, QuantSpec()),
    ({"topology": "inhibitory"}, QuantSpec()),
    ({}, QuantSpec(scheme="itq", rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16)),
    ({}, QuantSpec(scheme="itq", rounding="stochastic", weight_bits=8)),
    (
        {"theta_plus_mv": 1.0},
        QuantSpec(scheme="itq", rounding="truncate", weight_bits=6, vmem_bits=8, vth_bits=8),
    ),  # fmt: skip
    ({"one_spike": "false", "update_every_ms": 10}, QuantSpec()),
]


@pytest.mark.skipif(not sim.kernels.HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize(("over", "q"), CASES)
def test_fast_learning_equals_reference(over: dict, q: QuantSpec) -> None:
    cfg = preset("tinysnn", 196, 40, **over)
    itq = q.scheme == "itq" and not q.is_fp32
    qz = Quantizers.from_spec(q) if itq else Quantizers.fp32()
    assert sim.fast_path_ok(cfg, qz, torch.device("cpu"))
    pix = torch.rand(12, 196, generator=torch.Generator().manual_seed(7)) ** 3
    out = []
    for fast in (False, True):
        g = torch.Generator().manual_seed(0)
        net = sim.init_net(cfg, g)
        if itq:
            net = sim.quantize_net(net, cfg, qz, g)
        counts = []
        for i in range(12):
            net, c = (
                sim.train_sample(net, pix[i], cfg, qz, g) if fast else _ref(net, pix[i], cfg, qz, g)
            )
            counts.append(c)
        out.append((net, torch.stack(counts)))
    (a, ca), (b, cb) = out
    assert ca.sum() > 0
    assert torch.equal(ca, cb)
    assert torch.equal(a.w, b.w)
    assert torch.equal(a.theta, b.theta)


def _ref(net, pixels, cfg, qz, g):
    c = sim.consts(cfg)
    spikes = sim.poisson(pixels.unsqueeze(0), c.steps, c.rate_scale, g)
    net, counts = sim.simulate(net, spikes, cfg, qz, g, learn=True, fast=False)
    w = sim.normalize(net.w, cfg.norm, cfg.learning.w_max)
    if qz.weight is not None:
        w = qz.w(w, g)
    return sim.Net(w=w, theta=net.theta), counts[0]


def test_stochastic_neuron_rounding_uses_the_reference_path() -> None:
    cfg = preset("tinysnn", 16, 4)
    qz = Quantizers.from_spec(QuantSpec(scheme="itq", rounding="stochastic", vmem_bits=16))
    assert not sim.fast_path_ok(cfg, qz, torch.device("cpu"))
    assert not sim.fast_path_ok(preset("baseline", 16, 4), Quantizers.fp32(), torch.device("cpu"))
