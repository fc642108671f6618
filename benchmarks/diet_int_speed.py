"""The gradient-trained family's integer inference against its float inference, back to
back in one process (docs/benchmarks.md, "The gradient-trained family"): 784-400-10 at
T = 4 trained one epoch on 20,000 MNIST images, then three rounds over the 10,000 test
images, batch 1,000, 2 threads: float32, float32 on the W8/V16/T16 grid, and the integer
datapath of the same design (core/diet_integer.py).

    TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/diet_int_speed.py
"""

from __future__ import annotations

import time

import torch

from tinysnn_dse import data
from tinysnn_dse.core import diet
from tinysnn_dse.core import diet_integer as di


def main() -> None:
    torch.set_num_threads(2)
    ds = data.load("mnist", None)
    x = torch.tensor(ds.train_images[:20000], dtype=torch.float32) / 255
    y = torch.tensor(ds.train_labels[:20000]).long()
    xe = torch.tensor(ds.test_images, dtype=torch.float32) / 255
    g = torch.Generator().manual_seed(0)
    net = diet.init_net(diet.DietConfig(), g)
    diet.train(net, x, y, diet.TrainConfig(epochs=1), g)
    f = diet.formats_for(diet.observe(net, x[:1000]), 8, 16, 16)
    dep, steps = diet.deployed(net, f, None)
    d = di.design_of(dep, f)
    px = di.pixels(xe)
    keys = torch.arange(len(px))
    n = len(xe)
    for r in range(3):
        t0 = time.perf_counter()
        diet.predict(net, xe)
        tf = time.perf_counter() - t0
        t0 = time.perf_counter()
        diet.predict(dep, xe, formats=steps)
        tq = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            di.infer(d, px[i : i + 1000], keys[i : i + 1000])
        ti = time.perf_counter() - t0
        print(f"round {r}: float {n / tf:,.0f}, float on the grid {n / tq:,.0f}, "
              f"integer {n / ti:,.0f} images/s; integer / float {tf / ti:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
