"""The compiled fast path computes exactly what the reference path computes."""

from __future__ import annotations

import pytest
import torch

from tinysnn_dse.core import sim
from tinysnn_dse.core.params import ModelConfig, QuantSpec, preset
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
    ({}, QuantSpec(scheme="itq", rounding="stochastic", weight_bits=8, vmem_bits=8, vth_bits=8)),
    (
        {"topology": "inhibitory"},
        QuantSpec(scheme="itq", rounding="stochastic", weight_bits=8, vmem_bits=16, vth_bits=16),
    ),  # fmt: skip
    ({}, QuantSpec(scheme="itq", rounding="stochastic", vmem_bits=12)),
    ({"leak": "if"}, QuantSpec()),  # integrate-and-fire: decay 1
    ({"leak": "if"}, QuantSpec(scheme="itq", rounding="nearest", weight_bits=8, vmem_bits=16)),
    # a membrane floor that binds (lateral inhibition of 150 mV drives potentials below it)
    ({"vmem_floor_mv": 5.0}, QuantSpec()),
    (
        {"vmem_floor_mv": 5.0},
        QuantSpec(scheme="itq", rounding="stochastic", weight_bits=8, vmem_bits=8, vth_bits=8),
    ),  # fmt: skip
    ({"vmem_floor_mv": 1.0, "topology": "inhibitory"}, QuantSpec()),
]


def train_both_paths(
    cfg: ModelConfig, qz: Quantizers, pix: torch.Tensor
) -> list[tuple[sim.Net, torch.Tensor]]:
    """Train on every image of ``pix`` by the reference, then the fast path; same seed."""
    out = []
    for fast in (False, True):
        g = torch.Generator().manual_seed(0)
        net = sim.init_net(cfg, g)
        if not qz.is_fp32:
            net = sim.quantize_net(net, cfg, qz, g)
        counts = [None] * len(pix)
        for i in range(len(pix)):
            net, counts[i] = sim.train_sample(
                net, pix[i], cfg, qz, g, backend="numba" if fast else "reference"
            )
        out.append((net, torch.stack(counts)))
    return out


@pytest.mark.skipif(not sim.kernels.HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize(("over", "q"), CASES)
def test_fast_learning_equals_reference(over: dict, q: QuantSpec) -> None:
    """The kernels sum only the active rows of W (the reference: a window product) and
    apply the rule themselves: spike counts and thresholds equal on this input, weights
    within float32 rounding (stated tolerance 1e-6 after 12 samples)."""
    cfg = preset("tinysnn", 196, 40, **over)
    qz = Quantizers.from_spec(q) if q.scheme == "itq" else Quantizers.fp32()
    assert sim.Backend.NUMBA in sim.supported("learn", cfg, qz, torch.device("cpu"))
    pix = torch.rand(12, 196, generator=torch.Generator().manual_seed(7)) ** 3
    pix[3] *= 0.02  # a faint image: re-presented at boosted rates
    (a, ca), (b, cb) = train_both_paths(cfg, qz, pix)
    assert ca.sum() > 0
    assert torch.equal(ca, cb)
    assert torch.equal(a.theta, b.theta)
    torch.testing.assert_close(a.w, b.w, rtol=0, atol=1e-6)
    assert not torch.equal(a.w, sim.init_net(cfg, torch.Generator().manual_seed(0)).w)


def test_stochastic_rounding_under_per_step_rules_uses_the_reference_path() -> None:
    stoch_w = Quantizers.from_spec(QuantSpec(scheme="itq", rounding="stochastic", weight_bits=8))
    assert sim.Backend.NUMBA not in sim.supported(
        "learn", preset("baseline", 16, 4), stoch_w, torch.device("cpu")
    )
    assert sim.Backend.NUMBA in sim.supported(
        "learn", preset("baseline", 16, 4), Quantizers.fp32(), torch.device("cpu")
    )


STEPWISE = [
    ("baseline", {}, QuantSpec()),
    ("sl-stdp", {}, QuantSpec()),
    ("baseline", {"topology": "lateral"}, QuantSpec()),
    ("sl-stdp", {}, QuantSpec(scheme="itq", rounding="nearest", weight_bits=10, vmem_bits=16)),
]


@pytest.mark.skipif(not sim.kernels.HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize(("model", "over", "q"), STEPWISE)
def test_fast_stepwise_rules_match_reference(model: str, over: dict, q: QuantSpec) -> None:
    """pair / sl-stdp: the kernel sums only active rows for the input current, the
    reference a dense product, so values agree to float32 rounding (stated tolerance
    1e-5 on weights after 4 samples) and spike counts agree exactly on this input."""
    cfg = preset(model, 196, 30, **over)
    qz = Quantizers.from_spec(q) if q.scheme == "itq" else Quantizers.fp32()
    assert sim.Backend.NUMBA in sim.supported("learn", cfg, qz, torch.device("cpu"))
    pix = torch.rand(4, 196, generator=torch.Generator().manual_seed(11)) ** 3
    (a, ca), (b, cb) = train_both_paths(cfg, qz, pix)
    assert ca.sum() > 0
    assert torch.equal(ca, cb)
    torch.testing.assert_close(a.w, b.w, rtol=0, atol=1e-5)
    torch.testing.assert_close(a.theta, b.theta, rtol=0, atol=1e-5)


INFER = [
    ("tinysnn", QuantSpec()),
    ("baseline", QuantSpec()),
    ("tinysnn", QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16)),
    ("baseline", QuantSpec(rounding="truncate", weight_bits=6, vmem_bits=8, vth_bits=8)),
    ("tinysnn", QuantSpec(rounding="stochastic", weight_bits=8, vmem_bits=8, vth_bits=8)),
    ("baseline", QuantSpec(rounding="stochastic", weight_bits=8, vmem_bits=12, vth_bits=12)),
]


def _inference_case(
    model: str, q: QuantSpec, seed: int, pix_seed: int, **over: float
) -> tuple[ModelConfig, Quantizers, torch.Generator, sim.Net, torch.Tensor]:
    """A 196 x 50 network with raised thresholds (so spikes vary) and 40 input images."""
    cfg = preset(model, 196, 50, **over)
    qz = Quantizers.from_spec(q)
    g = torch.Generator().manual_seed(seed)
    net = sim.quantize_net(sim.init_net(cfg, g), cfg, qz, g)
    net = sim.Net(net.w, net.theta + torch.rand(50, generator=g) * 3)
    pix = torch.rand(40, 196, generator=torch.Generator().manual_seed(pix_seed)) ** 2
    return cfg, qz, g, net, pix


@pytest.mark.skipif(not sim.kernels.HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize(("model", "q"), INFER)
def test_fast_inference_matches_reference(model: str, q: QuantSpec) -> None:
    """Same spikes in; the kernel sums only active rows, so counts may differ only where
    float32 rounding flips a threshold crossing: we allow at most 1 % of (image, neuron)
    counts to differ, by at most one spike, and equal totals within 1 %."""
    cfg, qz, g, net, pix = _inference_case(model, q, 2, 3)
    c = sim.consts(cfg)
    trains = sim.poisson_trains(pix, c.steps, c.rate_scale, g)
    state = g.get_state()  # both paths draw the same stochastic-rounding uniforms
    ref = sim.infer_reference(net, trains, cfg, qz, g)
    g.set_state(state)
    fast = sim.infer_fast(net, trains, cfg, qz, g)
    assert ref.sum() > 100
    diff = (ref - fast).abs()
    assert float((diff > 0).float().mean()) <= 0.01
    assert float(diff.max()) <= 1
    assert abs(float(ref.sum() - fast.sum())) <= 0.01 * float(ref.sum())


@pytest.mark.skipif(not sim.kernels.HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize(("model", "q"), INFER)
def test_kernel_drawn_trains_equal_stored_trains(model: str, q: QuantSpec) -> None:
    """The inference kernel that draws its own spike trains (what ``infer`` runs on the
    CPU) sees the trains skip_trains stores, spike for spike: the same counts to the last
    bit and the same number of input spikes, with the same generator state after."""
    cfg, qz, g, net, pix = _inference_case(model, q, 4, 5)
    pix[3] = 0.0  # an image without input
    pix[7, :5] = 1.0 / sim.rate_scale(cfg, 0)  # inputs that spike at every step (p = 1)
    scale = sim.rate_scale(cfg, 0)
    state = g.get_state()
    trains = sim.skip_trains(pix, sim.consts(cfg).steps, scale, g)
    stored = sim.infer_fast(net, trains, cfg, qz, g)
    after = g.get_state()
    g.set_state(state)
    drawn, (n_in, n_pruned) = sim.infer_drawn(net, pix, scale, cfg, qz, g)
    assert stored.sum() > 100
    assert torch.equal(stored, drawn)
    assert n_in == int(trains.spikes.sum())
    assert n_pruned == 0  # nothing pruned
    assert torch.equal(g.get_state(), after)


@pytest.mark.skipif(not sim.kernels.HAVE_NUMBA, reason="numba not installed")
def test_skip_trains_are_bernoulli_per_step() -> None:
    """Geometric skipping draws the same process as a uniform per step: each step spikes
    with probability p (checked at the first, middle and last steps, and on average) and
    the count per input has the binomial variance T p (1 - p). Same key, same trains."""
    n_in, steps = 20000, 250
    for p in (0.02, 0.128, 0.4):
        pix = torch.full((1, n_in), p)
        g = torch.Generator().manual_seed(5)
        tr = sim.skip_trains(pix, steps, 1.0, g)
        s = tr.spikes.float()  # [n_in, T]
        for t in (0, steps // 2, steps - 1):
            assert abs(float(s[:, t].mean()) - p) < 4 * (p * (1 - p) / n_in) ** 0.5 + 1e-9
        counts = s.sum(dim=1)
        assert abs(float(counts.mean()) / (steps * p) - 1) < 0.01
        var = float(counts.var())
        assert abs(var / (steps * p * (1 - p)) - 1) < 0.05
        again = sim.skip_trains(pix, steps, 1.0, torch.Generator().manual_seed(5))
        assert torch.equal(again.spikes, tr.spikes)
    full = sim.skip_trains(torch.ones(1, 3), 10, 1.0, torch.Generator().manual_seed(0))
    assert bool(full.spikes.all())  # p = 1: every step


@pytest.mark.skipif(not sim.kernels.HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize(("model", "q"), INFER)
def test_a_membrane_floor_binds_alike_on_both_paths(model: str, q: QuantSpec) -> None:
    """With a floor 5 mV below rest: the kernels and the reference agree as in
    test_fast_inference_matches_reference, and no excitatory potential of either goes
    below the floor (on the Vmem grid: the lowest grid value at or above it), while
    without it the lowest potential is far lower (the floor binds)."""
    floor = -70.0
    cfg, qz, g, net, pix = _inference_case(model, q, 2, 3, vmem_floor_mv=5.0)
    c = sim.consts(cfg)
    trains = sim.poisson_trains(pix, c.steps, c.rate_scale, g)
    state = g.get_state()
    m_ref, m_fast = sim.QuantMeter(track=True), sim.QuantMeter(track=True)
    ref = sim.infer_reference(net, trains, cfg, qz, g, m_ref)
    g.set_state(state)
    fast = sim.infer_fast(net, trains, cfg, qz, g, m_fast)
    diff = (ref - fast).abs()
    assert ref.sum() > 100 and float((diff > 0).float().mean()) <= 0.01
    if qz.vmem is None and model == "tinysnn":  # FP32 tracks the range: the floor is its low end
        assert m_ref.lo == m_fast.lo == pytest.approx(floor)
        free = sim.QuantMeter(track=True)
        cfg0 = preset(model, 196, 50)
        g.set_state(state)
        sim.infer_fast(net, trains, cfg0, qz, g, free)
        assert free.lo < floor - 20
