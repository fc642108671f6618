"""The integer datapath of fully quantized inference (core/integer.py, docs/model.md
"Integer inference"), held to independent expectations: a step worked by hand, an exact
rational (``fractions``) statement of the same physics run step by step, and the FP32
trajectory it must track; the Numba kernel and the torch reference to it and to each
other."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
import torch

from tinysnn_dse.core import integer, kernels, sim
from tinysnn_dse.core.modes import RoundMode, Topology
from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.core.quant import Quantizers

needs_numba = pytest.mark.skipif(not kernels.HAVE_NUMBA, reason="numba not installed")


def test_code_nearest_is_exact() -> None:
    rng = random.Random(0)
    for _ in range(2000):
        x = rng.uniform(-2000, 2000) * rng.choice([1, 1e-3, 1e-6])
        f = rng.randint(-6, 40)
        y = Fraction(x) * Fraction(2) ** f
        assert integer.code_nearest(x, f) == math.floor(y + Fraction(1, 2))
    assert integer.code_nearest(-65.0, 8) == -16640
    assert integer.code_nearest(-65.0, -4) == -4  # -65 / 16 = -4.06 -> -4 (-64 mV)
    assert integer.code_nearest(17.5, 0) == 18  # a tie rounds up
    assert integer.code_nearest(-17.5, 0) == -17
    assert integer.code_nearest(math.exp(-0.01), 16) == 64884  # 64,883.8


def test_ceil_shift() -> None:
    for x in range(-40, 41):
        for s in range(-5, 6):
            assert integer.ceil_shift(x, s) == math.ceil(Fraction(x) * Fraction(2) ** s)


def _design(model: str, q: QuantSpec, n_in: int = 12, n_exc: int = 5, **kw: object):
    cfg = preset(model, n_in, n_exc, **kw)  # type: ignore[arg-type]
    qz = Quantizers.from_spec(q)
    d = integer.design_of(cfg, qz)
    assert d is not None
    return cfg, qz, d


def test_constants_by_hand() -> None:
    """sQ7.8 Vmem (16 bits, 7 integer bits), Q1.7 weights, LIF tau 100 ms, dt 1 ms:
    REST -65 * 256, RESET -60 * 256, D = round(exp(-0.01) * 2**16) = 64,884, lateral
    inhibition 150 * 256; the accumulator keeps 8 + 16 = 24 fractional bits."""
    q = QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16,
                  vmem_int_bits=7, vth_int_bits=7)  # fmt: skip
    _, _, d = _design("tinysnn", q)
    assert (d.exc.rest, d.exc.reset, d.exc.decay, d.exc.ref_steps) == (-16640, -15360, 64884, 5)
    assert d.w_rec == 38400
    assert (d.acc_frac, d.k, d.sh_w, d.sh_leak) == (24, 16, 17, 0)
    # thresholds: Vth sQ7.8 codes to Vmem units (the same grid here) and to a coarser one
    assert d.vmem_thresholds(np.array([-13312])).tolist() == [-13312]


def test_one_step_by_hand() -> None:
    """From the reset level -60 mV with one input spike of weight 0.5 (code 64 at Q1.7):
    v = -65 + (5 * 64884 / 65536) + 0.5 = -59.55030 mV, i.e. -15244.734375 steps of
    1/256: A = 1280 * 64884 + (-16640 << 16) + (64 << 17) = -999,078,912; nearest:
    (A + 2**15) >> 16 = -15245; truncation: A >> 16 = -15245 (the floor); the remainder
    is 0.265625 of a step (17,408 / 2**16), and with the uniform below / at it stochastic
    rounding gives -15244 / -15245."""
    a = 1280 * 64884 + (-16640 << 16) + (64 << 17)
    assert a == -999_078_912
    exact = Fraction(-65) + Fraction(5 * 64884, 65536) + Fraction(1, 2)
    assert Fraction(a, 2**16) * Fraction(1, 256) == exact
    at = torch.tensor([a])
    assert integer.round_shift(at, 16, RoundMode.NEAREST, None).item() == -15245
    assert integer.round_shift(at, 16, RoundMode.TRUNCATE, None).item() == -15245
    rem = a - ((a >> 16) << 16)
    assert rem == 17408
    below, above = (rem << 8) - 1, rem << 8
    assert integer.round_shift(at, 16, RoundMode.STOCHASTIC, torch.tensor([below])).item() == -15244
    assert integer.round_shift(at, 16, RoundMode.STOCHASTIC, torch.tensor([above])).item() == -15245
    # the same step through the torch reference: one neuron, one input, one step, from
    # rest (-65 mV): -65 + 0 + 0.5 -> -64.5 mV = -16512
    q = QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16,
                  vmem_int_bits=7, vth_int_bits=7)  # fmt: skip
    _, _, d = _design("tinysnn", q, n_in=1, n_exc=1)
    spikes = torch.ones(1, 1, 1, dtype=torch.bool)
    thr = np.array([0], dtype=np.int64)
    counts, _, v = integer.infer_reference(torch.tensor([[64]]), thr, spikes, d, None)
    assert v.tolist() == [[-16512]] and counts.tolist() == [[0.0]]


# ------------------------------------------------------------ exact rational reference


def _round_frac(y: Fraction, rounding: RoundMode, u24: int) -> int:
    fl = math.floor(y)
    if rounding == RoundMode.NEAREST:
        return math.floor(y + Fraction(1, 2))
    if rounding == RoundMode.STOCHASTIC:
        return fl + (1 if (y - fl) > Fraction(u24, 2**24) else 0)
    return fl


def fraction_reference(
    w: np.ndarray, vth: np.ndarray, spikes: np.ndarray, d: integer.IntDesign, keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The datapath stated as physics in exact rationals (mV), step by step, image by
    image: v' = rest + (v - rest) * D / 2**L + [not refractory] (sum of the spiking
    inputs' weights + recurrent input), then rounded onto the Vmem grid and clamped;
    spike where v >= the threshold, compared as rationals; an excitatory potential below
    the membrane floor (a Vmem code) is raised to it. No shifts, no accumulator."""
    ev, et = Fraction(1, 2) ** d.vmem.frac_bits, Fraction(1, 2) ** d.vth.frac_bits
    ew = Fraction(1, 2) ** d.weight.frac_bits
    lk = Fraction(1, 2**integer.LEAK_BITS)
    lo, hi, rounding = d.vmem.lo_code, d.vmem.hi_code, d.rounding
    b_n, t_n, _ = spikes.shape
    n = w.shape[1]
    inhibitory = d.topology == Topology.INHIBITORY
    out = np.zeros((b_n, n), dtype=np.int64)
    v_end = np.zeros((b_n, n), dtype=np.int64)

    def step(vc: list[int], refr: list[int], inp: list[Fraction], lay: integer.IntLayer,
             t: int, row: int, key: int, thr: list[Fraction]) -> list[int]:  # fmt: skip
        s = []
        floor = d.floor if row == 0 else lo
        for j in range(n):
            x = lay.rest * ev + (vc[j] - lay.rest) * ev * lay.decay * lk
            if refr[j] <= 0:
                x += inp[j]
            u24 = int(kernels.hash_bits(key, t, row * n + j) >> np.uint64(40))
            c = max(min(max(_round_frac(x / ev, rounding, u24), lo), hi), floor)
            fire = c * ev >= thr[j]
            vc[j] = lay.reset if fire else c
            refr[j] = lay.ref_steps if fire else refr[j] - 1
            s.append(1 if fire else 0)
        return s

    for b in range(b_n):
        key = int(keys[b]) if rounding == RoundMode.STOCHASTIC else 0
        v, refr = [d.exc.rest] * n, [0] * n
        vi, irefr = [d.inh.rest] * n, [0] * n
        rec = [Fraction(0)] * n
        s_prev = [0] * n
        thr = [int(x) * et for x in vth]
        ithr = [d.inh_thr * et] * n
        for t in range(t_n):
            inp = [sum((int(w[i, j]) * ew for i in range(w.shape[0]) if spikes[b, t, i]),
                       Fraction(0)) + rec[j] for j in range(n)]  # fmt: skip
            s = step(v, refr, inp, d.exc, t, 0, key, thr)
            if inhibitory:
                si = step(vi, irefr, [s_prev[j] * d.w_exc_inh * ev for j in range(n)],
                          d.inh, t, 1, key, ithr)  # fmt: skip
                rec = [-(sum(si) - si[j]) * d.w_rec * ev for j in range(n)]
                s_prev = s
            else:
                rec = [-(sum(s) - s[j]) * d.w_rec * ev for j in range(n)]
            for j in range(n):
                out[b, j] += s[j]
        v_end[b] = v
    return out, v_end


CASES = [  # fmt: skip
    ("tinysnn", QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16)),
    ("baseline", QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16)),
    ("tinysnn", QuantSpec(rounding="truncate", weight_bits=6, vmem_bits=8, vth_bits=8)),
    ("baseline", QuantSpec(rounding="truncate", weight_bits=4, vmem_bits=10, vth_bits=8)),
    ("tinysnn", QuantSpec(rounding="stochastic", weight_bits=8, vmem_bits=8, vth_bits=8)),
    ("baseline", QuantSpec(rounding="stochastic", weight_bits=8, vmem_bits=12, vth_bits=10)),
    # a 4 mV Vmem step (negative fractional bits) under 24-bit weights: F = fw > fv + L
    (
        "tinysnn",
        QuantSpec(
            rounding="nearest",
            weight_bits=24,
            vmem_bits=8,
            vth_bits=6,
            vmem_int_bits=9,
            vth_int_bits=8,
        ),
    ),  # fmt: skip
    (
        "baseline",
        QuantSpec(
            rounding="stochastic",
            weight_bits=20,
            vmem_bits=8,
            vth_bits=6,
            vmem_int_bits=11,
            vth_int_bits=8,
        ),
    ),  # fmt: skip
    # accumulators over 2**52: the kernel holds its state in int64, not float64
    ("tinysnn", QuantSpec(rounding="stochastic", weight_bits=16, vmem_bits=32, vth_bits=24)),
    (
        "baseline",
        QuantSpec(rounding="nearest", weight_bits=32, vmem_bits=32, vth_bits=32, vmem_int_bits=8),
    ),  # fmt: skip
]


def _net_and_spikes(model: str, q: QuantSpec, seed: int, n_in: int = 12, n_exc: int = 5,
                    steps: int = 60, floor: float | None = None):  # fmt: skip
    """A small network with thresholds spread so that neurons fire at different rates,
    dense input (so that steps leak, integrate, fire and inhibit), quantized."""
    # weaker inhibition (20 mV) and strong weights, so that every neuron fires often
    kw = {"inh.w_lateral": 20.0, "inh.w_inh_exc": 10.0}
    if floor is not None:
        kw["vmem_floor_mv"] = -65.0 - floor  # below rest
    cfg, qz, d = _design(model, q, n_in, n_exc, **kw)
    g = torch.Generator().manual_seed(seed)
    net = sim.Net(torch.rand(n_in, n_exc, generator=g), torch.rand(n_exc, generator=g) * 6)
    net = sim.quantize_net(net, cfg, qz, g)
    spikes = torch.rand(3, steps, n_in, generator=g) < 0.3
    return cfg, qz, d, net, spikes


def _reference_and_exact(cfg, qz, d, net, spikes):  # type: ignore[no-untyped-def]
    """The torch reference's (counts, final potentials) and the exact-rational statement's,
    on the same codes and keys; then the codes and keys themselves."""
    wc = integer.weight_codes(net.w, d)
    tc = integer.threshold_codes(net.theta, cfg, qz)
    keys = integer.image_keys(12345, spikes.shape[0])
    counts, _, v = integer.infer_reference(torch.from_numpy(wc), d.vmem_thresholds(tc), spikes,
                                          d, keys)  # fmt: skip
    exp_counts, exp_v = fraction_reference(wc, tc, spikes.numpy(), d, keys)
    return counts, v, exp_counts, exp_v, (wc, tc, keys)


@pytest.mark.parametrize(("model", "q"), CASES)
def test_reference_equals_exact_rational_physics(model: str, q: QuantSpec) -> None:
    cfg, qz, d, net, spikes = _net_and_spikes(model, q, 1)
    counts, v, exp_counts, exp_v, (wc, tc, keys) = _reference_and_exact(cfg, qz, d, net, spikes)
    assert counts.sum() > 10  # the case exercises firing and inhibition
    assert counts.to(torch.int64).tolist() == exp_counts.tolist()
    assert v.tolist() == exp_v.tolist()


@needs_numba
@pytest.mark.parametrize("floor", [None, -68.0])
@pytest.mark.parametrize(("model", "q"), CASES)
def test_kernel_equals_reference_bit_for_bit(model: str, q: QuantSpec, floor: float | None) -> None:
    """The Numba kernel (what ``infer`` runs on the CPU; its state in float64 where exact,
    else int64) and the torch reference (CUDA's and the tests'), same trains and keys:
    identical counts, and identical clipped roundings, on a 196 x 50 network and 40
    images."""
    cfg, qz, d, net, _ = _net_and_spikes(model, q, 2, 196, 50, floor=floor)
    g = torch.Generator().manual_seed(2)
    pix = torch.rand(40, 196, generator=torch.Generator().manual_seed(3)) ** 2
    c = sim.consts(cfg)
    trains = sim.skip_trains(pix, c.steps, c.rate_scale, g)
    state = g.get_state()
    m_ref, m_fast = sim.QuantMeter(), sim.QuantMeter()
    ref = sim.infer_reference(net, trains, cfg, qz, g, m_ref)
    g.set_state(state)
    fast = sim.infer_fast(net, trains, cfg, qz, g, m_fast)
    assert ref.sum() > 100
    assert torch.equal(ref, fast)
    assert (m_ref.saturated, m_ref.roundings) == (m_fast.saturated, m_fast.roundings)


@pytest.mark.parametrize("rounding", ["nearest", "truncate", "stochastic"])
def test_potential_tracks_exact_trajectory(rounding: str) -> None:
    """No firing, no recurrence: the integer potential against the exact (float64)
    leaky integration ``v <- rest + (v - rest) exp(-1/100) + I`` of the same inputs.
    Each step adds a rounding error of at most half a step (nearest; a whole step for
    truncation and stochastic rounding) and the leak factor's own error (|D / 2**16 -
    exp(-0.01)| < 2**-17 of |v - rest|); the leak shrinks earlier errors by exp(-0.01)
    a step, so the deviation stays below ``(e + 2**-17 max|v - rest|) / (1 -
    exp(-0.01))`` at every length, and the mean deviation over the neurons (the rounding
    errors of nearest and stochastic rounding are unbiased) far below that."""
    q = QuantSpec(rounding=rounding, weight_bits=8, vmem_bits=16, vth_bits=16,
                  vmem_int_bits=11, vth_int_bits=11)  # fmt: skip
    n_in, n = 30, 40
    kw = {"inh.w_lateral": 0.0}
    cfg, qz, d = _design("tinysnn", q, n_in, n, **kw)
    g = torch.Generator().manual_seed(7)
    w = sim.quantize_net(sim.Net(torch.rand(n_in, n, generator=g) * 0.3, torch.zeros(n)),
                         cfg, qz, g).w  # fmt: skip
    wc = torch.from_numpy(integer.weight_codes(w, d))
    thr = np.full(n, d.vmem.hi_code + 1, dtype=np.int64)  # never fires
    spikes = torch.rand(1, 250, n_in, generator=g) < 0.2
    decay = math.exp(-0.01)
    eps = d.vmem.eps
    step_err = eps / 2 if rounding == "nearest" else eps
    v = np.full(n, -65.0)
    worst = 0.0
    for t in range(1, 251):
        v = -65.0 + (v + 65.0) * decay + spikes[0, t - 1].double().numpy() @ w.double().numpy()
        if t % 25:
            continue
        keys = integer.image_keys(99, 1)
        _, _, vi = integer.infer_reference(wc, thr, spikes[:, :t], d, keys)
        err = vi[0].double().numpy() * eps - v
        bound = (step_err + 2**-17 * float(np.abs(v + 65).max() + 1)) / (1 - decay)
        assert float(np.abs(err).max()) <= bound, (t, float(np.abs(err).max()), bound)
        worst = max(worst, float(np.abs(err).max()))
        if rounding != "truncate":
            assert abs(float(err.mean())) <= 0.25 * bound
    assert worst > 0  # the grid is coarse enough to matter


@needs_numba
@pytest.mark.parametrize("model", ["tinysnn", "baseline"])
def test_counts_equal_float_emulation(model: str) -> None:
    """The same quantized design formulated the other way: float32 arithmetic with Vmem
    rounded after every step (``simulate_reference``, what inference ran before the
    integer datapath, and what ITQ training still runs). The two differ only where
    float32's rounding of the leak product and of the sum, or the leak factor's 2**-17,
    moves a value across a rounding boundary: at most 1 % of (image, neuron) counts
    differ, and the totals within 1 %."""
    q = QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16,
                  vmem_int_bits=11, vth_int_bits=11)  # fmt: skip
    cfg, qz, _ = _design(model, q, 196, 50)
    g = torch.Generator().manual_seed(4)
    net = sim.init_net(cfg, g)
    net = sim.quantize_net(sim.Net(net.w, torch.rand(50, generator=g) * 3), cfg, qz, g)
    pix = torch.rand(60, 196, generator=torch.Generator().manual_seed(5)) ** 2
    c = sim.consts(cfg)
    trains = sim.skip_trains(pix, c.steps, c.rate_scale, g)
    qi = sim.infer_fast(net, trains, cfg, qz, g)
    fl = sim.simulate_reference(net, trains.dense(), cfg, qz, g, learn=False)[1]
    assert fl.sum() > 500
    diff = (qi - fl).abs()
    assert float((diff > 0).float().mean()) <= 0.01
    assert abs(float(qi.sum() - fl.sum())) <= 0.01 * float(fl.sum())


def test_why_not() -> None:
    cfg = preset("tinysnn", 784, 400)
    assert "weights in FP32" in str(
        integer.why_not(cfg, Quantizers.from_spec(QuantSpec(vmem_bits=16, vth_bits=16)))
    )
    assert "Vmem and Vth" in str(
        integer.why_not(cfg, Quantizers.from_spec(QuantSpec(weight_bits=8)))
    )
    # a 32-bit Vmem with no integer bits (a 2**-31 mV step): lateral inhibition of 150 mV
    # from 400 neurons times 2**16 leak bits is over 2**62
    q = QuantSpec(weight_bits=8, vmem_bits=32, vth_bits=16, vmem_int_bits=0)
    assert "accumulator" in str(integer.why_not(cfg, Quantizers.from_spec(q)))
    # every width 2-32 with the integer bits derived from the observed ranges fits
    for bw in (2, 8, 16, 32):
        for bv in (2, 8, 16, 32):
            q = QuantSpec(weight_bits=bw, vmem_bits=bv, vth_bits=bv, vmem_range_mv=(-1200, 300))
            assert integer.why_not(cfg, Quantizers.from_spec(q)) is None, (bw, bv)
    ok = QuantSpec(weight_bits=8, vmem_bits=16, vth_bits=16)
    assert integer.why_not(cfg, Quantizers.from_spec(ok)) is None


@pytest.mark.parametrize(("model", "q"), [CASES[0], CASES[1], CASES[2]])
def test_a_membrane_floor_in_integers(model: str, q: QuantSpec) -> None:
    """A floor 3 mV below rest that binds: the torch reference equals the exact-rational
    statement (with the floor raised onto the grid; the Numba kernel is held to the
    reference by test_kernel_equals_reference_bit_for_bit); the floor's code is the lowest
    grid value at or above it, and the final potentials all sit at or above it."""
    cfg, qz, d, net, spikes = _net_and_spikes(model, q, 1, floor=-68.0)
    assert qz.vmem is not None
    assert d.floor == math.ceil(Fraction(-68) / Fraction(qz.vmem.eps))
    counts, v, exp_counts, exp_v, (wc, tc, keys) = _reference_and_exact(cfg, qz, d, net, spikes)
    assert counts.to(torch.int64).tolist() == exp_counts.tolist()
    assert v.tolist() == exp_v.tolist() and int(v.min()) >= d.floor
    _, _, d0, _, _ = _net_and_spikes(model, q, 1)
    v0 = integer.infer_reference(torch.from_numpy(wc), d0.vmem_thresholds(tc), spikes, d0,
                                 keys)[2]  # fmt: skip
    assert int(v0.min()) < d.floor  # without the floor the potentials go lower
