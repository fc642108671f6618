"""The integer kernel's input current in 16 bits (int_kernels._image_current): the exact
integer sums of the weight codes, in uint16 only where no step's sum can pass 2**16 - 1,
in the codes' own type everywhere else."""

from __future__ import annotations

import numpy as np
import pytest

from tinysnn_dse.core import integer, kernels

int_kernels = pytest.importorskip("tinysnn_dse.core.int_kernels")
if not kernels.HAVE_NUMBA:
    pytest.skip("needs numba", allow_module_level=True)

N_IN, N, T = 30, 20, 25


def stored(spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compact trains of one image: its inputs with any spike, rows ascending."""
    pix = np.flatnonzero(spikes.any(axis=1)).astype(np.int64)
    ptr = np.array([0, len(pix)], dtype=np.int64)
    return ptr, pix, spikes[pix], np.zeros(0)


def current(wc: np.ndarray, trains):  # type: ignore[no-untyped-def]
    cur = np.zeros((T, N), dtype=wc.dtype)
    acc = np.zeros((T, N), dtype=np.uint16)
    n_act = max(1, len(trains[1]))
    tbuf = np.zeros((n_act, T), dtype=np.int32)
    tcnt = np.zeros(n_act, dtype=np.int64)
    per_step = np.zeros(T, dtype=np.int64)
    n_sp, _, narrow = int_kernels._image_current(
        0, trains, 0, wc, integer.narrow_codes(wc), cur, acc, tbuf, tcnt, per_step,
        np.zeros(0, dtype=np.int64),
    )  # fmt: skip
    assert not acc.any()  # left at zero for the next image
    return cur, n_sp, narrow


def exact(wc: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """Each step's sum of the spiking inputs' codes, in Python integers."""
    out = np.zeros((T, N), dtype=object)
    for i in range(N_IN):
        for t in range(T):
            if spikes[i, t]:
                out[t] += wc[i].astype(object)
    return out


def test_sums_in_16_bits_are_the_exact_sums() -> None:
    rng = np.random.default_rng(0)
    wc = rng.integers(0, 256, size=(N_IN, N)).astype(np.int32)  # 8-bit codes
    spikes = rng.random((N_IN, T)) < 0.4
    cur, n_sp, narrow = current(wc, stored(spikes))
    assert narrow  # at most 30 spikes a step x 255 < 65,536
    assert n_sp == int(spikes.sum())
    assert cur.tolist() == exact(wc, spikes).tolist()


def test_a_sum_that_could_pass_16_bits_is_summed_wide() -> None:
    """Two inputs of codes 40,000 and 30,000 spiking at the same step sum to 70,000: in
    uint16 that would wrap to 4,464. The bound (2 spikes x 40,000) sends it to int32."""
    wc = np.zeros((N_IN, N), dtype=np.int32)
    wc[3, 0], wc[7, 0] = 40_000, 30_000
    spikes = np.zeros((N_IN, T), dtype=bool)
    spikes[3, 5] = spikes[7, 5] = True
    spikes[7, 9] = True
    cur, _, narrow = current(wc, stored(spikes))
    assert not narrow
    assert cur[5, 0] == 70_000 and cur[9, 0] == 30_000
    assert cur.tolist() == exact(wc, spikes).tolist()


def test_the_bound_is_the_busiest_step_times_the_largest_code() -> None:
    """65,535 = 3 x 21,845: three spikes in a step fit, four do not, even where the codes
    that spike are small (the bound takes the largest code of W)."""
    wc = np.ones((N_IN, N), dtype=np.int32)
    wc[0, :] = 21_845
    spikes = np.zeros((N_IN, T), dtype=bool)
    spikes[1:4, 2] = True  # three inputs at step 2, none of them row 0
    assert current(wc, stored(spikes))[2]
    spikes[4, 2] = True
    cur, _, narrow = current(wc, stored(spikes))
    assert not narrow
    assert cur[2].tolist() == [4] * N


@pytest.mark.parametrize("code", [-1, 2**16])
def test_no_16_bit_codes_outside_0_to_65535(code: int) -> None:
    rng = np.random.default_rng(1)
    wc = rng.integers(0, 100, size=(N_IN, N)).astype(np.int64)
    wc[2, 3] = code
    assert integer.narrow_codes(wc)[0].shape[0] == 0
    spikes = rng.random((N_IN, T)) < 0.3
    spikes[2, 4] = True
    cur, _, narrow = current(wc, stored(spikes))
    assert not narrow
    assert cur.tolist() == exact(wc, spikes).tolist()


def test_drawn_trains_sum_as_stored_ones() -> None:
    """The kernel draws an image's trains (geometric skipping) before it sums them: the
    same current as from the trains :func:`kernels.geometric_times` gives input by
    input."""
    rng = np.random.default_rng(2)
    wc = rng.integers(0, 256, size=(N_IN, N)).astype(np.int32)
    p = rng.random(N_IN) * 0.5
    pix = np.arange(N_IN, dtype=np.int64)
    ptr = np.array([0, N_IN], dtype=np.int64)
    drawn = (ptr, pix, np.zeros((0, 0), dtype=np.bool_), p)
    cur, n_sp, narrow = current(wc, drawn)  # key 0
    times = np.zeros(T, dtype=np.int64)
    spikes = np.zeros((N_IN, T), dtype=bool)
    for m in range(N_IN):
        spikes[m, times[: kernels.geometric_times(float(p[m]), 0, m, times)]] = True
    assert narrow and n_sp == int(spikes.sum()) > 50
    assert cur.tolist() == exact(wc, spikes).tolist()


def test_kernel_setup_follows_the_network() -> None:
    """The integer kernel's arguments are remembered between batches of one pass, and
    computed anew when W or the thresholds change in place, or the design changes."""
    import torch

    from tinysnn_dse.core.params import QuantSpec, preset
    from tinysnn_dse.core.quant import Quantizers
    from tinysnn_dse.core.sim import Net, quantize_net

    cfg = preset("tinysnn", N_IN, N)
    q = QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16,
                  vmem_int_bits=11, vth_int_bits=11)  # fmt: skip
    qz = Quantizers.from_spec(q)
    g = torch.Generator().manual_seed(0)
    net = quantize_net(Net(torch.rand(N_IN, N, generator=g), torch.rand(N, generator=g)), cfg,
                       qz, g)  # fmt: skip
    a = integer.kernel_setup(net.w, net.theta, cfg, qz)
    assert a is not None and integer.kernel_setup(net.w, net.theta, cfg, qz) is a
    d = integer.design_of(cfg, qz)
    assert d is not None
    assert a.w.tolist() == integer.codes(net.w, d.weight).tolist()
    net.w[0, 0] = 0.0  # in place
    b = integer.kernel_setup(net.w, net.theta, cfg, qz)
    assert b is not a and b is not None and b.w[0, 0] == 0 and a.w[0, 0] != 0
    net.theta[1] += 1.0
    c = integer.kernel_setup(net.w, net.theta, cfg, qz)
    assert c is not b and c is not None and c.thr[1] > b.thr[1]
    assert integer.kernel_setup(net.w, net.theta, cfg, Quantizers.fp32()) is None
