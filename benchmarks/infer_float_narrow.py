"""Inference rate of the float kernel's narrow Vmem loop (kernels._lateral_pass, float32).

Usage: TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/infer_float_narrow.py \
    CHECKPOINT ROUNDING
CHECKPOINT: a tinySNN FP32 model.pt (runs/bench-late/tinysnn/model.pt); ROUNDING:
truncate, nearest or stochastic. W 8 bits and Vmem 16 bits (7 integer bits) with FP32
thresholds, so the float kernel runs, not the integer datapath; 2,000 MNIST test images,
one thread, after a 256-image warm-up. Prints images/s and the spike total.
"""

import dataclasses
import sys
import time
from pathlib import Path

import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse.core import sim
from tinysnn_dse.core.params import QuantSpec, validate_quant
from tinysnn_dse.core.quant import Quantizers
from tinysnn_dse.runner import load_checkpoint

if len(sys.argv) != 3:
    sys.exit(__doc__)
torch.set_num_threads(1)
t = load_checkpoint(Path(sys.argv[1]), "cpu")
cfg = t.model
x = torch.from_numpy(data_mod.load("mnist", None).test_images[:2000].copy()).float() / 255.0
spec = QuantSpec(scheme="ptq", rounding=sys.argv[2], weight_bits=8, vmem_bits=16,
                 vth_bits=16, vmem_int_bits=7, vth_int_bits=7)  # fmt: skip
# FP32 thresholds: no integer datapath, so the float kernel runs
qz = dataclasses.replace(Quantizers.from_spec(validate_quant(spec)), vth=None)
g = torch.Generator().manual_seed(0)
net = sim.quantize_net(t.net, cfg, qz, g)
sim.infer(net, x[:256], cfg, qz, g)  # warm-up: JIT compilation
t0 = time.perf_counter()
c = sim.infer(net, x, cfg, qz, g)
dt = time.perf_counter() - t0
print(f"{sys.argv[2]} {2000 / dt:.0f} img/s spikes {int(c.sum())}")
