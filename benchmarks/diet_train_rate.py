"""The gradient-trained family's training and inference rates on one machine, for an A/B
of core/diet.py against an earlier commit (docs/benchmarks.md): 784-400-10 at T = 4, one
epoch on 20,000 MNIST images, best of 3, 2 threads. Run it alternately on two checkouts:

    for i in 1 2 3; do for src in /tmp/wt_old/src src; do
      TINYSNN_DATA_DIR=../shared/data PYTHONPATH=$src .venv/bin/python \\
          benchmarks/diet_train_rate.py $src; done; done
"""

from __future__ import annotations

import sys
import time

import torch

from tinysnn_dse import data
from tinysnn_dse.core import diet


def main() -> None:
    torch.set_num_threads(2)
    ds = data.load("mnist", None)
    x = torch.tensor(ds.train_images[:20000], dtype=torch.float32) / 255
    y = torch.tensor(ds.train_labels[:20000]).long()
    best_t = best_i = 0.0
    for _ in range(3):
        g = torch.Generator().manual_seed(0)
        net = diet.init_net(diet.DietConfig(), g)
        t0 = time.perf_counter()
        diet.train(net, x, y, diet.TrainConfig(epochs=1), g)
        best_t = max(best_t, len(x) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        diet.predict(net, x)
        best_i = max(best_i, len(x) / (time.perf_counter() - t0))
    label = sys.argv[1] if len(sys.argv) > 1 else ""
    print(f"{label} train {best_t:,.0f} img/s, infer {best_i:,.0f} img/s (best of 3)")


if __name__ == "__main__":
    main()
