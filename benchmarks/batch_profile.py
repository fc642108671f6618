"""Where a design batch's time goes: 9 ITQ points trained together from a trained network.

Usage: TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/batch_profile.py \
    CHECKPOINT ROUNDING [WEIGHT_BITS] [IMAGES] [fresh]
CHECKPOINT: a tinySNN FP32 model.pt trained on all of MNIST (docs/benchmarks.md);
ROUNDING: truncate, nearest or stochastic; WEIGHT_BITS: comma-separated, default
16,12,10 (x Vmem/Vth bits {32, 16, 8}); IMAGES: default 60. One thread. The points
start from the trained network (late in a pass), or with `fresh` from a fresh one, as
`explore` trains them (the formats' integer bits come from the checkpoint's thresholds
either way, as `explore` takes them from the FP32 point's).

Prints the batch's rate, then the time per training image of the compiled presentation
kernel, normalisation, torch uniforms (spike trains), building the spike index lists and
hashing uniforms, each timed around its calls (the rest is Python around them), and the
presentations per point (re-presentations of images that drew too few spikes).
"""

import collections
import sys
import time
from pathlib import Path

import torch
from itq_formats import itq_formats  # type: ignore[import-not-found]  # (benchmarks/)

from tinysnn_dse import data as data_mod
from tinysnn_dse.core import kernels, sim
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.runner import load_checkpoint

if len(sys.argv) < 3:
    sys.exit(__doc__)
ckpt, rounding = Path(sys.argv[1]), sys.argv[2]
wbits = [int(b) for b in (sys.argv[3] if len(sys.argv) > 3 else "16,12,10").split(",")]
n_img = int(sys.argv[4]) if len(sys.argv) > 4 else 60
fresh = len(sys.argv) > 5 and sys.argv[5] == "fresh"
torch.set_num_threads(1)
t = load_checkpoint(ckpt, "cpu")
cfg = t.model
x = torch.from_numpy(data_mod.load("mnist", None).train_images[: n_img + 3].copy()) / 255.0
g = torch.Generator().manual_seed(0)
# the formats' ranges as explore takes them: the FP32 network's, observed on 200 images
qzs = itq_formats(t.net, cfg, x[:200], rounding, wbits, "batch_profile")
start = sim.init_net(cfg, g) if fresh else t.net
batch = sim.DesignBatch([sim.quantize_net(start, cfg, q, g) for q in qzs], cfg, qzs)
for i in range(3):  # warm-up: JIT compilation
    batch.train_sample(x[n_img + i].float(), g)

spent: dict[str, float] = collections.defaultdict(float)


def timed(owner: object, name: str, label: str) -> None:
    """Time ``owner.name`` under ``label`` (skipped where older code lacks it)."""
    f = getattr(owner, name, None)
    if f is None:
        return

    def wrapper(*a, **k):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            spent[label] += time.perf_counter() - t0

    setattr(owner, name, wrapper)


timed(kernels, "learn_tinysnn_multi", "presentation kernel")
timed(kernels, "learn_batch_boosted", "presentation kernel")  # (the boosting loop inside)
timed(kernels, "normalize_multi", "normalisation")
timed(torch, "rand", "torch uniforms")
timed(sim, "_by_input", "spike index lists")
timed(kernels, "hash_block", "hashed uniforms")
stats = [OpCounts() for _ in qzs]
t0 = time.perf_counter()
for i in range(n_img):
    batch.train_sample(x[i].float(), g, stats)
dt = time.perf_counter() - t0
print(f"{rounding}, weight bits {wbits}: {n_img / dt:.1f} images/s, {dt / n_img * 1e3:.1f} ms each")
for label, s in sorted(spent.items(), key=lambda kv: -kv[1]):
    print(f"  {label}: {s / n_img * 1e3:.2f} ms/image ({s / dt:.0%})")
rest = dt - sum(spent.values())
print(f"  the rest (Python): {rest / n_img * 1e3:.2f} ms/image ({rest / dt:.0%})")
pres = [st.presentations / n_img for st in stats]
print(f"  presentations per image and point: {min(pres):.2f} .. {max(pres):.2f}")
print(f"  input spikes per presentation: {stats[0].input_spikes / stats[0].presentations:.0f}")
