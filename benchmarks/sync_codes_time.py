"""Time of `kernels.sync_codes`: the design batch's 16-bit weight codes re-encoded after
a rule update (docs/benchmarks.md, "The batch's kernel with its 16-bit codes, split").

Usage: .venv/bin/python benchmarks/sync_codes_time.py

W [784, 400] on a 10-fractional-bit grid, 170 active rows (seed 0), 2 updated columns;
1,000 calls a round, hot in cache, one thread, three rounds.
"""

import time

import numpy as np

from tinysnn_dse.core import kernels
from tinysnn_dse.core.layout import QP_EPS, QP_HI, QP_INV, QP_LEN, QP_ON

rng = np.random.default_rng(0)
n_in, n = 784, 400
wq = np.zeros(QP_LEN)
wq[QP_ON], wq[QP_INV], wq[QP_EPS], wq[QP_HI] = 1.0, 2.0**10, 2.0**-10, 65535.0
w = (rng.integers(0, 1024, (n_in, n)) * 2.0**-10).astype(np.float32)
rows = np.sort(rng.choice(n_in, 170, replace=False)).astype(np.int64)
codes = kernels.weight_codes(w, rows, wq, np.zeros(250, np.int64))
cols = np.array([37, 211], np.int64)
kernels.sync_codes(codes, w, rows, cols)  # compilation
for _ in range(3):
    t0 = time.perf_counter()
    for _ in range(1000):
        kernels.sync_codes(codes, w, rows, cols)
    print(f"sync_codes, 2 columns x 170 rows: {(time.perf_counter() - t0) / 1000 * 1e6:.2f} us")
