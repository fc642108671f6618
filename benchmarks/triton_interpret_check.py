"""Hand check, on a machine without a GPU, of the fused Triton design-batch kernels
(core/gpu_kernels.py) under Triton's interpreter against the Numba design batch.

    pip install --no-deps triton    # into a scratch copy of the environment (~300 MB)
    .venv/bin/python benchmarks/triton_interpret_check.py [PRUNE]

Runs a 64 x 16 tinySNN batch of three points (FP32, ITQ nearest W8/V16/T16, ITQ
truncation W6) on 6 images through both, the Triton one with CPU tensors under
TRITON_INTERPRET=1, with STDP pruning rounds after images 2 and 4 when PRUNE > 0, and
prints whether counts, weights, thresholds, masks and event counts agree. On a GPU,
tests/test_cuda.py checks the same compiled.
"""

import os
import sys
import time

os.environ["TRITON_INTERPRET"] = "1"
import torch

from tinysnn_dse.core import gpu_kernels, sim
from tinysnn_dse.core import kernels as K
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.params import QuantSpec, apply_overrides, preset
from tinysnn_dse.core.quant import Quantizers

prune = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
cfg = preset("tinysnn", 64, 16)
if prune:
    cfg = apply_overrides(cfg, {"prune": prune, "prune_rounds": 2})
specs = [
    QuantSpec(),
    QuantSpec(scheme="itq", rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16),
    QuantSpec(scheme="itq", rounding="truncate", weight_bits=6),
]
qzs = [Quantizers.from_spec(q) if q.scheme == "itq" else Quantizers.fp32() for q in specs]
pix = 0.3 + 0.7 * torch.rand(6, 64, generator=torch.Generator().manual_seed(5))


def start(q):
    g = torch.Generator().manual_seed(0)
    net = sim.init_net(cfg, g)
    return net if q.is_fp32 else sim.quantize_net(net, cfg, q, g)


def gpu_like(b):
    n = cfg.n_exc
    b.gpu = gpu_kernels.LearnLaunch(
        torch.device("cpu"), b.fq, b.nc, b.lr, b.norm, b.window, b.theta_decay, cfg.n_in, n
    )
    b.acc_t = torch.as_tensor(b.acc).clone()
    b.n_cols_t = torch.zeros(b.k, dtype=torch.int64)
    b.v0_t = torch.as_tensor(b.st0[:, K.S_V]).clone()
    b.iv0_t = torch.as_tensor(b.st0[:, K.S_INHV]).clone()
    return b


out = {}
sched = {2: prune / 2, 4: prune} if prune else {}
for name in ("numba", "triton"):
    b = sim.DesignBatch([start(q) for q in qzs], cfg, qzs)
    if name == "triton":
        b = gpu_like(b)
    g = torch.Generator().manual_seed(1)
    stats = [OpCounts() for _ in qzs]
    t0 = time.time()
    counts = []
    for i, p in enumerate(pix):
        counts.append(b.train_sample(p, g, stats))
        if i + 1 in sched:
            b.prune(sched[i + 1], g, stats)
    out[name] = (torch.stack(counts), b.nets(), [s.to_dict() for s in stats])
    print(name, f"{time.time() - t0:.1f} s", float(out[name][0].sum()))
(cn, nn, sn), (ct, nt, st) = out["numba"], out["triton"]
print("counts equal:", torch.equal(cn, ct))
for a, c in zip(nn, nt, strict=True):
    print(
        "w maxdiff",
        float((a.w - c.w).abs().max()),
        "theta maxdiff",
        float((a.theta - c.theta).abs().max()),
        "keep equal",
        (a.keep is None and c.keep is None) or torch.equal(a.keep, c.keep),
        "pruned w zero",
        None if c.keep is None else float(c.w[~c.keep].abs().max()),
    )
print("stats equal:", sn == st)
for a, c in zip(sn, st, strict=True):
    print("stats that differ:", {k: (a[k], c[k]) for k in a if a[k] != c[k]})
