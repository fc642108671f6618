"""Exact memory counts (paper Eq. 4) for 784x400 in both topologies."""

from __future__ import annotations

import pytest

from tinysnn_dse.core.memory import memory_report

N_W = 784 * 400  # 313,600 input -> excitatory weights


@pytest.mark.parametrize(
    ("wb", "vb", "tb", "bits"),
    [
        (None, None, None, N_W * 32 + 400 * (32 + 32)),  # 10,060,800
        (8, None, None, N_W * 8 + 400 * 64),  # 2,534,400
        (8, 8, 8, N_W * 8 + 400 * 16),  # 2,515,200
        (16, 16, 16, N_W * 16 + 400 * 32),  # 5,030,400
        (4, 32, 32, N_W * 4 + 400 * 64),  # 1,280,000
        (2, 8, 16, N_W * 2 + 400 * 24),
    ],
)
def test_tinysnn_lateral_topology(wb, vb, tb, bits) -> None:
    r = memory_report(784, 400, "lateral", wb, vb, tb)
    assert r.memory_bits == bits
    assert r.n_weights == N_W and r.n_neurons == 400
    assert r.reference_bits == 10_060_800
    assert r.normalized_memory == pytest.approx(bits / 10_060_800)
    assert r.baseline_fp32_bits == 20_326_400
    assert r.vs_baseline_fp32 == pytest.approx(bits / 20_326_400)


@pytest.mark.parametrize(
    ("wb", "vb", "tb", "bits"),
    [
        # input weights + exc->inh (400x400) + inh->exc (400x400); Vmem and Vth of 800 neurons
        (None, None, None, (N_W + 2 * 160_000) * 32 + 800 * 64),  # 20,326,400
        (8, 8, 8, (N_W + 2 * 160_000) * 8 + 800 * 16),  # 5,081,600
        (16, 32, 32, (N_W + 2 * 160_000) * 16 + 800 * 64),
    ],
)
def test_baseline_inhibitory_topology(wb, vb, tb, bits) -> None:
    r = memory_report(784, 400, "inhibitory", wb, vb, tb)
    assert r.memory_bits == bits
    assert r.n_weights == 633_600 and r.n_neurons == 800
    assert r.reference_bits == 20_326_400
    assert r.memory_bytes == bits / 8


def test_dropping_the_inhibitory_layer_halves_fp32_memory() -> None:
    lat = memory_report(784, 400, "lateral", None, None, None)
    assert lat.vs_baseline_fp32 == pytest.approx(10_060_800 / 20_326_400)
    assert lat.normalized_memory == 1.0
