"""Loading and binning an event data set against training on it (issue 27,
docs/benchmarks.md): 10,000 N-MNIST-sized training samples (34 x 34 x 2 sensor, about
4,200 events over 300 ms each, as N-MNIST's) plus 1,000 test samples are written here in
N-MNIST's binary format (tests/event_files.py), then read by tonic and binned into 8
frames (``data.load``), then one epoch of training is timed on them: the gradient-trained
family (2312-400-10, T = 8, events) and the STDP family (tinySNN, 400 neurons, the event
counts as rates).

    .venv/bin/python benchmarks/event_load.py --threads 1 --dir /tmp/nmnist-bench
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import event_files as ef  # noqa: E402

from tinysnn_dse import data as data_mod  # noqa: E402
from tinysnn_dse import runner  # noqa: E402
from tinysnn_dse.core.params import QuantSpec  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train", type=int, default=10_000)
    ap.add_argument("--test", type=int, default=1_000)
    ap.add_argument("--events", type=int, default=4_200)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/nmnist-bench"))
    ap.add_argument("--stdp-samples", type=int, default=2_000,
                    help="training samples the STDP epoch is timed on (its rate is per sample)")  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = args.dir / "NMNIST"
    if not root.exists():
        t0 = time.perf_counter()
        ef.write_nmnist(root, per_class=(args.train // 10, args.test // 10), events=args.events)
        print(f"wrote {args.train + args.test:,} samples in {time.perf_counter() - t0:.1f} s")
    name = data_mod.check_name(str(root))
    t0 = time.perf_counter()
    import tonic  # noqa: F401  (its import, librosa's included, is timed apart)

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = data_mod.load(name)
    t_load = time.perf_counter() - t0
    n = len(ds.train_images) + len(ds.test_images)
    ev_per = np.mean([p.stat().st_size / 5 for p in list(root.rglob("*.bin"))[:200]])
    print(f"tonic import {t_import:.1f} s; read + bin {n:,} samples ({ev_per:,.0f} events "
          f"each, 8 bins): {t_load:.1f} s = {n / t_load:,.0f} samples/s")  # fmt: skip
    s = runner.RunSettings(dataset=name, seed=0, threads=args.threads, device="cpu").validate()
    split = runner.make_split(ds, s, torch.device("cpu"))
    fam = runner.family_of("diet")
    m = fam.model("diet", ds.n_in, 400, 10, name, {"timesteps": 8, "epochs": 1})
    t0 = time.perf_counter()
    runner.train(m, QuantSpec(), s, split)
    t_diet = time.perf_counter() - t0
    print(f"diet 2312-400-10, T = 8, one epoch on {len(ds.train_images):,}: {t_diet:.1f} s "
          f"= {len(ds.train_images) / t_diet:,.0f} samples/s")  # fmt: skip
    k = min(args.stdp_samples, len(ds.train_images))
    s2 = runner.RunSettings(dataset=name, seed=0, threads=args.threads, device="cpu",
                            train_samples=k, test_samples=100).validate()  # fmt: skip
    split2 = runner.make_split(ds, s2, torch.device("cpu"))
    mt = runner.family_of("tinysnn").model("tinysnn", ds.n_in, 400, 10, name, {})
    t0 = time.perf_counter()
    runner.train(mt, QuantSpec(), s2, split2)
    t_stdp = time.perf_counter() - t0
    per_epoch = t_stdp / k * len(ds.train_images)
    print(f"tinySNN 400, first {k:,} samples of an epoch: {t_stdp:.1f} s = {k / t_stdp:,.0f} "
          f"samples/s; an epoch on {len(ds.train_images):,}: {per_epoch:.0f} s")  # fmt: skip
    share = len(ds.train_images) / n
    print(f"loading the training samples ({share:.0%} of the load) against one epoch: "
          f"{t_load * share / t_diet:.2f} x diet's, {t_load * share / per_epoch:.2f} x tinySNN's")


if __name__ == "__main__":
    main()
