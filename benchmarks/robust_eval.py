"""The robustness evaluation's time for one design on 1,000 MNIST test images (issue 25,
docs/benchmarks.md): FGSM and PGD-10 at epsilon 0.1 / 0.2 / 0.3, white box (the
gradient-trained family) and transfer from the ANN 784-400-10, every set predicted on the
design's own datapath. The networks are trained briefly here (the time of the attack
does not depend on how well they learned, only on their size, T and datapath); the
ANN's training is timed apart, since a study trains it once for every point.

    TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/robust_eval.py --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse import runner
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.runner import robustness as rb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-samples", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    s = runner.RunSettings(dataset="mnist", train_samples=args.train_samples,
                           test_samples=args.samples, device="cpu").validate()  # fmt: skip
    ds = data_mod.load("mnist", None)
    split = runner.make_split(ds, s, torch.device("cpu"))
    store: dict = {}

    def cache(key, make):
        if key not in store:
            store[key] = make()
        return store[key]

    spec = rb.Robustness(samples=args.samples)
    t0 = time.perf_counter()
    rb.source_of(s, split, spec, cache)
    print(f"ANN 784-400-10, 10 epochs on {args.train_samples:,} images: "
          f"{time.perf_counter() - t0:.1f} s (once per study)")  # fmt: skip
    designs = [
        ("diet", {"timesteps": 4, "epochs": 1}, QuantSpec()),
        ("diet", {"timesteps": 16, "epochs": 1}, QuantSpec()),
        ("diet", {"timesteps": 4, "encoding": "poisson", "epochs": 1}, QuantSpec()),
        ("diet", {"timesteps": 4, "epochs": 1},
         QuantSpec(scheme="ptq", weight_bits=8, vmem_bits=16, vth_bits=16)),
        ("tinysnn", {}, QuantSpec()),
    ]  # fmt: skip
    for model, params, q in designs:
        fam = runner.family_of(model)
        m = fam.model(model, 784, 400, 10, "mnist", params)
        # the STDP family trains on the first 1,000 images only (its rate, not its accuracy)
        sub = (
            split
            if model == "diet"
            else runner.Split(
                split.train_x[:1000],
                split.train_y[:1000],
                split.assign_x[:1000],
                split.assign_y[:1000],
                split.eval_x,
                split.eval_y,
                split.eval_set,
                10,
            )
        )
        t = runner.train(m, QuantSpec(), s, sub)
        ev = runner.evaluate(t, q, sub)
        # the first design of a study crafts the transfer images; the others load them
        for label, c in (("images crafted", cache_without_images(store)),
                         ("images shared", cache)):  # fmt: skip
            rec = runner.robust_record(t, q, ev, sub, spec, c)
            print(
                f"{model} {params} {'fp32' if q.is_fp32 else 'W8/V16/T16'}, {label}: "
                f"{rec.outcome.robust_seconds:.1f} s for "
                f"{len(rec.outcome.robustness) - 1} adversarial sets of {args.samples:,} "
                f"images (datapath {ev.record.backend.get('infer_datapath', 'stdp')})"
            )


def cache_without_images(store: dict):
    """The ANN from ``store``, the transfer images made anew (the first design's cost)."""

    def cache(key, make):
        if key.startswith("adv:"):
            return make()
        if key not in store:
            store[key] = make()
        return store[key]

    return cache


if __name__ == "__main__":
    main()
