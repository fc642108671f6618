"""How closely a real NIR consumer (Norse) reproduces tinysnn's inference of an exported
design (docs/model.md, "Export": the table there comes from this script).

    TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/nir_agreement.py \
        [--neurons 400] [--train-samples 10000] [--test-samples 1000]

Needs Norse (`pip install --no-deps norse==1.1.0 nirtorch==2.6`, as `make install` does).
For each case it trains an FP32 network on MNIST (seed 0), exports it at W8/V16/T16
nearest (`tinysnn export`), reads the exported spike file, and feeds every test image's
stored presentation to (a) tinysnn's integer datapath (:func:`integer.infer_reference`)
and (b) the NIR graph imported by Norse (:mod:`tinysnn_dse.export.nir_check`), applies
the simulator's re-presentation rule to each (a silent image is presented again, the
next stored presentation), then compares the spike count of every (image, neuron) and
the predicted labels (the simulator's readout over both). Each case runs twice: with the
refractory period the network has (5 ms excitatory, 2 ms inhibitory), which NIR cannot
express, and with it set to 0 in tinysnn, which leaves the Vmem rounding of each step
and float32 as the only differences.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import nir
import numpy as np
import torch

from tinysnn_dse.core import integer, readout
from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.export import export_design, nir_check, spikes
from tinysnn_dse.runner import RunSettings, train_and_evaluate


def boosted(
    counts: list[torch.Tensor], by_p: list[list[int]], min_spikes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's counts after the simulator's re-presentation rule (again while fewer
    than ``min_spikes`` spikes, as long as the file stores a next presentation), from the
    counts of every stored presentation (``counts[k]`` for the images ``by_p[k]``), and
    how many presentations each image took."""
    n = len(by_p[0])
    final = counts[0].clone()
    pres = torch.ones(n, dtype=torch.long)
    done = final.sum(dim=1) >= min_spikes
    for k in range(1, len(by_p)):
        for row, i in enumerate(by_p[k]):
            if not done[i]:
                final[i] = counts[k][row]
                pres[i] = k + 1
                done[i] = bool(final[i].sum() >= min_spikes)
    return final, pres


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=400)
    ap.add_argument("--train-samples", type=int, default=10000)
    ap.add_argument("--test-samples", type=int, default=1000)
    a = ap.parse_args()
    torch.set_num_threads(2)
    q = QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16)
    cases = [("tinysnn", "lif", a.train_samples), ("tinysnn", "if", a.train_samples),
             ("baseline", "lif", a.train_samples // 10)]  # fmt: skip
    print("| model | leak | train images | refractory | first presentation: spikes tinysnn / "
          "Norse | its (image, neuron) counts equal | presentations per image equal | final "
          "counts equal | predictions equal | accuracy tinysnn | accuracy Norse |")  # fmt: skip
    print("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for model, leak, n_train in cases:
        cfg = preset(model, 784, a.neurons, "mnist", **{"exc.leak": leak})
        s = RunSettings(dataset="mnist", train_samples=n_train, test_samples=100, seed=0,
                        threads=2).validate()  # fmt: skip
        trained, _ = train_and_evaluate(cfg, QuantSpec(), s)
        with tempfile.TemporaryDirectory() as tmp:
            res = export_design(trained, q, Path(tmp) / "x", None, a.test_samples)
            sf = spikes.read(Path(tmp) / "x" / "c" / "test_spikes.bin")
            g = nir.read(str(Path(tmp) / "x" / "model.nir"))
        ev = res.evaluation
        assert ev is not None and ev.deployed is not None and ev.test_labels is not None
        dep = ev.deployed
        n_pres = max(len(p) for p in sf.images)
        by_p = [[i for i, p in enumerate(sf.images) if len(p) > k] for k in range(n_pres)]
        dense = [torch.from_numpy(np.stack([sf.images[i][k].dense(sf.n_in) for i in idx]))
                 for k, idx in enumerate(by_p)]  # fmt: skip
        t0 = time.perf_counter()
        mod = nir_check.norse_module(g)
        theirs = [torch.cat([nir_check.run_counts(mod, x[i : i + 250])
                             for i in range(0, len(x), 250)]) for x in dense]  # fmt: skip
        t_norse = time.perf_counter() - t0
        for refractory in (True, False):
            m = dep.model
            if not refractory:
                m = dataclasses.replace(m, exc=dataclasses.replace(m.exc, t_ref_ms=0.0),
                                        inh=dataclasses.replace(m.inh, t_ref_ms=0.0))  # fmt: skip
            d = integer.design_of(m, dep.qz)
            assert d is not None
            wc = torch.from_numpy(integer.weight_codes(dep.net.w, d))
            thr = d.vmem_thresholds(integer.threshold_codes(dep.net.theta, m, dep.qz))
            ours = [integer.infer_reference(wc, thr, x, d, None)[0] for x in dense]
            o_final, o_pres = boosted(ours, by_p, m.encoding.min_spikes)
            t_final, t_pres = boosted(theirs, by_p, m.encoding.min_spikes)
            if refractory:  # the simulator's own evaluation, boosts included
                assert torch.equal(o_final, ev.test_counts)
            n_cls = ev.assignment.proportions.shape[1]
            y = ev.test_labels

            first = (ours[0] - theirs[0]).abs()
            fin = (o_final - t_final).abs()
            po = readout.predict(o_final, ev.assignment, n_cls, m.readout)
            pt = readout.predict(t_final, ev.assignment, n_cls, m.readout)
            print(
                f"| {model} | {leak} | {n_train:,} | "
                f"{'as trained' if refractory else 'off (t_ref 0)'} | "
                f"{int(ours[0].sum()):,} / {int(theirs[0].sum()):,} | "
                f"{float((first == 0).double().mean()) * 100:.2f} % | "
                f"{float((o_pres == t_pres).double().mean()) * 100:.1f} % | "
                f"{float((fin == 0).double().mean()) * 100:.2f} % | "
                f"{float((po == pt).double().mean()) * 100:.1f} % | "
                f"{float((po == y).double().mean()) * 100:.1f} % | "
                f"{float((pt == y).double().mean()) * 100:.1f} % |",
                flush=True,
            )
        print(f"<!-- {model} {leak}: Norse ran {len(first)} images in {t_norse:.1f} s -->")


if __name__ == "__main__":
    main()
