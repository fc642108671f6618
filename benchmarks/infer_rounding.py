"""Inference rate of a trained network under PTQ, by rounding mode and neuron width.

Usage: TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/infer_rounding.py \
    CHECKPOINT [ROUNDINGS] [IMAGES]
CHECKPOINT: a tinySNN FP32 model.pt trained on all of MNIST (docs/benchmarks.md);
ROUNDINGS: comma-separated, default truncate,nearest,stochastic; IMAGES: test images,
default 2000. One thread, 256-image batches, 8-bit weights, Vmem/Vth at 32, 16 and 8 bits
(integer bits from the network's range, as `explore` sets them): what one evaluation-only
trial of `paper-mnist.yaml` runs, on a fifth of its images. Re-presentations of images
that draw too few spikes count in the rate, as they do in a trial.
"""

import sys
import time
from pathlib import Path

import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse.core import sim
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.params import QuantSpec, validate_quant
from tinysnn_dse.core.quant import Quantizers, with_observed_ranges
from tinysnn_dse.runner import load_checkpoint

if len(sys.argv) < 2:
    sys.exit(__doc__)
ckpt = Path(sys.argv[1])
roundings = (sys.argv[2] if len(sys.argv) > 2 else "truncate,nearest,stochastic").split(",")
n_img = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
torch.set_num_threads(1)
t = load_checkpoint(ckpt, "cpu")
cfg = t.model
x = torch.from_numpy(data_mod.load("mnist", None).test_images[:n_img].copy()).float() / 255
for rounding in roundings:
    for nb in (32, 16, 8):
        q = QuantSpec(scheme="ptq", rounding=rounding, weight_bits=8, vmem_bits=nb, vth_bits=nb)
        qz = Quantizers.from_spec(with_observed_ranges(validate_quant(q), t.net.theta, cfg))
        g = torch.Generator().manual_seed(0)
        net = sim.quantize_net(t.net, cfg, qz, g)
        sim.infer(net, x[:64], cfg, qz, g)  # warm-up: JIT compilation
        st = OpCounts()
        t0 = time.perf_counter()
        sim.infer(net, x, cfg, qz, g, batch_size=256, stats=st)
        dt = time.perf_counter() - t0
        print(
            f"{rounding}, W 8 bits, Vmem/Vth {nb} bits: {n_img / dt:,.0f} images/s, "
            f"{st.presentations / n_img:.2f} presentations per image"
        )
