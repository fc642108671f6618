"""Hand-computed LIF steps, the one-spike rule, lateral inhibition and traces."""

from __future__ import annotations

import math

import pytest
import torch

from tinysnn_dse.core.params import ExcParams
from tinysnn_dse.core.sim import (
    LIFState,
    lateral_current,
    lif_consts,
    lif_fire,
    lif_integrate,
    one_spike,
    presyn_traces,
)

D = math.exp(-1.0 / 100.0)  # leak factor for tau_m = 100 ms, dt = 1 ms


def ident(x: torch.Tensor) -> torch.Tensor:
    return x


def test_lif_steps_match_hand_computation() -> None:
    c = lif_consts(ExcParams(), dt_ms=1.0)
    assert c.v_rest == -65.0 and c.v_reset == -60.0 and c.ref_steps == 5.0
    st = LIFState(v=torch.tensor([[-65.0]], dtype=torch.float64), refr=torch.zeros(1, 1))
    i_in = torch.tensor([[5.0]], dtype=torch.float64)
    thr = -52.0
    # step 1: -65 + 0 * D + 5 = -60
    # step 2: -65 + 5 * D + 5 = -55.0498...
    # step 3: -65 + 9.9502 * D + 5 = -50.1488 >= -52 -> spike, reset to -60, refractory 5
    # step 4: refractory: no input; -65 + 5 * D = -60.0498...
    expected = [-60.0, -65 + 5 * D + 5, -65 + (5 * D + 5) * D + 5]
    spikes = []
    for k in range(3):
        v = lif_integrate(st, i_in, c, ident)
        assert float(v) == pytest.approx(expected[k], abs=1e-9)
        s = v >= thr
        spikes.append(bool(s))
        st = lif_fire(v, st.refr, s, c, thr)
    assert spikes == [False, False, True]
    assert float(st.v) == -60.0 and float(st.refr) == 5.0
    v = lif_integrate(st, i_in, c, ident)
    assert float(v) == pytest.approx(-65 + 5 * D, abs=1e-9)
    st = lif_fire(v, st.refr, v >= thr, c, thr)
    assert float(st.refr) == 4.0
    # the refractory period lasts exactly 5 steps: input counts again on the 6th
    for _ in range(4):
        v = lif_integrate(st, i_in, c, ident)
        st = lif_fire(v, st.refr, torch.tensor([[False]]), c, thr)
    assert float(st.refr) == 0.0
    v_before = float(st.v)
    v = lif_integrate(st, i_in, c, ident)
    assert float(v) == pytest.approx(-65 + (v_before + 65) * D + 5, abs=1e-9)


def test_if_neurons_integrate_without_leak_by_hand() -> None:
    """IF (leak "if"): the potential holds between inputs and rises by exactly the input
    each step: -65, -62, -59, -56, -53, then -50 >= -52 fires; a silent step changes
    nothing. The inhibitory layer's neurons keep their leak."""
    from tinysnn_dse.core.params import InhParams

    c = lif_consts(ExcParams(leak="if"), dt_ms=1.0)
    assert c.decay == 1.0 and lif_consts(InhParams(), 1.0).decay == math.exp(-1.0 / 10.0)
    st = LIFState(v=torch.tensor([[-65.0]]), refr=torch.zeros(1, 1))
    i_in = torch.tensor([[3.0]])
    vs = []
    for _ in range(5):
        v = lif_integrate(st, i_in, c, ident)
        vs.append(float(v))
        st = lif_fire(v, st.refr, v >= -52.0, c, -52.0)
    assert vs == [-62.0, -59.0, -56.0, -53.0, -50.0]
    assert float(st.v) == -60.0 and float(st.refr) == 5.0  # fired on the fifth
    held = LIFState(v=torch.tensor([[-57.25]]), refr=torch.zeros(1, 1))
    assert float(lif_integrate(held, torch.zeros(1, 1), c, ident)) == -57.25


def test_one_spike_keeps_only_largest_tiebreak() -> None:
    s = torch.tensor([[True, False, True, True], [False, False, False, False]])
    tb = torch.tensor([[0.1, 0.9, 0.7, 0.3], [0.5, 0.5, 0.5, 0.5]])
    out = one_spike(s, tb)
    assert out.tolist() == [[False, False, True, False], [False, False, False, False]]


def test_lateral_current_inhibits_every_other_neuron() -> None:
    s = torch.tensor([[False, True, False], [True, True, False]])
    out = lateral_current(s, 17.5)
    assert out.tolist() == [[-17.5, 0.0, -17.5], [-17.5, -17.5, -35.0]]


def test_closed_form_traces_equal_recursion() -> None:
    g = torch.Generator().manual_seed(3)
    spikes = torch.rand(2, 60, 7, generator=g) < 0.15
    got = presyn_traces(spikes, dt_ms=1.0, tau_ms=20.0)
    x = torch.zeros(2, 7)
    d = math.exp(-1.0 / 20.0)
    for t in range(60):
        x = torch.where(spikes[:, t], torch.ones_like(x), x * d)
        torch.testing.assert_close(got[:, t], x, rtol=1e-5, atol=1e-6)


def test_traces_at_update_points_equal_full_traces() -> None:
    from tinysnn_dse.core.sim import traces_at, update_points

    g = torch.Generator().manual_seed(4)
    spikes = torch.rand(1, 250, 30, generator=g) < 0.05
    ends = update_points(250, 25)
    assert ends == [24, 49, 74, 99, 124, 149, 174, 199, 224, 249]
    full = presyn_traces(spikes, 1.0, 20.0)
    assert torch.equal(traces_at(spikes, ends, 1.0, 20.0), full[:, ends])
    assert update_points(10, 4) == [3, 7, 9]


def test_trace_table_gives_every_trace_bit_for_bit() -> None:
    """The compiled per-step rules read traces as table[t - t_last]: the same floats as
    presyn_traces's block, and exp(-k/20) by hand to float32 rounding."""
    from tinysnn_dse.core.rules import trace_table

    g = torch.Generator().manual_seed(5)
    spikes = torch.rand(1, 250, 40, generator=g) < 0.04
    full = presyn_traces(spikes, 1.0, 20.0)[0]
    table = trace_table(250, 1.0, 20.0)
    last = torch.full((40,), -1)
    for t in range(250):
        last = torch.where(spikes[0, t], torch.tensor(t), last)
        want = torch.where(last >= 0, table[(t - last).clamp_max(249)], torch.tensor(0.0))
        assert torch.equal(full[t], want), t
    assert table[0] == 1.0
    for k in (1, 7, 100, 249):
        assert abs(float(table[k]) - math.exp(-k / 20.0)) <= 2e-7 * math.exp(-k / 20.0) + 1e-12


def test_step_lists_from_compact_trains_equal_the_dense_ones() -> None:
    from tinysnn_dse.core.marshal import csr_one
    from tinysnn_dse.core.sim import poisson_trains

    g = torch.Generator().manual_seed(9)
    pix = torch.rand(1, 50, generator=g)
    pix[pix < 0.4] = 0.0
    tr = poisson_trains(pix, 30, 0.3, g)
    ptr, idx = csr_one(tr)
    ptr_d, idx_d = csr_one(tr.dense())
    assert ptr.tolist() == ptr_d.tolist() and idx.tolist() == idx_d.tolist()
    assert int(ptr[-1]) == int(tr.spikes.sum()) > 0


def test_compact_trains_dense_and_by_input_agree() -> None:
    from tinysnn_dse.core.marshal import by_input
    from tinysnn_dse.core.sim import SpikeTrains, poisson_trains

    g = torch.Generator().manual_seed(8)
    pix = torch.rand(3, 20, generator=g)
    pix[pix < 0.5] = 0.0
    pix[1] = 0.0  # an all-blank image
    tr = poisson_trains(pix, 30, 0.5, g)
    dense = tr.dense()
    assert dense.shape == (3, 30, 20)
    assert not dense[1].any() and not dense[:, :, (pix == 0).all(0)].any()
    one = tr.img == 0  # image 0, input by input, as the learning kernels read it
    iptr, times, rows = by_input(SpikeTrains(tr.img[one], tr.pix[one], tr.spikes[one], (1, 30, 20)))
    assert rows.tolist() == (pix[0] > 0).nonzero().flatten().tolist()
    for m, row in enumerate(rows):
        want = dense[0, :, row].nonzero().flatten().tolist()
        assert times[iptr[m] : iptr[m + 1]].tolist() == want
    d_iptr, d_times, d_rows = by_input(dense[:1])  # from dense spikes: the inputs that spiked
    assert d_rows.tolist() == rows[iptr[1:] > iptr[:-1]].tolist()
    assert d_times.tolist() == times.tolist() and d_iptr[-1] == iptr[-1]
    rate = dense[0].float().mean(0)[pix[0] > 0]
    assert float((rate - pix[0][pix[0] > 0] * 0.5).abs().mean()) < 0.15
