"""What ITQ's small changes do besides the thresholds' (docs/model.md, "What else ITQ
changes by small steps"): the Vmem leak near rest, Vmem under MNIST input against its FP32
trajectory, and the column sums of 8-bit weights under normalisation, per rounding.

    TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/itq_review.py

One thread; about two minutes on the 2-core machine.
"""

from __future__ import annotations

import numpy as np
import torch

from tinysnn_dse import data as dm
from tinysnn_dse.core import sim
from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.core.quant import FixedPoint, Quantizers, quantize

ROUNDINGS = ["truncate", "nearest", "stochastic"]
FORMATS = [
    ("16-bit sQ11.4", FixedPoint(16, 11, True)),
    ("16-bit sQ7.8", FixedPoint(16, 7, True)),
    ("8-bit sQ7.0", FixedPoint(8, 7, True)),
    ("8-bit sQ11.-4", FixedPoint(8, 11, True)),
]


def relax(c: sim.LIFConsts, g: torch.Generator) -> None:
    print("## Vmem relaxing from reset (-60 mV) to rest (-65 mV), no input, 250 steps")
    fp, v = [], -60.0
    for _ in range(250):
        v = c.v_rest + (v - c.v_rest) * c.decay
        fp.append(v)
    print(f"FP32 after 250 steps: {fp[-1]:.3f} mV")
    for name, f in FORMATS:
        row = []
        for r in ROUNDINGS:
            q, vals = torch.tensor([-60.0]), []
            for _ in range(250):
                q = quantize((q - c.v_rest) * c.decay + c.v_rest, f, r, g)  # type: ignore[arg-type]
                vals.append(float(q))
            dev = np.abs(np.array(vals) - np.array(fp)).max() / f.eps
            row.append(f"{r}: end {vals[-1]:.3f} mV, max |dev| {dev:.1f} steps")
        print(f"{name} (step {f.eps:g} mV): " + "; ".join(row))


def under_input(c: sim.LIFConsts, x: torch.Tensor, g: torch.Generator) -> None:
    print("## Vmem under MNIST input (one neuron, threshold out of reach), 250 steps, 20 images")
    w = sim.init_net(preset("tinysnn", 784, 1), torch.Generator().manual_seed(1)).w[:, 0]
    for name, f in FORMATS:
        row = []
        for r in ROUNDINGS:
            biases, devs = [], []
            for i in range(20):
                gi = torch.Generator().manual_seed(100 + i)
                cur = sim.poisson(x[i : i + 1], 250, 0.128, gi)[0].float() @ w
                v_f, v_q, dv = -65.0, torch.tensor([-65.0]), []
                for t in range(250):
                    v_f = c.v_rest + (v_f - c.v_rest) * c.decay + float(cur[t])
                    xq = (v_q - c.v_rest) * c.decay + c.v_rest + cur[t]
                    v_q = quantize(xq, f, r, g)  # type: ignore[arg-type]
                    dv.append(float(v_q) - v_f)
                biases.append(np.mean(dv))
                devs.append(np.max(np.abs(dv)))
            b = float(np.mean(biases))
            row.append(
                f"{r}: bias {b:+.3f} mV ({b / f.eps:+.1f} steps), max |dev| {max(devs):.2f} mV"
            )
        print(f"{name}: " + "; ".join(row))


def normalisation(ds: dm.Dataset) -> None:
    print("## weights under normalisation, ITQ W8 (uQ1.7), FP32 neurons, 300 MNIST images")
    cfg = preset("tinysnn", 784, 100)
    for r in ["fp32", *ROUNDINGS]:
        fp32 = r == "fp32"
        q = QuantSpec() if fp32 else QuantSpec(scheme="itq", rounding=r, weight_bits=8)  # type: ignore[arg-type]
        qz = Quantizers.fp32() if fp32 else Quantizers.from_spec(q)
        g = torch.Generator().manual_seed(0)
        net = sim.init_net(cfg, g)
        if not fp32:
            net = sim.quantize_net(net, cfg, qz, g)
        sums = []
        for i in range(300):
            img = torch.from_numpy(ds.train_images[i].astype(np.float32)) / 255
            net, _ = sim.train_sample(net, img, cfg, qz, g)
            if i in (0, 9, 99, 299):
                sums.append(f"{float(net.w.sum(0).mean()):.2f}")
        zeros = float((net.w == 0).float().mean())
        print(
            f"{r}: mean column sum after sample 1/10/100/300: {', '.join(sums)} "
            f"(target {cfg.norm:.1f}); zero weights {zeros:.1%}"
        )


def main() -> None:
    torch.set_num_threads(1)
    ds = dm.load("mnist")
    c = sim.consts(preset("tinysnn", 784, 1)).exc
    g = torch.Generator().manual_seed(0)
    relax(c, g)
    x = torch.from_numpy(ds.train_images[:20].astype(np.float32)) / 255
    under_input(c, x, g)
    normalisation(ds)


if __name__ == "__main__":
    main()
