"""STDP-pruned ITQ points trained as one design batch against one after another (issue
15; docs/benchmarks.md).

    TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/prune_batch_speed.py \
        [--neurons 400] [--train-samples 1000] [--threads 2]

Four ITQ points of one 400-neuron tinySNN network with STDP pruning to 0.5 (10 rounds
up to half the images), on the first MNIST training images: ``runner.train_batch`` (one
Numba design batch) and ``runner.train`` of each point in turn, with their wall time and
how much of each point's mask the two share.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse import runner
from tinysnn_dse.core.params import QuantSpec, preset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=400)
    ap.add_argument("--train-samples", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = preset("tinysnn", 784, a.neurons, "mnist", prune=0.5)
    specs = [
        QuantSpec(scheme="itq", rounding="nearest", weight_bits=8),
        QuantSpec(scheme="itq", rounding="truncate", weight_bits=8),
        QuantSpec(scheme="itq", rounding="nearest", weight_bits=4),
        QuantSpec(scheme="itq", rounding="stochastic", weight_bits=8),
    ]
    s = runner.RunSettings(dataset="mnist", train_samples=a.train_samples, test_samples=100,
                           seed=0, threads=a.threads).validate()  # fmt: skip
    split = runner.make_split(data_mod.load("mnist", None), s, torch.device("cpu"))
    warm = dataclasses.replace(split, train_x=split.train_x[:20], train_y=split.train_y[:20])
    runner.train_batch(cfg, specs[:1], s, warm)  # compiles the kernels
    t0 = time.perf_counter()
    batched = runner.train_batch(cfg, specs, s, split)
    t_batch = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = [runner.train(cfg, q, s, split) for q in specs]
    t_single = time.perf_counter() - t0
    n = len(specs) * a.train_samples
    # a batch shares its random numbers among its points (re-presented images too), so its
    # points drift from their single runs: how much of each mask they still share
    same = [
        round(float((b.net.keep & o.net.keep).sum() / o.net.keep.sum()), 3)  # type: ignore[operator]
        for b, o in zip(batched, single, strict=True)
    ]
    print(f"{len(specs)} points x {a.train_samples} images, {a.neurons} neurons, prune 0.5 STDP, "
          f"{a.threads} threads: batch {t_batch:.1f} s ({n / t_batch:,.0f} point-images/s), "
          f"one after another {t_single:.1f} s ({n / t_single:,.0f}); speed-up "
          f"{t_single / t_batch:.2f}x; share of each single run's retained synapses the batch "
          f"retains: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
