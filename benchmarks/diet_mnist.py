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
from tinysnn_dse.core import diet


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
                          encoding=a.encoding, trainable=a.trainable, leak=a.leak,
                          threshold=a.threshold)  # fmt: skip
    g = torch.Generator().manual_seed(a.seed)
    net = diet.init_net(cfg, g)
    tc = diet.TrainConfig(epochs=1, batch_size=a.batch_size, lr=a.lr)
    print(f"{a.dataset} {cfg.sizes} T={cfg.timesteps} {cfg.encoding} trainable={cfg.trainable} "
          f"lr={a.lr} batch={a.batch_size} threads={a.threads} seed={a.seed} "
          f"eval on {'holdout ' + str(a.holdout) if a.holdout else 'test'}")  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    for ep in range(a.epochs):
        t0 = time.perf_counter()
        loss = diet.train(net, x, y, tc, g, optimizer=opt)[0]
        dt = time.perf_counter() - t0
        t1 = time.perf_counter()
        pred = diet.predict(net, xe, generator=torch.Generator().manual_seed(a.seed + 1))
        di = time.perf_counter() - t1
        acc = float((pred == ye).float().mean()) * 100
        leaks = [round(float(v), 3) for v in net.leak]
        thetas = [round(float(v), 3) for v in net.theta]
        print(f"epoch {ep + 1}: loss {loss:.4f}, {len(x) / dt:,.0f} train img/s, "
              f"{len(xe) / di:,.0f} infer img/s, acc {acc:.2f} %, leak {leaks}, "
              f"theta {thetas}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
