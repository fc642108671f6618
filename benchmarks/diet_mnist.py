"""The gradient-trained family (core/diet.py) on MNIST: training rate, float inference
rate and test accuracy per epoch, for issue 24's targets (docs/benchmarks.md).

    TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/diet_mnist.py \
        [--epochs 5] [--hidden 400] [--timesteps 4] [--encoding direct] [--lr 1e-3] \
        [--batch-size 100] [--threads 2] [--seed 0] [--dataset mnist] [--holdout 0]

``--holdout N`` keeps the last N training images out of training and reports accuracy on
them instead of the test set (how defaults are tuned: on training holdouts only).
"""

from __future__ import annotations

import argparse
import time

import torch

from tinysnn_dse import data
from tinysnn_dse.core import diet, diet_integer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--hidden", type=int, nargs="+", default=[400])
    ap.add_argument("--timesteps", type=int, default=4)
    ap.add_argument("--encoding", default="direct")
    ap.add_argument("--trainable", default="both")
    ap.add_argument("--leak", type=float, default=1.0)
    ap.add_argument("--threshold", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--holdout", type=int, default=0)
    ap.add_argument("--constant-lr", action="store_true")
    ap.add_argument("--ptq", nargs="*", default=[], help="W,V,T bit widths, e.g. 8,16,16")
    ap.add_argument("--rounding", default="nearest")
    ap.add_argument("--qat", nargs="*", default=[], help="W,V,T: fine-tune quantization-aware")
    ap.add_argument("--qat-epochs", type=int, default=2)
    ap.add_argument("--surrogate", default="linear", help="linear or fast-sigmoid")
    ap.add_argument(
        "--qat-scratch",
        nargs="*",
        default=[],
        help="W,V,T: quantization-aware training from the seed's initial weights "
        "for --epochs at --lr, in the formats of the FP32 training's ranges",
    )
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ds = data.load(a.dataset)
    x = torch.tensor(ds.train_images, dtype=torch.float32) / 255.0
    y = torch.tensor(ds.train_labels, dtype=torch.int64)
    if a.holdout:
        xe, ye, x, y = x[-a.holdout :], y[-a.holdout :], x[: -a.holdout], y[: -a.holdout]
    else:
        xe = torch.tensor(ds.test_images, dtype=torch.float32) / 255.0
        ye = torch.tensor(ds.test_labels, dtype=torch.int64)
    cfg = diet.DietConfig(n_in=x.shape[1], hidden=tuple(a.hidden), timesteps=a.timesteps,
                          surrogate=a.surrogate,
                          encoding=a.encoding, trainable=a.trainable, leak=a.leak,
                          threshold=a.threshold)  # fmt: skip
    g = torch.Generator().manual_seed(a.seed)
    net = diet.init_net(cfg, g)
    tc = diet.TrainConfig(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                          anneal=not a.constant_lr)  # fmt: skip
    print(f"{a.dataset} {cfg.sizes} T={cfg.timesteps} {cfg.encoding} trainable={cfg.trainable} "
          f"lr={a.lr} {'constant' if a.constant_lr else 'cosine'} batch={a.batch_size} "
          f"threads={a.threads} seed={a.seed} "
          f"eval on {'holdout ' + str(a.holdout) if a.holdout else 'test'}")  # fmt: skip
    clock = [time.perf_counter()]

    def report(ep: int, loss: float) -> None:
        dt = time.perf_counter() - clock[0]
        t1 = time.perf_counter()
        pred = diet.predict(net, xe, generator=torch.Generator().manual_seed(a.seed + 1))
        di = time.perf_counter() - t1
        acc = float((pred == ye).float().mean()) * 100
        leaks = [round(float(v.detach()), 3) for v in net.leak]
        thetas = [round(float(v.detach()), 3) for v in net.theta]
        print(f"epoch {ep + 1}: loss {loss:.4f}, {len(x) / dt:,.0f} train img/s, "
              f"{len(xe) / di:,.0f} infer img/s, acc {acc:.2f} %, leak {leaks}, "
              f"theta {thetas}", flush=True)  # fmt: skip
        clock[0] = time.perf_counter()

    diet.train(net, x, y, tc, g, on_epoch=report)
    if not (a.ptq or a.qat or a.qat_scratch):
        return
    ranges = diet.observe(net, x[:10000])
    print(f"observed ranges: {ranges}")

    def bits(spec: str) -> list[int | None]:
        return [None if b == "fp32" else int(b) for b in spec.split(",")]

    def accuracy(fmts: diet.Formats | None) -> float:
        pred = diet.predict(net, xe, generator=torch.Generator().manual_seed(a.seed + 1),
                            formats=fmts)  # fmt: skip
        return float((pred == ye).float().mean()) * 100

    fp32 = accuracy(None)
    for spec in a.ptq:
        f = diet.formats_for(ranges, *bits(spec), rounding=a.rounding)
        print(f"PTQ W/V/T {spec} {a.rounding}: acc {accuracy(f):.2f} % (FP32 {fp32:.2f} %)")
        if diet_integer.why_not(cfg, f) is None:  # the integer datapath (all fixed point)
            dep, _steps = diet.deployed(net, f, torch.Generator().manual_seed(a.seed + 1))
            d = diet_integer.design_of(dep, f)
            px = diet_integer.pixels(xe)
            keys = torch.arange(px.shape[0], dtype=torch.int64)
            t0 = time.perf_counter()
            out = torch.cat([diet_integer.infer(d, px[i : i + 1000], keys[i : i + 1000])[0]
                             for i in range(0, px.shape[0], 1000)])  # fmt: skip
            dt = time.perf_counter() - t0
            acc_i = float((out.argmax(dim=1) == ye).float().mean()) * 100
            print(f"  integer datapath: acc {acc_i:.2f} %, {px.shape[0] / dt:,.0f} img/s")
    state = [w.detach().clone() for w in net.w + net.leak + net.theta]
    for spec in a.qat:
        with torch.no_grad():  # each QAT run starts from the FP32 training
            for p_, v in zip(net.w + net.leak + net.theta, state, strict=True):
                p_.copy_(v)
        f = diet.formats_for(ranges, *bits(spec), rounding=a.rounding)
        before = accuracy(f)
        qc = diet.TrainConfig(epochs=a.qat_epochs, batch_size=a.batch_size, lr=a.lr / 10)
        diet.train(net, x, y, qc, torch.Generator().manual_seed(a.seed + 2), formats=f)
        print(f"QAT W/V/T {spec} {a.rounding}: acc {accuracy(f):.2f} % after {a.qat_epochs} "
              f"epochs at lr {a.lr / 10:g} from the FP32 training (PTQ {before:.2f} %, "
              f"FP32 {fp32:.2f} %)")  # fmt: skip
    for spec in a.qat_scratch:
        f = diet.formats_for(ranges, *bits(spec), rounding=a.rounding)
        g2 = torch.Generator().manual_seed(a.seed)
        net = diet.init_net(cfg, g2)  # the seed's initial weights, as the FP32 training's
        t0 = time.perf_counter()
        diet.train(net, x, y, tc, g2, formats=f)
        print(f"QAT W/V/T {spec} {a.rounding} from scratch: acc {accuracy(f):.2f} % after "
              f"{a.epochs} epochs at lr {a.lr:g} ({time.perf_counter() - t0:.0f} s; "
              f"FP32 {fp32:.2f} %)")  # fmt: skip


if __name__ == "__main__":
    main()
