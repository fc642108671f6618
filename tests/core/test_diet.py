"""The gradient-trained family (core/diet.py) against hand computation: LIF steps with the
soft reset and a leak, the surrogate's backward against its hand derivative, the
gradient of a one-step network by hand, and learning on the embedded digits set."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from tinysnn_dse.core import diet
from tinysnn_dse.core.quant import FixedPoint
from tinysnn_dse.errors import ConfigError


def _tiny(leak: float, w_in: float, w_out: float, steps: int, **kw: object) -> diet.DietNet:
    cfg = diet.DietConfig(n_in=1, hidden=(1,), n_out=1, timesteps=steps, leak=leak, **kw)  # type: ignore[arg-type]
    net = diet.init_net(cfg, torch.Generator().manual_seed(0))
    with torch.no_grad():
        net.w[0].fill_(w_in)
        net.w[1].fill_(w_out)
    return net


def test_lif_steps_with_soft_reset_by_hand() -> None:
    """lambda 0.5, theta 1, a constant current 0.6 (direct input 1, weight 0.6):
    u = 0.6, 0.9, 1.05 (spike), 0.525 + 0.6 - 1 = 0.125, 0.6625, 0.93125, 1.065625 (spike),
    0.5328125 + 0.6 - 1 = 0.1328125: two spikes in 8 steps; the output integrates 2 x 3."""
    net = _tiny(0.5, 0.6, 3.0, 8)
    logits, counts = diet.forward(net, torch.ones(1, 1, dtype=torch.float64).float())
    assert counts[0].item() == 2.0
    assert logits.item() == pytest.approx(6.0)
    # the membrane itself, step by step, through the same call at 1..8 steps
    want_spikes = [0, 0, 1, 1, 1, 1, 2, 2]
    for t, n in enumerate(want_spikes, 1):
        n_t = diet.forward(_tiny(0.5, 0.6, 3.0, t), torch.ones(1, 1))[1][0].item()
        assert n_t == n, t


def test_if_neurons_keep_the_remainder() -> None:
    """lambda 1 (IF): a current 0.4 against theta 1 fires at steps 3, 5 and 8 of 8
    (u = 0.4, 0.8, 1.2 | 0.6, 1.0 | 0.4, 0.8, 1.2): 3 spikes, the rate 0.4 to within
    the remainder."""
    net = _tiny(1.0, 0.4, 1.0, 8)
    _, counts = diet.forward(net, torch.ones(1, 1, dtype=torch.float64).float())
    assert counts[0].item() == 3.0


def test_surrogate_backward_is_the_hand_derivative() -> None:
    z = torch.tensor([-1.5, -1.0, -0.25, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    s = diet.spike(z, 0.3)
    assert s.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    s.sum().backward()
    want = [0.3 * max(0.0, 1.0 - abs(v)) for v in [-1.5, -1.0, -0.25, 0.0, 0.5, 1.0, 2.0]]
    assert z.grad is not None
    assert z.grad.tolist() == pytest.approx(want)


def test_fast_sigmoid_surrogate_is_superspikes_derivative() -> None:
    """gamma / (1 + 10 |z|)**2 (Zenke & Ganguli 2018): 0.3 at the threshold, 0.3 / 36 at
    |z| = 0.5, by hand; the forward pass is the same step."""
    z = torch.tensor([-0.5, -0.1, 0.0, 0.5, 2.0], requires_grad=True)
    s = diet.spike(z, 0.3, diet.Surrogate.FAST_SIGMOID)
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    s.sum().backward()
    assert z.grad is not None
    assert z.grad.tolist() == pytest.approx([0.3 / 36, 0.3 / 4, 0.3, 0.3 / 36, 0.3 / 441])
    m = diet.model_for(64, 8, 10, None, {"surrogate": "fast-sigmoid"})
    assert m.net.surrogate == diet.Surrogate.FAST_SIGMOID
    with pytest.raises(ConfigError, match="unknown surrogate 'tanh'"):
        diet.model_for(64, 8, 10, None, {"surrogate": "tanh"})


def test_one_step_gradient_by_hand() -> None:
    """One step, u = w x, out = w_o * H(u / theta - 1): d out / d w = w_o * gamma *
    max(0, 1 - |u/theta - 1|) * x / theta and d out / d theta = -w_o * gamma * (...) * u /
    theta**2, with u = 0.9, theta 1.2, x 0.5, w_o 2, gamma 0.3."""
    net = _tiny(1.0, 1.8, 2.0, 1, threshold=1.2)
    out, _ = diet.forward(net, torch.full((1, 1), 0.5))
    out.sum().backward()
    u, th, x, wo, g = 0.9, 1.2, 0.5, 2.0, 0.3
    sg = g * max(0.0, 1.0 - abs(u / th - 1.0))
    assert net.w[0].grad.item() == pytest.approx(wo * sg * x / th, rel=1e-6)  # type: ignore[union-attr]
    assert net.theta[0].grad.item() == pytest.approx(-wo * sg * u / th**2, rel=1e-6)  # type: ignore[union-attr]
    assert net.w[1].grad.item() == 0.0  # no spike: the output's input was 0


def test_learned_leak_gets_the_chain_rule() -> None:
    """Two steps, no spike at step 1: u2 = lambda * u1 + c; d u2 / d lambda = u1, so
    d out / d lambda = w_o * gamma * max(0, 1 - |u2/theta - 1|) / theta * u1."""
    net = _tiny(0.8, 0.6, 1.0, 2)
    out, counts = diet.forward(net, torch.ones(1, 1))
    assert counts[0].item() == 1.0  # u2 = 1.08 fires
    out.sum().backward()
    u1, u2, g = 0.6, 0.8 * 0.6 + 0.6, 0.3
    want = g * max(0.0, 1.0 - abs(u2 - 1.0)) * u1
    assert net.leak[0].grad.item() == pytest.approx(want, rel=1e-6)  # type: ignore[union-attr]


def test_clamp_holds_leak_and_threshold_in_range() -> None:
    net = _tiny(0.5, 0.1, 1.0, 1)
    with torch.no_grad():
        net.leak[0].fill_(1.7)
        net.theta[0].fill_(-2.0)
    diet.clamp_(net)
    assert net.leak[0].item() == 1.0 and net.theta[0].item() == pytest.approx(1e-3)


@pytest.mark.parametrize("encoding", ["direct", "poisson"])
def test_learns_digits_and_the_seed_fixes_the_result(encoding: str) -> None:
    """64-100-10 at T = 4 on scikit-learn's digits, 5 epochs: well above chance on the
    test split, and two runs with one seed end with the same weights."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.int64)
    xtr, ytr, xte, yte = x[:1400], y[:1400], x[1400:], y[1400:]
    cfg = diet.DietConfig(n_in=64, hidden=(100,), n_out=10, timesteps=4, encoding=encoding)  # type: ignore[arg-type]
    nets = []
    for _ in range(2):
        g = torch.Generator().manual_seed(3)
        net = diet.init_net(cfg, g)
        losses = diet.train(net, xtr, ytr, diet.TrainConfig(epochs=5, batch_size=50, lr=3e-3), g)
        nets.append(net)
    assert losses[-1] < losses[0]
    acc = float(
        (diet.predict(nets[0], xte, generator=torch.Generator().manual_seed(9)) == yte)
        .float()
        .mean()
    )
    assert acc > 0.85, acc
    assert all(torch.equal(a, b) for a, b in zip(nets[0].w, nets[1].w, strict=True))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"timesteps": 0}, "timesteps must be in 1..256"),
        ({"timesteps": 257}, "timesteps must be in 1..256"),
        ({"hidden": ()}, "depth must be one of"),
        ({"hidden": (10, 10, 10)}, "depth must be one of"),
        ({"encoding": "rate"}, "unknown encoding 'rate'"),
        ({"trainable": "all"}, "unknown trainable 'all'"),
        ({"leak": 1.5}, r"leak must be in \[0, 1\]"),
        ({"threshold": 0.0}, "threshold must be positive"),
    ],
)
def test_bad_configs_are_one_line_errors(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        diet.DietConfig(**kw)


def _round_half_up(x: Fraction, eps: Fraction, lo: int, hi: int) -> Fraction:
    code = math.floor(x / eps + Fraction(1, 2))
    return min(max(code, lo), hi) * eps


def test_quantized_forward_is_the_exact_fixed_point_operation() -> None:
    """A 2-3-2 network at T = 6 with every quantity on a grid, nearest rounding, against a
    scalar reference: numpy float32 for the float operations the step performs (the leak's
    product and sums), exact fractions for every rounding onto a grid and its clamp."""
    cfg = diet.DietConfig(n_in=2, hidden=(3,), n_out=2, timesteps=6, leak=0.7, threshold=1.0)
    net = diet.init_net(cfg, torch.Generator().manual_seed(0))
    w1 = [[0.61, -0.2, 0.93], [0.35, 0.77, -0.41]]
    w2 = [[0.5, -0.3], [-0.27, 0.8], [0.9, 0.15]]
    with torch.no_grad():
        net.w[0].copy_(torch.tensor(w1))
        net.w[1].copy_(torch.tensor(w2))
    r = diet.Ranges(w=(0.93, 0.9), vmem=(3.0, 3.0), vth=(1.0,))
    f = diet.formats_for(r, weight_bits=6, vmem_bits=8, vth_bits=6, rounding="nearest")
    assert (f.weight[0].int_bits, f.vmem[0].int_bits, f.vth[0].int_bits) == (0, 2, 1)
    x = [0.75, 0.5]
    logits, counts = diet.forward(net, torch.tensor([x]), formats=f)

    def grid(v: float, fmt: FixedPoint) -> Fraction:
        return _round_half_up(Fraction(float(v)), Fraction(fmt.eps), fmt.lo_code, fmt.hi_code)

    f32 = np.float32
    wq1 = [[grid(w, f.weight[0]) for w in row] for row in w1]
    wq2 = [[grid(w, f.weight[1]) for w in row] for row in w2]
    cur = [f32(sum(Fraction(x[i]) * wq1[i][j] for i in range(2))) for j in range(3)]  # exact
    lam = f32(0.7)
    u, s, cnt, out = [f32(0)] * 3, [0] * 3, [0] * 3, [f32(0)] * 2
    for _ in range(6):
        for j in range(3):
            a = f32(f32(u[j] * lam) + cur[j]) - f32(s[j])  # theta 1
            u[j] = f32(grid(a, f.vmem[0]))
            s[j] = 1 if u[j] >= 1.0 else 0
            cnt[j] += s[j]
        for k in range(2):
            add = sum(s[j] * wq2[j][k] for j in range(3))
            out[k] = f32(grid(f32(out[k] + f32(add)), f.vmem[1]))
    assert counts[0][0].tolist() == cnt
    assert sum(cnt) > 2  # the case fires
    assert logits[0].tolist() == [float(v) for v in out]


def test_formats_cover_the_observed_ranges() -> None:
    assert [diet.int_bits_covering(m) for m in (0.3, 0.5, 0.9, 1.0, 3.0, 100.0)] == [
        -1,
        0,
        0,
        1,
        2,
        7,
    ]
    r = diet.Ranges(w=(0.3, 1.7), vmem=(5.2, 40.0), vth=(0.6,))
    f = diet.formats_for(r, 8, 16, 8)
    assert [w.hi for w in f.weight] == [0.5 - 2**-8, 2.0 - 2**-6]  # type: ignore[union-attr]
    assert f.vth[0] is not None and not f.vth[0].signed and f.vth[0].hi >= 0.6
    assert diet.formats_for(r, None, None, None).weight == (None, None)


def test_qat_gradients_pass_straight_through() -> None:
    """The quantized forward's gradient equals the one of the same forward with the
    rounding taken as the identity (here: the one-step network of
    test_one_step_gradient_by_hand, on a grid where 1.8 and 1.2 are exact)."""
    net = _tiny(1.0, 1.8, 2.0, 1, threshold=1.2)
    f = diet.formats_for(diet.Ranges(w=(1.8, 2.0), vmem=(2.0, 2.0), vth=(1.2,)), 12, 12, 12)
    out, _ = diet.forward(net, torch.full((1, 1), 0.5), formats=f)
    out.sum().backward()
    u, th, x, wo, g = 0.9, 1.2, 0.5, 2.0, 0.3
    sg = g * max(0.0, 1.0 - abs(u / th - 1.0))
    assert net.w[0].grad.item() == pytest.approx(wo * sg * x / th, rel=1e-3)  # type: ignore[union-attr]


def test_observe_finds_the_peaks() -> None:
    net = _tiny(0.5, 0.6, 3.0, 8)
    r = diet.observe(net, torch.ones(2, 1))
    assert r.w == (pytest.approx(0.6), 3.0) and r.vth == (1.0,)
    assert r.vmem[0] == pytest.approx(1.065625)  # the largest u of the hand trajectory
    assert r.vmem[1] == pytest.approx(6.0)  # the output's final membrane


def test_memory_by_hand() -> None:
    """784-400-10: FP32 (784*400 + 400*10) * 32 weights + (400 + 10) * 32 membranes + 32
    threshold + 32 leak; W8/V16/T16: 8 per weight, 16 per membrane, 16 + 16 (leak)."""
    cfg = diet.DietConfig()
    n_w, n_v = 784 * 400 + 400 * 10, 400 + 10
    assert diet.memory_bits(cfg) == n_w * 32 + n_v * 32 + 32 + 32
    r = diet.Ranges(w=(0.3, 0.4), vmem=(30.0, 25.0), vth=(0.5,))
    f = diet.formats_for(r, 8, 16, 16)
    assert diet.memory_bits(cfg, f) == n_w * 8 + n_v * 16 + 16 + 16
    two = diet.DietConfig(hidden=(400, 400))
    assert diet.memory_bits(two) == (784 * 400 + 400 * 400 + 4000 + 810) * 32 + 2 * 64


def test_op_counts_by_hand() -> None:
    """The 1-1-1 network of test_lif_steps_with_soft_reset_by_hand (2 spikes in 8 steps):
    one MAC (one non-zero pixel, once), 2 ACs into the one output, dense ops 1 + 8,
    neuron updates 2 * 8, sparsity 1 - 2/8. Poisson: ACs of the input spikes' expectation."""
    net = _tiny(0.5, 0.6, 3.0, 8)
    ops = diet.op_counts(net, torch.ones(3, 1))
    assert (ops.effective_macs, ops.effective_acs, ops.dense_ops) == (1.0, 2.0, 9.0)
    assert ops.neuron_updates == 16.0 and ops.spikes == (2.0,)
    assert ops.activation_sparsity == pytest.approx(0.75)
    zero = diet.op_counts(net, torch.zeros(2, 1))
    assert zero.effective_macs == 0.0 and zero.spikes == (0.0,)
    pnet = _tiny(0.5, 0.6, 3.0, 8, encoding="poisson")
    p = diet.op_counts(pnet, torch.full((4, 1), 0.5), generator=torch.Generator().manual_seed(1))
    assert p.effective_macs == 0.0 and p.dense_ops == 16.0
    assert p.effective_acs == pytest.approx(0.5 * 8 * 1 + p.spikes[0] * 1)


def test_stdb_surrogate_against_its_formula(monkeypatch) -> None:
    """STDB (Rathi et al. 2020): gamma * exp(-beta * dt_spike). The derivative at a few
    spike histories by hand, and the histories a forward pass keeps: one IF neuron with
    input 0.6 a step and threshold 1 fires at steps 1, 3 and 4 (u: 0.6, 1.2, 0.8, 1.4,
    1.0), so the steps since its last spike are 1, 2, 1, 2, 1 (before its first spike,
    as if it had fired at step -1)."""
    z = torch.tensor([-0.4, 0.2, 3.0, -2.0], requires_grad=True)
    since = torch.tensor([0.0, 1.0, 5.0, 100.0])
    diet.spike(z, 0.3, diet.Surrogate.STDB, since, 0.01).sum().backward()
    assert z.grad is not None
    assert z.grad.tolist() == pytest.approx([0.3 * math.exp(-0.01 * d) for d in (0, 1, 5, 100)])
    seen: list[list[float]] = []
    real = diet.spike

    def spy(z, gamma, kind=diet.Surrogate.LINEAR, since=None, beta=0.01):  # type: ignore[no-untyped-def]
        seen.append(since.flatten().tolist())
        return real(z, gamma, kind, since, beta)

    monkeypatch.setattr(diet, "spike", spy)
    cfg = diet.DietConfig(n_in=1, hidden=(1,), n_out=1, timesteps=5, surrogate="stdb")
    net = diet.DietNet([torch.tensor([[0.6]]), torch.tensor([[1.0]])], [torch.tensor(1.0)],
                       [torch.tensor(1.0)], cfg)  # fmt: skip
    _out, counts = diet.forward(net, torch.tensor([[1.0]]))
    assert counts[0].item() == 3
    assert seen == [[1.0], [2.0], [1.0], [2.0], [1.0]]
