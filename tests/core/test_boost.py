"""DC15 rate boosting: weak images are presented again at a higher rate."""

from __future__ import annotations

import torch

from tinysnn_dse.core import sim
from tinysnn_dse.core.params import preset
from tinysnn_dse.core.quant import Quantizers


def test_rate_scale_boosts_and_caps() -> None:
    cfg = preset("tinysnn", 16, 4)
    assert sim.rate_scale(cfg, 0) == 0.128
    assert abs(sim.rate_scale(cfg, 2) - (128 + 64) / 1000) < 1e-12
    assert sim.rate_scale(preset("tinysnn", 16, 4, rate_boost_hz=1000), 3) == 1.0


def test_faint_images_are_boosted_blank_ones_stay_silent() -> None:
    cfg = preset("tinysnn", 64, 10)
    g = torch.Generator().manual_seed(0)
    net = sim.init_net(cfg, g)
    net = sim.Net(net.w, net.theta + 4.0)  # a harder threshold
    faint = torch.full((1, 64), 0.3)
    blank = torch.zeros(1, 64)
    x = torch.cat([faint, blank])
    qz = Quantizers.fp32()
    off = preset("tinysnn", 64, 10, min_spikes=0)
    counts_off = sim.infer(net, x, off, qz, torch.Generator().manual_seed(1))
    counts_on = sim.infer(net, x, cfg, qz, torch.Generator().manual_seed(1))
    assert counts_off[0].sum() < 5  # too weak without boosting
    assert counts_on[0].sum() >= 5  # boosted until it drives the layer
    assert counts_on[1].sum() == 0 and counts_off[1].sum() == 0
