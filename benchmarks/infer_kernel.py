"""CPU inference rate on a fresh tinySNN network, and where a presentation's time goes
(docs/benchmarks.md, "The inference kernel, before and after").

Usage: TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/infer_kernel.py \
    [THREADS [W_LATERAL]]

Trains 400 neurons on the first 300 MNIST training images (FP32, seed 0, the given
``w_lateral``, default 150), then times ``sim.infer`` on the first 2,048 test images
(batch 256, after one warm-up batch) and, per image, the kernel's parts: drawing and
storing the trains (``sim.skip_trains``), the kernel on stored trains, and the kernel that
draws them itself. Run it with ``PYTHONPATH=<a git worktree of an older commit>/src`` to
time older code on the same network (the split needs ``sim.infer_drawn``, ``_infer_drawn`` before the core's split).
"""

import sys
import time

import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse.core import sim
from tinysnn_dse.core.params import apply_overrides, preset
from tinysnn_dse.core.quant import Quantizers

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
w_lat = float(sys.argv[2]) if len(sys.argv) > 2 else 150.0
ds = data_mod.load("mnist", None)
cfg = apply_overrides(preset("tinysnn", 784, 400), {"w_lateral": w_lat})
qz = Quantizers.fp32()
g = torch.Generator().manual_seed(0)
net = sim.init_net(cfg, g)
x = torch.from_numpy(ds.train_images[:300].copy()).float() / 255
for i in range(300):
    net, _ = sim.train_sample(net, x[i], cfg, qz, g)
xi = torch.from_numpy(ds.test_images[:2048].copy()).float() / 255
sim.infer(net, xi[:256], cfg, qz, g, 256)  # warm-up: JIT compilation
t0 = time.perf_counter()
counts = sim.infer(net, xi, cfg, qz, g, 256)
rate = len(xi) / (time.perf_counter() - t0)
print(f"w_lateral {w_lat}, {torch.get_num_threads()} thread(s): infer {rate:,.0f} images/s, "
      f"{float(counts.sum()) / len(xi):.2f} spikes per image")  # fmt: skip
# the kernel calls (named _infer_fast / _infer_drawn before the core's split)
infer_fast = getattr(sim, "infer_fast", getattr(sim, "_infer_fast", None))
infer_drawn = getattr(sim, "infer_drawn", getattr(sim, "_infer_drawn", None))
if infer_drawn is not None:
    scale = sim.rate_scale(cfg, 0)
    steps = sim.consts(cfg).steps
    for _ in range(2):  # the first pass compiles
        t_skip = t_stored = t_drawn = 0.0
        for i in range(0, len(xi), 256):
            a = time.perf_counter()
            trains = sim.skip_trains(xi[i : i + 256], steps, scale, g)
            b = time.perf_counter()
            infer_fast(net, trains, cfg, qz, g)
            c = time.perf_counter()
            infer_drawn(net, xi[i : i + 256], scale, cfg, qz, g)
            t_skip, t_stored = t_skip + b - a, t_stored + c - b
            t_drawn += time.perf_counter() - c
    us = 1e6 / len(xi)
    print(f"per image: skip_trains {t_skip * us:.0f} us + kernel on stored trains "
          f"{t_stored * us:.0f} us; kernel that draws {t_drawn * us:.0f} us")  # fmt: skip
