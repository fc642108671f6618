"""Late-pass rate of 9 ITQ points with quantized neurons trained together (docs/benchmarks.md).

Usage: TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/batch_quantized.py \
    CHECKPOINT ROUNDING [THREADS]
CHECKPOINT: a tinySNN FP32 model.pt trained on all of MNIST (see docs/benchmarks.md);
the 9 points are weight bits {16, 12, 10} x Vmem/Vth bits {32, 16, 8}, with integer bits
from that network's threshold range, as `tinysnn explore` sets them.
"""

import sys
import time
from pathlib import Path

import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse.core import sim
from tinysnn_dse.core.params import QuantSpec, validate_quant
from tinysnn_dse.core.quant import Quantizers, with_observed_ranges
from tinysnn_dse.runner import load_checkpoint

ckpt, rounding = Path(sys.argv[1]), sys.argv[2]
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
t = load_checkpoint(ckpt, "cpu")
cfg = t.model
ds = data_mod.load("mnist", None)
x = torch.from_numpy(ds.train_images[:120].copy()).float() / 255
g = torch.Generator().manual_seed(0)
specs = [
    with_observed_ranges(
        validate_quant(QuantSpec(scheme="itq", rounding=rounding, weight_bits=wb,
                                 vmem_bits=nb, vth_bits=nb)),
        t.net.theta, cfg,
    )
    for wb in (16, 12, 10) for nb in (32, 16, 8)
]  # fmt: skip
qzs = [Quantizers.from_spec(s) for s in specs]
batch = sim.DesignBatch([sim.quantize_net(t.net, cfg, q, g) for q in qzs], cfg, qzs)
for i in range(3):  # warm-up: JIT compilation
    batch.train_sample(x[110 + i], g)
t0 = time.perf_counter()
for i in range(60):
    batch.train_sample(x[i], g)
dt = time.perf_counter() - t0
rate = 60 / dt
print(
    f"{rounding}, {torch.get_num_threads()} thread(s): {rate:.1f} samples/s, "
    f"{9 * rate:.0f} aggregate images/s, 60,000 images in {60000 / rate / 60:.0f} min"
)
