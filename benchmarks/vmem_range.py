"""How far the potentials of a trained network reach, in FP32, at inference and in learning
(docs/model.md, "Formats from observed ranges, at both ends").

    TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/vmem_range.py [TRAIN] [NEURONS]

Trains tinySNN FP32 on the first TRAIN MNIST images (default 5,000; 400 neurons), then
records every potential (before a reset) of 100 test images at inference and of 20
training images with learning on, through the reference path, and prints the range, the
thresholds' range, and the share of neuron-steps below -128, -256 and -512 mV.
"""

from __future__ import annotations

import sys

import torch

from tinysnn_dse import data as dm
from tinysnn_dse import runner
from tinysnn_dse.core import sim
from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.core.quant import Quantizers


def main() -> None:
    n_train = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    n_exc = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    torch.set_num_threads(2)
    ds = dm.load("mnist")
    model = preset("tinysnn", 784, n_exc, "mnist")
    s = runner.RunSettings(dataset="mnist", train_samples=n_train, test_samples=300)
    split = runner.make_split(ds, s, torch.device("cpu"))
    tr = runner.train(model, QuantSpec(), s, split)
    th = tr.net.theta + model.exc.v_th_mv
    print(f"thresholds {float(th.min()):.1f} .. {float(th.max()):.1f} mV")
    vals: list[torch.Tensor] = []
    orig = sim.lif_integrate

    def record(st, i, c, qv):  # type: ignore[no-untyped-def]
        v = orig(st, i, c, qv)
        vals.append(v.flatten().clone())
        return v

    sim.lif_integrate = record  # type: ignore[assignment]
    g = torch.Generator().manual_seed(1)
    trains = sim.poisson_trains(split.eval_x[:100], 250, sim.rate_scale(model), g)
    sim.simulate_reference(tr.net, trains.dense(), model, Quantizers.fp32(), g, learn=False)
    report("inference", torch.cat(vals))
    vals.clear()
    net = tr.net
    for i in range(20):
        x = split.train_x[i]
        net, _ = sim.train_sample(net, x, model, Quantizers.fp32(), g, backend="reference")
    report("learning", torch.cat(vals))
    sim.lif_integrate = orig  # type: ignore[assignment]


def report(what: str, v: torch.Tensor) -> None:
    below = ", ".join(
        f"< {lo} mV {float((v < lo).float().mean()):.2%}" for lo in (-128, -256, -512)
    )
    print(f"{what}: Vmem {float(v.min()):.1f} .. {float(v.max()):.1f} mV; {below}")


if __name__ == "__main__":
    main()
