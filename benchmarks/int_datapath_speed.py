"""Inference rate of the integer datapath against the float32 datapath it replaced, in one
process, on the same network and the same stored spike trains (docs/benchmarks.md).

    TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/int_datapath_speed.py \
        CHECKPOINT [ROUNDING ...]

CHECKPOINT: a 784-input tinySNN model.pt (e.g. `tinysnn train --dataset mnist --neurons
400 --train-samples 10000 --out runs/ck400`). Quantizes it at W8/V16/T16 (Vmem range
[-1200, 300] mV, Vth [-60, 300] mV) with each rounding (default nearest and stochastic),
draws the trains of the first 2,048 test images once (one thread), and times the kernel
on them three times each way, alternating: ``sim.infer_fast`` (integer datapath) and
``kernels.infer_batch`` through ``marshal._infer_float`` (the float32 datapath).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse.core import kernels, marshal, sim
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.core.quant import Quantizers
from tinysnn_dse.runner import Trained, load_checkpoint


def case(trained: Trained, xi: torch.Tensor, rounding: str) -> None:
    """Time one rounding both ways and print its table row."""
    cfg = trained.model
    q = QuantSpec(rounding=rounding, weight_bits=8, vmem_bits=16, vth_bits=16,  # type: ignore[arg-type]
                  vmem_range_mv=(-1200.0, 300.0), vth_range_mv=(-60.0, 300.0))  # fmt: skip
    qz = Quantizers.from_spec(q)
    g = torch.Generator().manual_seed(1)
    net = sim.quantize_net(trained.net, cfg, qz, g)
    trains = sim.skip_trains(xi, cfg.encoding.steps, sim.rate_scale(cfg, 0), g)
    b, n = len(xi), cfg.n_exc
    img_ptr = np.zeros(b + 1, dtype=np.int64)
    np.cumsum(torch.bincount(trains.img, minlength=b).numpy(), out=img_ptr[1:])
    tr = (img_ptr, trains.pix.numpy(), trains.spikes.numpy(), np.zeros(0))

    def run_int() -> float:
        return float(sim.infer_fast(net, trains, cfg, qz, g).sum())

    def run_float() -> float:
        none = np.zeros((0, 0), dtype=np.float32)
        counts = np.zeros((b, n), dtype=np.float32)
        out = kernels.Images(none, none, counts, np.zeros(b, np.int64),
                             np.repeat(sim.new_meter()[None], b, 0), np.zeros(0, np.int64),
                             np.zeros(b, np.int64))  # fmt: skip
        marshal._infer_float(net, tr, (0, 12345), cfg.encoding.steps, cfg, qz, g, out)
        return float(counts.sum())

    best = {"integer": 0.0, "float32": 0.0}
    spikes = {}
    for name, f in [("integer", run_int), ("float32", run_float)] * 4:
        t0 = time.perf_counter()
        spikes[name] = f()
        rate = b / (time.perf_counter() - t0)
        best[name] = max(best[name], rate)  # the first call of each compiles
    print(f"| {rounding} W8/V16/T16 | {best['float32']:,.0f} | {best['integer']:,.0f} | "
          f"{best['integer'] / best['float32']:.3f} | {spikes['float32'] / b:.2f}, "
          f"{spikes['integer'] / b:.2f} |", flush=True)  # fmt: skip


def main() -> None:
    torch.set_num_threads(1)
    trained = load_checkpoint(Path(sys.argv[1]))
    ds = data_mod.load("mnist", None)
    xi = torch.from_numpy(ds.test_images[:2048].copy()).float() / 255
    for rounding in sys.argv[2:] or ["nearest", "stochastic"]:
        case(trained, xi, rounding)


if __name__ == "__main__":
    main()
