"""The gradient-trained family (core/diet.py) against hand computation: LIF steps with the
soft reset and a leak, the surrogate's backward against its hand derivative, the
gradient of a one-step network by hand, and learning on the embedded digits set."""

from __future__ import annotations

import pytest
import torch

from tinysnn_dse.core import diet
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
    """64-100-10 at T = 4 on scikit-learn's digits, 3 epochs: well above chance on the
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
        losses = diet.train(net, xtr, ytr, diet.TrainConfig(epochs=3, batch_size=50, lr=3e-3), g)
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
