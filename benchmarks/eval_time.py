"""Wall time of one PTQ design point's evaluation, as the grid's evaluation-only trials run
it (docs/benchmarks.md, "The integer inference's current in 16 bits").

Usage: TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/eval_time.py \
    CHECKPOINT [IMAGES]
CHECKPOINT: a tinySNN FP32 model.pt (`make runs/bench-late/tinysnn/model.pt`); IMAGES:
assignment and test images, default 10,000 each (the paper grid's). One thread. For each
of four PTQ designs, evaluates once on 256 images (compilation), then times `evaluate`
(range observation, quantization, the assignment and test passes, the record). Run it
with ``PYTHONPATH=<a git worktree of an older commit>/src`` to time older code on the same
network, alternating, in one session.
"""

import dataclasses
import sys
import time
from pathlib import Path

import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.runner import load_checkpoint
from tinysnn_dse.runner.evaluation import evaluate
from tinysnn_dse.runner.settings import make_split

if len(sys.argv) < 2:
    sys.exit(__doc__)
torch.set_num_threads(1)
n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
trained = load_checkpoint(Path(sys.argv[1]))
s = dataclasses.replace(trained.settings, train_samples=n, assign_samples=n, test_samples=n,
                        threads=1, device="cpu")  # fmt: skip
trained = dataclasses.replace(trained, settings=s)
split = make_split(data_mod.load("mnist", None), s, torch.device("cpu"))
few = dataclasses.replace(split, assign_x=split.assign_x[:256], assign_y=split.assign_y[:256],
                          eval_x=split.eval_x[:256], eval_y=split.eval_y[:256])  # fmt: skip
DESIGNS = [("nearest", 16, 16), ("nearest", 8, 16), ("stochastic", 10, 8), ("truncate", 4, 32)]
out = []
for rounding, wb, nb in DESIGNS:
    q = QuantSpec(scheme="ptq", rounding=rounding, weight_bits=wb, vmem_bits=nb, vth_bits=nb)
    evaluate(trained, q, few)
    t0 = time.perf_counter()
    record = evaluate(trained, q, split).record
    out.append(f"{rounding} W{wb}/V{nb}/T{nb} {time.perf_counter() - t0:.1f} s "
               f"(acc {record.accuracy:.4f})")  # fmt: skip
print(" | ".join(out))
