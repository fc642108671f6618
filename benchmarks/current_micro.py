"""A window's input current summed from uint16 or uint8 weight codes into uint16, on
synthetic spikes (docs/benchmarks.md, "The batch's kernel with its 16-bit codes, split").

Usage: .venv/bin/python benchmarks/current_micro.py

150 active inputs x 400 neurons, Bernoulli spikes over 250 steps (3,264 with seed 0),
summed window by window (25 steps), each window scanning every input's spikes, 50
presentations a timing, hot in cache, one thread; three alternating rounds.
"""

import time

import numpy as np
from numba import njit


@njit(cache=False, nogil=True)
def cur(c, iptr, times, t0, t1, acc):
    """A window's rows of the codes ``c`` (uint16 or uint8) summed into ``acc`` (uint16)."""
    n = c.shape[1]
    acc[:] = 0
    for m in range(iptr.shape[0] - 1):
        for a in range(iptr[m], iptr[m + 1]):
            ta = times[a]
            if ta < t0 or ta >= t1:
                continue
            ta -= t0
            for j in range(n):
                acc[ta, j] += c[m, j]


@njit(cache=False, nogil=True)
def run(f_id, c16, c8, iptr, times, T, win, reps):
    n = c16.shape[1]
    acc = np.zeros((win, n), dtype=np.uint16)
    s = 0
    for _r in range(reps):
        for t0 in range(0, T, win):
            if f_id == 0:
                cur(c16, iptr, times, t0, t0 + win, acc)
            else:
                cur(c8, iptr, times, t0, t0 + win, acc)
            s += acc[0, 0]
    return s


REPS = 50
rng = np.random.default_rng(0)
M, N, T, win = 150, 400, 250, 25
p = rng.uniform(0.02, 0.16, M) * 0.9
times_l, iptr = [], [0]
for m in range(M):
    tt = np.flatnonzero(rng.random(T) < p[m])
    times_l.append(tt)
    iptr.append(iptr[-1] + len(tt))
times = np.concatenate(times_l).astype(np.int64)
iptr = np.array(iptr, np.int64)
print("spikes", len(times))
c8 = rng.integers(0, 256, (M, N)).astype(np.uint8)
c16 = c8.astype(np.uint16)
for f in (0, 1):
    run(f, c16, c8, iptr, times, T, win, 1)
for _rnd in range(3):
    for f in (0, 1):
        t = time.perf_counter()
        run(f, c16, c8, iptr, times, T, win, REPS)
        dt = (time.perf_counter() - t) / REPS
        print(
            ["u16", "u8"][f],
            f"{dt * 1e6:.1f} us/presentation, {dt / len(times) * 1e9:.1f} ns/spike",
        )
