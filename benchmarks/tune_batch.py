"""Tune learning parameters on a training holdout with K variants trained together.

The variants (``--variant "theta_plus_mv=3,eta=0.02"``; an empty string is the defaults)
may differ in the parameters of ``sim.BATCH_PARAMS``; they are trained as one design
batch on shared input (common random numbers: the same spikes for every variant, so the
comparison is paired), FP32, one pass, then each is scored on the last ``--holdout``
training images with labels assigned on the first ``--assign-samples``, under every
readout; ``--seeds 0,1,2`` repeats it per seed and reports the mean and spread. The test
set is never read. On CUDA the batch runs in the fused Triton kernels, one GPU program per
variant; on the CPU in Numba threads.

    python benchmarks/tune_batch.py --dataset mnist --train-samples 50000 --holdout 10000 \\
        --device cuda --variant "" --variant theta_plus_mv=3 --json tune.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from tinysnn_dse import data as data_mod
from tinysnn_dse.cli import parse_params
from tinysnn_dse.core.params import READOUTS, QuantSpec, apply_overrides, preset
from tinysnn_dse.core.sim import check_batch_configs
from tinysnn_dse.errors import TinySNNError
from tinysnn_dse.runner import RunSettings, evaluate, make_split, resolve_device, train_batch


def parse_variant(text: str) -> dict[str, str]:
    """``"theta_plus_mv=3,eta=0.02"`` as `tinysnn train -p` reads each pair."""
    return parse_params([p for p in text.split(",") if p.strip()])


def main() -> None:
    try:
        run()
    except (TinySNNError, ValueError) as e:  # bad input: one line, exit 2
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def run() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--model", default="tinysnn")
    ap.add_argument("--neurons", type=int, default=400)
    ap.add_argument("--train-samples", type=int, default=50000)
    ap.add_argument("--holdout", type=int, default=10000)
    ap.add_argument("--assign-samples", type=int, default=10000)
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--json", default=None, help="write the rows to this file")
    a = ap.parse_args()
    variants = a.variant or [""]
    ds = data_mod.load(a.dataset, a.data_dir)
    base = preset(a.model, ds.n_in, a.neurons, a.dataset)
    models = [apply_overrides(base, parse_variant(v)) for v in variants]
    check_batch_configs(base, models)  # before any training
    device = resolve_device(a.device)
    seeds = [int(x) for x in a.seeds.split(",")]
    t0 = time.perf_counter()

    def progress(phase: str, done: int, total: int) -> None:
        if done % 2000 == 0 or done == total:
            print(f"{phase} {done}/{total} images, {time.perf_counter() - t0:.0f} s", flush=True)

    rows: list[dict[str, Any]] = []
    for seed in seeds:
        s = RunSettings(
            dataset=a.dataset, train_samples=a.train_samples, assign_samples=a.assign_samples,
            holdout=a.holdout, seed=seed, device=a.device,
        ).validate()  # fmt: skip
        split = make_split(ds, s, device)
        trained = train_batch(base, [QuantSpec()] * len(models), s, split, progress, models)
        for v, tr in zip(variants, trained, strict=True):
            by = dict(evaluate(tr, QuantSpec(), split).record.outcome.accuracy_by_readout)
            rows.append({"variant": v or "(defaults)", "seed": seed, **by})
            cells = "  ".join(f"{r} {100 * x:6.2f}" for r, x in by.items())
            print(f"seed {seed}  {v or '(defaults)':40s} {cells}", flush=True)
    print(f"{len(models)} variants x {len(seeds)} seeds, {a.train_samples} images each, "
          f"{a.dataset}, on {device}: {time.perf_counter() - t0:.0f} s; holdout accuracy %, "
          "mean (sd over seeds):")  # fmt: skip
    for v in variants:
        mine = [r for r in rows if r["variant"] == (v or "(defaults)")]
        cells = []
        for r in READOUTS:
            xs = [100 * m[r] for m in mine]
            sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
            cells.append(f"{r} {statistics.mean(xs):6.2f} ({sd:.2f})")
        print(f"{v or '(defaults)':40s} " + "  ".join(cells))
    if a.json:
        meta = {"settings": vars(a), "seconds": time.perf_counter() - t0, "device": str(device)}
        with open(a.json, "w") as f:
            json.dump({**meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
