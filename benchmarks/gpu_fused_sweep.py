"""Fused tinySNN training on CUDA: ms per image by warps and rows per gather, K = 1 and 9.

Needs a CUDA GPU, Triton and MNIST (TINYSNN_DATA_DIR):

    TINYSNN_DATA_DIR=../shared/data python benchmarks/gpu_fused_sweep.py
"""

import time

import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse.core import sim
from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.core.quant import Quantizers

ds = data_mod.load("mnist", None)
x = torch.from_numpy(ds.train_images[:400].copy()).float().cuda() / 255.0
cfg = preset("tinysnn", 784, 400)
spec = QuantSpec(scheme="itq", rounding="nearest", weight_bits=8)
for k in (1, 9):
    for warps, rows in ((2, 8), (4, 8), (4, 16), (8, 8), (8, 16)):
        qzs = [Quantizers.from_spec(spec)] * k
        g0 = torch.Generator().manual_seed(0)
        net = sim.quantize_net(sim.init_net(cfg, g0), cfg, qzs[0], g0)
        b = sim.DesignBatch([net] * k, cfg, qzs, device="cuda")
        b.gpu.num_warps, b.gpu.rows = warps, rows
        g = torch.Generator(device="cuda").manual_seed(0)
        for i in range(3):
            b.train_sample(x[300 + i], g)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(200):
            b.train_sample(x[i], g)
        torch.cuda.synchronize()
        full = (time.perf_counter() - t0) / 200
        print(
            f"K={k} warps={warps} rows={rows}: {full * 1e3:.2f} ms per image, "
            f"{k / full:.0f} images/s aggregate",
            flush=True,
        )
