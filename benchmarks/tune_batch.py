"""Tune learning parameters on a training holdout with K variants trained together.

The variants (``--variant "theta_plus_mv=3,eta=0.02"``; an empty string is the defaults)
may differ in the parameters of ``sim.BATCH_PARAMS``; they are trained as one design
batch on shared input (common random numbers: the same spikes for every variant, so the
comparison is paired), FP32, one pass, then each is scored on the last ``--holdout``
training images with labels assigned on the first ``--assign-samples``. The test set is
never read. On CUDA the batch runs in the fused Triton kernels, one GPU program per
variant; on the CPU in Numba threads.

    python benchmarks/tune_batch.py --dataset mnist --train-samples 50000 --holdout 10000 \\
        --device cuda --variant "" --variant theta_plus_mv=3 --json tune.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from tinysnn_dse import data as data_mod
from tinysnn_dse.cli import parse_params
from tinysnn_dse.core.params import QuantSpec, apply_overrides, preset
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
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--json", default=None, help="write the rows to this file")
    a = ap.parse_args()
    variants = a.variant or [""]
    ds = data_mod.load(a.dataset, a.data_dir)
    base = preset(a.model, ds.n_in, a.neurons)
    models = [apply_overrides(base, parse_variant(v)) for v in variants]
    check_batch_configs(base, models)  # before any training
    s = RunSettings(
        dataset=a.dataset, train_samples=a.train_samples, assign_samples=a.assign_samples,
        holdout=a.holdout, seed=a.seed, device=a.device,
    ).validate()  # fmt: skip
    device = resolve_device(a.device)
    split = make_split(ds, s, device)
    t0 = time.perf_counter()

    def progress(phase: str, done: int, total: int) -> None:
        if done % 2000 == 0 or done == total:
            print(f"{phase} {done}/{total} images, {time.perf_counter() - t0:.0f} s", flush=True)

    trained = train_batch(base, [QuantSpec()] * len(models), s, split, progress, models)
    train_s = time.perf_counter() - t0
    rows: list[dict[str, Any]] = []
    for v, tr in zip(variants, trained, strict=True):
        rec = evaluate(tr, QuantSpec(), split)
        rows.append({"variant": v or "(defaults)", "holdout_accuracy": rec["accuracy"]})
        print(f"{v or '(defaults)':45s} {100 * rec['accuracy']:6.2f} %", flush=True)
    print(
        f"{len(models)} variants, {a.train_samples} images each, {a.dataset}, on {device}: "
        f"batched training {train_s:.0f} s"
    )
    if a.json:
        meta = {"settings": vars(a), "train_seconds": train_s, "device": str(device)}
        with open(a.json, "w") as f:
            json.dump({**meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
