"""How real NIR consumers run the gradient-trained family's exported graph as written
(issue 24 item 5; docs/model.md, "The gradient-trained family": the agreement table).

Trains a diet network on MNIST, then on the first N test images compares the class each
consumer computes from ``model.nir`` (export/diet_nir.py) with tinysnn's own:

- FP32: the graph of the float network, against ``diet.predict`` (x = P / 255);
- fixed point: the exported design's graph, against the integer datapath the exported C
  reproduces bit for bit (x = P / 256);

for Norse 1.1.0's ``from_nir`` as written (hard reset, its default) and with its
``reset_method=reset_subtract``, and for snnTorch's ``import_from_nir`` where it is
importable (``PYTHONPATH=/tmp/snntlib`` after ``pip install --target /tmp/snntlib
--no-deps snntorch==1.0.0``).

    TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/diet_nir_check.py \\
        --epochs 3 --hidden 400 --timesteps 4 --samples 1000
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from tinysnn_dse import runner
from tinysnn_dse.core import diet
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.export import diet_nir, nir_check
from tinysnn_dse.export.design import export_design


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=400)
    ap.add_argument("--timesteps", type=int, default=4)
    ap.add_argument("--leak", default="lif")
    ap.add_argument("--leak-init", type=float, default=1.0)
    ap.add_argument("--trainable", default="both")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--bits", default="8,16,16")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(2)
    params = {"epochs": a.epochs, "timesteps": a.timesteps, "leak": a.leak,
              "leak_init": a.leak_init, "trainable": a.trainable}  # fmt: skip
    m = runner.family_of("diet").model("diet", 784, a.hidden, 10, "mnist", params)
    s = runner.RunSettings(dataset="mnist", test_samples=a.samples, seed=a.seed).validate()
    trained, ev = runner.train_and_evaluate(m, QuantSpec(), s)
    print(f"FP32 accuracy on {a.samples} test images: {ev.record.accuracy * 100:.2f} %")
    print(f"leaks: {[round(float(x), 4) for x in trained.net.leak]}, thresholds: "
          f"{[round(float(x), 4) for x in trained.net.theta]}")  # fmt: skip
    wb, vb, tb = (int(x) for x in a.bits.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = runner.save(Path(tmp) / "m", trained, ev)[0]
        t = runner.load_checkpoint(ckpt)
        res = export_design(t, QuantSpec("ptq", "nearest", wb, vb, tb), Path(tmp) / "x",
                            test_samples=a.samples)  # fmt: skip
        import nir

        g_fixed = nir.read(str(Path(tmp) / "x" / "model.nir"))
        px, keys = _pixels(Path(tmp) / "x" / "test_pixels.bin")
        want_fixed = [int(line.split()[0]) for line in
                      (Path(tmp) / "x" / "expected.txt").read_text().splitlines()]  # fmt: skip
    print(f"fixed point W{wb}/V{vb}/T{tb} nearest: accuracy {res.accuracy * 100:.2f} %")
    net = trained.net
    g_fp32 = diet_nir.build_real(
        m, [w.detach().numpy().astype(np.float64) for w in net.w],
        [float(x) for x in net.theta], [float(x) for x in net.leak], m.net.timesteps,
        m.net.encoding, ["fp32"] * len(net.w), {}, 255,
    )  # fmt: skip
    x = px.to(torch.float32) / 255.0
    want_fp32 = diet.predict(net, x).tolist()
    for name, g, want in (("FP32", g_fp32, want_fp32), ("fixed point", g_fixed, want_fixed)):
        for sub in (False, True):
            out = nir_check.diet_outputs(g, px, keys, reset_subtract=sub)
            agree = float((out.argmax(dim=1).numpy() == np.array(want)).mean())
            print(f"Norse from_nir, {name}, reset {'subtract' if sub else 'as written'}: "
                  f"agreement {agree * 100:.1f} %")  # fmt: skip
        try:
            from snntorch.import_nir import import_from_nir  # type: ignore[import-not-found]

            mod = import_from_nir(g)
            agree = _snntorch_agreement(mod, g, px, want)
            print(f"snnTorch import_from_nir, {name}: agreement {agree * 100:.1f} %")
        except ImportError:
            print("snnTorch: not installed")
        except Exception as e:  # what the import says of the graph
            print(f"snnTorch import_from_nir, {name}: {type(e).__name__}: {e}")


def _snntorch_agreement(mod: torch.nn.Module, g: object, px: torch.Tensor,
                        want: list[int]) -> float:  # fmt: skip
    """Run snnTorch's imported module (hidden states inside, one call a step) over the
    graph's steps on the direct input; the share of classes equal to ``want``."""
    from snntorch import utils as su  # type: ignore[import-not-found]

    meta = g.metadata  # type: ignore[attr-defined]
    x = px.to(torch.float32) / float(meta.get("pixel_divisor", 255))
    su.reset(mod)
    total: torch.Tensor | int = 0
    with torch.no_grad():
        for _ in range(int(meta["steps"])):
            y = mod(x)
            y = y[0] if isinstance(y, tuple) else y
            total = total + y
    assert isinstance(total, torch.Tensor)
    return float((total.argmax(dim=1).numpy() == np.array(want)).mean())


def _pixels(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    raw = path.read_bytes()
    n, n_in = (int(v) for v in np.frombuffer(raw[12:20], "<u4"))
    px, keys, pos = [], [], 20
    for _ in range(n):
        keys.append(int(np.frombuffer(raw[pos + 4 : pos + 12], "<u8")[0]))
        pos += 12
        px.append(np.frombuffer(raw[pos : pos + n_in], np.uint8))
        pos += n_in
    k = np.array(keys, dtype=np.uint64).view(np.int64)
    return torch.tensor(np.array(px), dtype=torch.int64), torch.from_numpy(k)


if __name__ == "__main__":
    main()
