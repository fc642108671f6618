"""One update of each learning rule on a 3x2 network, against hand computation."""

from __future__ import annotations

import pytest
import torch

from tinysnn_dse.core.params import LearningParams
from tinysnn_dse.core.sim import (
    normalize,
    pair_update_,
    sl_stdp_cols,
    tinysnn_cols,
)

P = LearningParams()  # eta_pre 1e-4, eta_post 1e-2, eta_sl 1e-2, x_tar 0.4, eta 1e-2, s_th 3


def w0() -> torch.Tensor:
    return torch.tensor([[0.5, 0.2], [0.1, 0.9], [0.3, 0.4]], dtype=torch.float64)


def test_pair_stdp_one_step() -> None:
    # dw_ij = -eta_pre * s_pre_i * x_post_j + eta_post * x_pre_i * s_post_j
    s_pre = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    x_pre = torch.tensor([1.0, 0.5, 1.0], dtype=torch.float64)
    s_post = torch.tensor([0.0, 1.0], dtype=torch.float64)
    x_post = torch.tensor([0.2, 1.0], dtype=torch.float64)
    w = pair_update_(w0(), s_pre, s_post, x_pre, x_post, P)
    expected = [
        [0.5 - 2e-5, 0.2 - 1e-4 + 1e-2],
        [0.1, 0.9 + 0.005],
        [0.3 - 2e-5, 0.4 - 1e-4 + 1e-2],
    ]
    torch.testing.assert_close(w, torch.tensor(expected, dtype=torch.float64))


def test_pair_stdp_clamps_to_bounds() -> None:
    w = torch.tensor([[0.99995, 0.0]], dtype=torch.float64)
    one = torch.ones(1, dtype=torch.float64)
    w = pair_update_(w, one, torch.tensor([1.0, 0.0], dtype=torch.float64), one,
                     torch.tensor([0.0, 1.0], dtype=torch.float64), P)  # fmt: skip
    assert w.tolist() == [[1.0, 0.0]]


def test_sl_stdp_one_postsynaptic_spike() -> None:
    # neuron 1 spikes; x_pre - x_tar = [0.5, -0.3, 0.0]
    # row 0: potentiation 0.01 * 0.5 * (1 - 0.2) = +0.004
    # row 1: depression   0.01 * -0.3 * 0.9      = -0.0027
    # row 2: d = 0 counts as potentiation, dw = 0
    x_pre = torch.tensor([0.9, 0.1, 0.4], dtype=torch.float64)
    w = w0()
    w[:, [1]] = sl_stdp_cols(w[:, [1]], x_pre, P)
    expected = [[0.5, 0.204], [0.1, 0.8973], [0.3, 0.4]]
    torch.testing.assert_close(w, torch.tensor(expected, dtype=torch.float64))


def test_tinysnn_update_adaptive_potentiation() -> None:
    # S_max = 6, S_th = 3 -> k = 2; neuron 0 fired since the last update point
    # dw_i0 = 2 * 0.01 * x_pre_i * (1 - w_i0) = [0.01, 0.009, 0]
    x_pre = torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64)
    w = w0()
    w[:, [0]] = tinysnn_cols(w[:, [0]], x_pre, 6.0, P)
    expected = [[0.51, 0.2], [0.109, 0.9], [0.3, 0.4]]
    torch.testing.assert_close(w, torch.tensor(expected, dtype=torch.float64))


def test_normalize_columns_sum_to_norm() -> None:
    w = normalize(w0(), norm=0.6, w_max=1.0)
    torch.testing.assert_close(w.sum(0), torch.tensor([0.6, 0.6], dtype=torch.float64))
    assert w[0, 0] == pytest.approx(0.5 * 0.6 / 0.9)
