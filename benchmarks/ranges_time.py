"""Time of the FP32 pass that observes a network's Vmem and Vth ranges, and of the same
answer remembered (docs/benchmarks.md, "The Vmem/Vth ranges observed once per process").

Usage: TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/ranges_time.py \
    CHECKPOINT [ROUNDS]
CHECKPOINT: a tinySNN FP32 model.pt; ROUNDS: default 3. One thread. Each round clears
the memo, asks `observed_quant` for a PTQ design's formats (the pass over the first
1,000 assignment images), then asks again (the digest and the remembered ranges).
"""

import dataclasses
import sys
import time
from pathlib import Path

import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.runner import load_checkpoint, training
from tinysnn_dse.runner.settings import make_split

if len(sys.argv) < 2:
    sys.exit(__doc__)
torch.set_num_threads(1)
t = load_checkpoint(Path(sys.argv[1]))
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
s = dataclasses.replace(t.settings, assign_samples=10_000, test_samples=100, threads=1,
                        device="cpu")  # fmt: skip
split = make_split(data_mod.load("mnist", None), s, torch.device("cpu"))
q = QuantSpec(scheme="ptq", rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16)
training.observed_quant(q, t.net, t.model, split, 1, "warm-up")  # compilation
for _ in range(rounds):
    training._RANGES.clear()
    a = time.perf_counter()
    training.observed_quant(q, t.net, t.model, split, 0, "pass")
    b = time.perf_counter()
    training.observed_quant(q, t.net, t.model, split, 0, "remembered")
    c = time.perf_counter()
    print(f"pass {b - a:.3f} s, remembered {(c - b) * 1e3:.1f} ms")
