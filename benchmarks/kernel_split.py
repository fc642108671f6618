"""Where the ITQ design batch's compiled presentation kernel spends its time, by ablation.

Usage: TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/kernel_split.py \
    CHECKPOINT [ROUNDING] [IMAGES] [codes]
CHECKPOINT: a tinySNN FP32 model.pt (late in a pass: trained on 20,000 MNIST images, as
in docs/benchmarks.md); ROUNDING: nearest (default), truncate or stochastic; IMAGES:
default 20. One thread.

Numba has no timer inside a compiled function, so the kernel is split by running less
of it. The batch of `batch_profile.py` (W 16/12/10 x neurons 32/16/8 bits) trains on
IMAGES images while every presentation's arguments are recorded; then each recorded
presentation is replayed, point by point, from the batch's weights at the start, three
ways:
  1. the input current alone (each window's rows of W summed into a [window, N] buffer,
     the loop of `kernels.tinysnn_steps`, compiled here);
  2. `kernels.tinysnn_steps` over every window, in one compiled call: the current and
     the neuron steps;
  3. `kernels.learn_tinysnn`: the whole presentation (the rule at each window's end, the
     threshold decay).
The neuron step is 2 - 1 and the rule 3 - 2. Prints ms per point-presentation and the
shares, for each Vmem width. All three sum the current in float32, or with `codes` as the
batch itself sums it since ef0b507: as 16-bit weight codes where that is exact
(`kernels.weight_codes`, made before each timed part, as the batch makes them once a
sample).
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch
from itq_formats import itq_formats  # type: ignore[import-not-found]  # (benchmarks/)
from numba import njit

from tinysnn_dse import data as data_mod
from tinysnn_dse.core import kernels, sim
from tinysnn_dse.core.layout import F_W
from tinysnn_dse.runner import load_checkpoint

if len(sys.argv) < 2:
    sys.exit(__doc__)
ckpt = Path(sys.argv[1])
rounding = sys.argv[2] if len(sys.argv) > 2 else "nearest"
n_img = int(sys.argv[3]) if len(sys.argv) > 3 else 20
use_codes = len(sys.argv) > 4 and sys.argv[4] == "codes"
torch.set_num_threads(1)
kernels.set_threads(1)
t = load_checkpoint(ckpt, "cpu")
cfg = t.model
x = torch.from_numpy(data_mod.load("mnist", None).train_images[: n_img + 203].copy()) / 255.0
g = torch.Generator().manual_seed(0)
nbits = (32, 16, 8)
qzs = itq_formats(t.net, cfg, x[:200], rounding, [16, 12, 10], "kernel_split")
batch = sim.DesignBatch([sim.quantize_net(t.net, cfg, q, g) for q in qzs], cfg, qzs)
for i in range(3):  # warm-up: JIT compilation
    batch.train_sample(x[200 + i].float(), g)
w0 = batch.w.numpy().copy()
acc0 = batch.acc.copy()
recorded = []
multi = kernels.learn_tinysnn_multi


def recording(w, active, spk, n_steps, window, pts, lr, u, decay, n_cols, keeps):  # type: ignore[no-untyped-def]  # noqa: E501
    recorded.append((active.copy(), spk, pts.st.copy(), pts.keys.copy(), u.copy(), lr))
    return multi(w, active, spk, n_steps, window, pts, lr, u, decay, n_cols, keeps)


kernels.learn_tinysnn_multi = recording
batch._one_call = lambda *a: False  # the loop, presentation by presentation, to record them
for i in range(n_img):
    batch.train_sample(x[203 + i].float(), g)
kernels.learn_tinysnn_multi = multi


@njit(cache=True, nogil=True)
def codes_of(w, spk, wq, n_steps, on):  # type: ignore[no-untyped-def]
    """The batch's 16-bit codes of W's active rows with each step's input spikes, as
    kernels.learn_batch_boosted makes them (``on``), or kernels.no_codes."""
    if not on:
        return kernels.no_codes(w.shape[1])
    per_step = np.zeros(n_steps, dtype=np.int64)
    for t in spk[1]:
        per_step[t] += 1
    return kernels.weight_codes(w, spk[2], wq, per_step)


@njit(cache=True, nogil=True)
def current_only(w, spk, n_steps, window, codes):  # type: ignore[no-untyped-def]
    """The input current of every window as kernels.tinysnn_steps sums it (no neuron):
    16-bit codes where they fit (kernels._current_codes; never with kernels.no_codes),
    else the float32 loop, input by input."""
    iptr, times, rows = spk
    n = w.shape[1]
    pos = iptr[:-1].copy()
    last = np.full(w.shape[0], -1, dtype=np.int64)
    total = np.float32(0.0)
    for t0 in range(0, n_steps, window):
        t1 = min(t0 + window, n_steps)
        if kernels._codes_fit(codes, t0, t1):
            cur = kernels._current_codes(codes, spk, pos, t0, t1, last)
        else:
            cur = np.zeros((t1 - t0, n), dtype=np.float32)
            for m in range(rows.shape[0]):
                a = pos[m]
                end = iptr[m + 1]
                row = rows[m]
                while a < end and times[a] < t1:
                    ta = times[a] - t0
                    for j in range(n):
                        cur[ta, j] += w[row, j]
                    last[row] = times[a]
                    a += 1
                pos[m] = a
        total += cur[0, 0]
    return total


@njit(cache=True, nogil=True)
def steps_only(w, spk, n_steps, window, pt, u, codes):  # type: ignore[no-untyped-def]
    """kernels.tinysnn_steps over every window, in one compiled call (no rule)."""
    pos = spk[0][:-1].copy()
    last = np.full(w.shape[0], -1, dtype=np.int64)
    per_step = u.shape[0] > 1
    for a in range(0, n_steps, window):
        b = min(a + window, n_steps)
        kernels.tinysnn_steps(w, spk, pos, a, b, last, pt, u[a:b] if per_step else u, codes)


T, window = cfg.encoding.steps, batch.window
none = np.zeros((0, 0), dtype=np.float32)
spent = np.zeros((len(qzs), 3))
count = np.zeros(len(qzs))
for _rep in range(2):  # the first round compiles and warms
    spent[:] = 0
    count[:] = 0
    fit = [0, 0]
    for active, spk, st0, keys, u, lr in recorded:
        for k in np.flatnonzero(active):
            wk = w0[k].copy()
            wq = batch.fq[k, F_W]
            c = codes_of(wk, spk, wq, T, use_codes)
            for a in range(0, T, window):  # windows summed as 16-bit codes
                fit[0] += kernels._codes_fit(c, a, min(a + window, T))
                fit[1] += 1
            t0 = time.perf_counter()
            current_only(wk, spk, T, window, c)
            t1 = time.perf_counter()
            st = st0[k].copy()
            m = np.zeros_like(batch._m[k])
            pt = kernels.Point(st, acc0[k].copy(), batch.nc[k], batch.fq[k], keys, m)
            t2 = time.perf_counter()
            steps_only(wk, spk, T, window, pt, u, c)
            t3 = time.perf_counter()
            st = st0[k].copy()
            pt = kernels.Point(st, acc0[k].copy(), batch.nc[k], batch.fq[k], keys, m)
            c = codes_of(wk, spk, wq, T, use_codes)  # (the rule updates them)
            t4 = time.perf_counter()
            kernels.learn_tinysnn_codes(wk, spk, T, window, pt, lr[k], u, batch.theta_decay,
                                        none, c)  # fmt: skip
            t5 = time.perf_counter()
            spent[k] += (t1 - t0, t3 - t2, t5 - t4)
            count[k] += 1
n_pres = count.sum()
print(f"{rounding}: {len(recorded)} presentations of {n_img} images, "
      f"{n_pres:.0f} point-presentations, {np.mean([int(s[0][-1]) for _, s, *_ in recorded]):.0f} "
      "input spikes each")  # fmt: skip
print(f"windows summed as 16-bit codes: {fit[0] / fit[1]:.0%}")
print("| Vmem bits | ms a presentation | input current | neuron steps | rule + decay |")
print("| --- | ---: | ---: | ---: | ---: |")
for i, nb in enumerate(nbits):
    ks = [k for k in range(len(qzs)) if k % 3 == i]
    s = spent[ks].sum(axis=0) / count[ks].sum()
    full = s[2]
    print(f"| {nb} | {full * 1e3:.3f} | {s[0] / full:.0%} | {(s[1] - s[0]) / full:.0%} | "
          f"{(full - s[1]) / full:.0%} |")  # fmt: skip
