"""The input current summed as 16-bit weight codes (kernels.weight_codes): exact integer
sums, the float32 sums bit for bit, and the float path wherever a sum could overflow."""

from __future__ import annotations

import numpy as np
import pytest

from tinysnn_dse.core import kernels, quant
from tinysnn_dse.core.layout import QP_ON
from tinysnn_dse.core.modes import RoundMode
from tinysnn_dse.core.quant import FixedPoint

N_IN, N, T = 40, 24, 30
EPS = 2.0**-7  # Q1.7: the grid's 8-bit weights, codes 0..128


def grid_w(rng: np.random.Generator, top: int = 128) -> np.ndarray:
    return (rng.integers(0, top + 1, size=(N_IN, N)) * EPS).astype(np.float32)


def trains(rng: np.random.Generator, p: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compact trains of every other input (rows ascending), each step with probability p."""
    rows = np.arange(0, N_IN, 2, dtype=np.int64)
    spikes = [np.flatnonzero(rng.random(T) < p).astype(np.int64) for _ in rows]
    iptr = np.zeros(len(rows) + 1, dtype=np.int64)
    iptr[1:] = np.cumsum([len(s) for s in spikes])
    return iptr, np.concatenate(spikes), rows


def codes_for(w: np.ndarray, rows: np.ndarray, times: np.ndarray):  # type: ignore[no-untyped-def]
    per_step = np.bincount(times, minlength=T).astype(np.int64)
    wq = quant.qparams(FixedPoint(8, 1, False), RoundMode.NEAREST)
    return kernels.weight_codes(w, rows, wq, per_step)


def test_code_sums_are_the_exact_sums_and_the_float_sums() -> None:
    rng = np.random.default_rng(3)
    w = grid_w(rng)
    iptr, times, rows = trains(rng, 0.4)
    codes = codes_for(w, rows, times)
    assert codes[1][0] == int(np.round(w[rows] / EPS).max())
    last = np.full(N_IN, -1, dtype=np.int64)
    cur = kernels._current_codes(codes, (iptr, times, rows), iptr[:-1].copy(), 0, T, last)
    # independent: integer sums of the codes (Python ints), times eps
    exact = np.zeros((T, N), dtype=np.int64)
    for m, row in enumerate(rows):
        for t in times[iptr[m] : iptr[m + 1]]:
            exact[t] += np.round(w[row] / EPS).astype(np.int64)
            assert last[row] >= t
    assert np.array_equal(cur, (exact * EPS).astype(np.float32))
    # and the float32 loop's sums, in input order, are the same floats
    flo = np.zeros((T, N), dtype=np.float32)
    for m, row in enumerate(rows):
        for t in times[iptr[m] : iptr[m + 1]]:
            flo[t] += w[row]
    assert np.array_equal(cur, flo)


def test_codes_fit_only_while_no_step_can_overflow() -> None:
    rng = np.random.default_rng(4)
    w = grid_w(rng)
    w[0, 0] = 128 * EPS  # the largest code, 128 (= w_max 1.0)
    iptr, times, rows = trains(rng, 0.3)
    codes = codes_for(w, rows, times)
    per_step = codes[2]
    per_step[:] = 0
    per_step[5] = 65535 // 128  # 511 spikes x 128 = 65,408 <= 65,535
    assert kernels._codes_fit(codes, 0, T)
    per_step[5] = 65535 // 128 + 1  # 512 x 128 = 65,536: could overflow, so the float sum
    assert not kernels._codes_fit(codes, 0, T)
    assert kernels._codes_fit(codes, 6, T)  # a later window without that step


@pytest.mark.parametrize("case", ["off-grid", "negative", "fp32"])
def test_codes_off_where_w_is_no_16_bit_code(case: str) -> None:
    rng = np.random.default_rng(5)
    w = grid_w(rng)
    iptr, times, rows = trains(rng, 0.3)
    per_step = np.bincount(times, minlength=T).astype(np.int64)
    wq = quant.qparams(FixedPoint(8, 1, False), RoundMode.NEAREST)
    if case == "off-grid":
        w[rows[3], 2] = 0.3  # not a multiple of 2**-7
    elif case == "negative":
        w[rows[1], 0] = -EPS
    else:
        wq = wq.copy()
        wq[QP_ON] = 0
    codes = kernels.weight_codes(w, rows, wq, per_step)
    assert not kernels._codes_fit(codes, 0, T)


def test_codes_follow_the_columns_the_rule_changed() -> None:
    rng = np.random.default_rng(6)
    w = grid_w(rng)
    iptr, times, rows = trains(rng, 0.3)
    codes = codes_for(w, rows, times)
    cols = np.array([1, 7], dtype=np.int64)
    w[:, cols] = (rng.integers(0, 129, size=(N_IN, 2)) * EPS).astype(np.float32)
    w[rows[2], 7] = 128 * EPS
    kernels.sync_codes(codes, w, rows, cols)
    assert np.array_equal(codes[0].astype(np.int64), np.round(w[rows] / EPS).astype(np.int64))
    assert codes[1][0] == 128
    w[rows[0], 1] = 0.3  # an off-grid value in an updated column: codes off from here on
    kernels.sync_codes(codes, w, rows, cols)
    assert not kernels._codes_fit(codes, 0, T)
