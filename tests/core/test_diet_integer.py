"""The gradient-trained family's integer datapath (core/diet_integer.py) against an
exact-rational statement of the same step (fractions, no shifts), the counter-based
uniforms against the kernels' hash, Poisson input against its rate, and the integer
network against the float32 fixed-point forward it deploys (predictions that track)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from tinysnn_dse.core import diet, kernels
from tinysnn_dse.core import diet_integer as di
from tinysnn_dse.core.modes import RoundMode
from tinysnn_dse.core.quant import FixedPoint


def _net(g: torch.Generator, sizes: tuple[int, ...], fmts: diet.Formats, t: int,
         encoding: str = "direct") -> diet.DietNet:  # fmt: skip
    """A random network on ``fmts``' grids (weights, thresholds) with leaks on the
    16-bit leak grid, so that the rational statement below holds its values exactly."""
    cfg = diet.DietConfig(n_in=sizes[0], hidden=sizes[1:-1], n_out=sizes[-1], timesteps=t,
                          encoding=encoding)  # fmt: skip
    net = diet.init_net(cfg, g)
    w = []
    for x, f in zip(net.w, fmts.weight, strict=True):
        assert f is not None
        codes = torch.randint(f.lo_code, f.hi_code + 1, x.shape, generator=g)
        w.append(codes.to(torch.float64) / f.inv)
    theta = []
    for f in fmts.vth:
        assert f is not None
        theta.append(torch.tensor(float(torch.randint(1, max(2, f.hi_code // 8), (1,), generator=g))
                                  / f.inv, dtype=torch.float64))  # fmt: skip
    leak = [torch.tensor(float(torch.randint(0, 2**16 + 1, (1,), generator=g)) / 2**16,
                         dtype=torch.float64) for _ in cfg.hidden]  # fmt: skip
    return diet.DietNet(w, leak, theta, cfg)


def _round(a: Fraction, step: Fraction, rounding: RoundMode, u24: int) -> int:
    """The integer code of ``a`` on a grid of ``step``: floor, nearest (a tie up), or
    stochastic: up where the remainder's share of a step exceeds u24 / 2**24."""
    q = a / step
    fl = math.floor(q)
    frac = q - fl
    if rounding == RoundMode.TRUNCATE:
        return fl
    if rounding == RoundMode.NEAREST:
        return fl + (1 if frac >= Fraction(1, 2) else 0)
    return fl + (1 if frac > Fraction(u24, 2**24) else 0)


def _exact(net: diet.DietNet, fmts: diet.Formats, p: np.ndarray, key: int) -> list[list[int]]:
    """Every layer's membrane codes after the last step of one image (pixel codes ``p``)
    by the statement of docs/model.md in exact rationals."""
    cfg = net.cfg
    depth = len(cfg.hidden)
    w = [[[Fraction(float(v)) for v in row] for row in x.tolist()] for x in net.w]
    th = [Fraction(float(x)) for x in net.theta]
    lam = [Fraction(float(x)) for x in net.leak]
    u = [[Fraction(0)] * n for n in (*cfg.hidden, cfg.n_out)]
    s = [[0] * n for n in cfg.hidden]
    for t in range(cfg.timesteps):
        if cfg.encoding == diet.Encoding.DIRECT:
            x: list[Fraction] = [Fraction(int(v), 256) for v in p]
        else:
            x = [Fraction(int(int(kernels.hash_bits(np.uint64(key), np.uint64(4 * t),
                                                        np.uint64(i))) >> 40
                                  < int(v) * 65793)) for i, v in enumerate(p)]  # fmt: skip
        for k in range(depth + 1):
            f = fmts.vmem[k]
            assert f is not None
            step = Fraction(1, 2**f.frac_bits) if f.frac_bits >= 0 else Fraction(2**-f.frac_bits)
            new = []
            for j in range(len(u[k])):
                cur = sum((x[i] * w[k][i][j] for i in range(len(x))), Fraction(0))
                a = u[k][j] + cur if k == depth else lam[k] * u[k][j] + cur - s[k][j] * th[k]
                u24 = int(kernels.hash_bits(np.uint64(key), np.uint64(4 * t + 1 + k),
                                            np.uint64(j))) >> 40  # fmt: skip
                c = _round(a, step, fmts.rounding, u24)
                c = min(max(c, f.lo_code), f.hi_code)
                new.append(c * step)
            u[k] = new
            if k < depth:
                s[k] = [1 if v >= th[k] else 0 for v in u[k]]
                x = [Fraction(v) for v in s[k]]
    out = []
    for layer, f in zip(u, fmts.vmem, strict=True):
        assert f is not None
        out.append([int(v * 2**f.frac_bits) if f.frac_bits >= 0 else int(v / 2**-f.frac_bits)
                    for v in layer])  # fmt: skip
    return out


@pytest.mark.parametrize("rounding", list(RoundMode))
@pytest.mark.parametrize(
    ("sizes", "bits", "encoding"),
    [((5, 4, 3), (6, 8, 6), "direct"), ((4, 3, 3, 2), (4, 6, 5), "direct"),
     ((5, 4, 3), (8, 10, 8), "poisson"),
     # a 24-bit membrane: a leak one code off (2**-16) moves it by many steps
     ((5, 4, 3), (8, 24, 8), "direct"),
     # 20-bit weights: sums past 2**24, the float64 product (float32 below it)
     ((5, 4, 3), (20, 16, 8), "direct")],
)  # fmt: skip
def test_integer_step_equals_the_exact_rational_statement(
    rounding: RoundMode, sizes: tuple[int, ...], bits: tuple[int, int, int], encoding: str
) -> None:
    g = torch.Generator().manual_seed(7)
    depth = len(sizes) - 2
    bw, bv, bt = bits
    fmts = diet.Formats(
        weight=tuple(FixedPoint(bw, 0, True) for _ in range(depth + 1)),
        vmem=tuple(FixedPoint(bv, 2, True) for _ in range(depth)) + (FixedPoint(bv, 3, True),),
        vth=tuple(FixedPoint(bt, 1, False) for _ in range(depth)),
        rounding=rounding,
    )
    net = _net(g, sizes, fmts, t=3, encoding=encoding)
    assert di.why_not(net.cfg, fmts) is None
    d = di.design_of(net, fmts)
    p = torch.randint(0, 256, (6, sizes[0]), generator=g)
    keys = torch.randint(-(2**62), 2**62, (6,), generator=g)
    u, counts = di.run(d, p, keys)
    assert int(counts.sum()) > 0  # some spikes: the reset and the later layers take part
    for b in range(6):
        key = int(keys[b]) & (2**64 - 1)
        assert [x[b].tolist() for x in u] == _exact(net, fmts, p[b].numpy(), key), (rounding, b)


def test_uniforms_are_the_kernels_hash() -> None:
    keys = torch.tensor([0, 5, -7, 2**62], dtype=torch.int64)
    u = di.u24(keys, 9, 5)
    for b, key in enumerate(keys.tolist()):
        for j in range(5):
            want = int(kernels.hash_bits(np.uint64(key & (2**64 - 1)), np.uint64(9), np.uint64(j)))
            assert int(u[b, j]) == want >> 40


def test_poisson_input_fires_at_the_pixels_rate() -> None:
    """P / 255 within 4 standard errors over 20,000 draws, and pixel 0 never fires."""
    p = torch.tensor([0, 51, 128, 255])
    keys = torch.arange(20_000, dtype=torch.int64)
    spk = (di.u24(keys, 0, 4) < p * di.POISSON_SCALE).to(torch.float64).mean(dim=0)
    for rate, px in zip(spk.tolist(), p.tolist(), strict=True):
        want = px / 255
        assert abs(rate - want) <= 4 * math.sqrt(max(want * (1 - want), 1e-9) / 20_000) + 1e-4
    assert spk[0] == 0


def test_integer_network_tracks_the_float_fixed_point_forward() -> None:
    """A trained 64-32-10 network on digits at W8/V16/T16: the integer datapath (pixels
    P / 256, the leak on 16 bits) predicts as the float32 forward of the same formats on
    at least 97 % of the images."""
    from sklearn.datasets import load_digits

    dig = load_digits()
    x = torch.tensor(dig.data / 16.0, dtype=torch.float32)
    y = torch.tensor(dig.target)
    x = torch.round(x * 255) / 255  # on the pixel grid P / 255
    g = torch.Generator().manual_seed(0)
    cfg = diet.DietConfig(n_in=64, hidden=(32,), n_out=10, timesteps=4)
    net = diet.init_net(cfg, g)
    diet.train(net, x[:1200], y[:1200], diet.TrainConfig(epochs=15, lr=3e-3), g)
    r = diet.observe(net, x[:500])
    f = diet.formats_for(r, 8, 16, 16)
    dep, steps = diet.deployed(net, f, None)
    fl = diet.predict(dep, x[1200:], formats=steps)
    d = di.design_of(dep, f)
    out, _ = di.infer(d, di.pixels(x[1200:]))
    agree = float((out.argmax(dim=1) == fl).to(torch.float64).mean())
    assert agree >= 0.97
    acc_int = float((out.argmax(dim=1) == y[1200:]).to(torch.float64).mean())
    acc_fl = float((fl == y[1200:]).to(torch.float64).mean())
    assert acc_int > 0.8 and abs(acc_int - acc_fl) < 0.02


def test_why_not_names_fp32_parts() -> None:
    cfg = diet.DietConfig(n_in=4, hidden=(3,), n_out=2)
    f = diet.formats_for(diet.Ranges((1.0, 1.0), (4.0, 4.0), (1.0,)), 8, None, 8)
    assert di.why_not(cfg, f) == "it has FP32 parts"
    assert di.why_not(cfg, None) == "it has FP32 parts"


def test_layer_sums_are_exact_in_every_arithmetic() -> None:
    """Where float32 would round (sums past 2**24), the sum takes float64, and past 2**53
    int64: equal to the int64 product in every case."""
    g = torch.Generator().manual_seed(3)
    for w_bits, n, x_hi in ((8, 784, 256), (20, 784, 256), (31, 4000, 2**20)):
        w = torch.randint(-(2 ** (w_bits - 1)), 2 ** (w_bits - 1), (n, 7), generator=g)
        x = torch.randint(0, x_hi, (5, n), generator=g)  # the last: past 2**53, int64
        assert torch.equal(di.layer_sum(x, w), x @ w), w_bits
        spikes = torch.rand(5, n, generator=g) < 0.5
        assert torch.equal(di.layer_sum(spikes, w), spikes.to(torch.int64) @ w), w_bits
    # the bound: a float32 product of these would be off
    w = torch.full((784, 1), 2**19 + 1)
    x = torch.full((1, 784), 255)
    assert int(di.layer_sum(x, w)) == 784 * 255 * (2**19 + 1)
    assert int((x.float() @ w.float()).to(torch.int64)) != 784 * 255 * (2**19 + 1)
