"""The integer datapath against the float32 datapath it replaced at inference, and the
integer readout (Q1.15 proportions) against float64 proportions, on one trained network
(docs/model.md, "Integer inference": the table there comes from this script).

    TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/datapath_compare.py \
        [--neurons 400] [--train-samples 10000] [--test-samples 10000]

Trains tinySNN in FP32 on MNIST (seed 0), then tests the first test images under each
PTQ design twice with the same generator (so the same spikes): the integer datapath
(what inference runs now) and the float32 datapath with Vmem rounded after every step
(``integer.design_of`` patched to decline), and reads the same counts out with the
integer readout and with float64 proportions.
"""

from __future__ import annotations

import argparse

import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse import runner
from tinysnn_dse.core import integer, readout
from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.runner import RunSettings, evaluate, make_split, train_and_evaluate


def float_readout(counts: torch.Tensor, a: readout.Assignment, mode: str) -> torch.Tensor:
    """The readout before issue 16: float64 scores over float64 proportions."""
    c = counts.to(torch.float64)
    n_cls = a.proportions.shape[1]
    onehot = torch.zeros(a.labels.shape[0], n_cls, dtype=torch.float64)
    valid = a.labels >= 0
    onehot[valid.nonzero().flatten(), a.labels[valid]] = 1.0
    if mode == "soft-vote":
        score = c @ a.proportions
    else:
        w = onehot if mode == "all" else onehot * a.proportions
        n = onehot.sum(0)
        score = torch.where(n > 0, (c @ w) / n.clamp_min(1.0), torch.zeros(1, dtype=c.dtype))
    best, pred = score.max(dim=1)
    return torch.where(best > 0, pred, torch.full_like(pred, -1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=400)
    ap.add_argument("--train-samples", type=int, default=10000)
    ap.add_argument("--test-samples", type=int, default=10000)
    a = ap.parse_args()
    torch.set_num_threads(2)
    cfg = preset("tinysnn", 784, a.neurons, "mnist")
    s = RunSettings(dataset="mnist", train_samples=a.train_samples, test_samples=a.test_samples,
                    seed=0, threads=2).validate()  # fmt: skip
    trained, fp = train_and_evaluate(cfg, QuantSpec(), s)
    split = make_split(data_mod.load("mnist", None), s, torch.device("cpu"))
    y = split.eval_y
    print(f"FP32: {fp.record.outcome.accuracy * 100:.2f} %")
    print(
        "| design | integer datapath | float32 datapath | (image, neuron) counts equal | "
        "predictions equal | integer readout vs float64 proportions: predictions differ |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    designs = [
        QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16),
        QuantSpec(rounding="truncate", weight_bits=8, vmem_bits=16, vth_bits=16),
        QuantSpec(rounding="stochastic", weight_bits=8, vmem_bits=16, vth_bits=16),
        QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=8, vth_bits=8),
        QuantSpec(rounding="stochastic", weight_bits=4, vmem_bits=12, vth_bits=12),
    ]
    real = integer.design_of
    for q in designs:
        ev_i = evaluate(trained, q, split)
        integer.design_of = runner.design_of = lambda cfg, qz: None  # type: ignore[assignment]
        try:
            ev_f = evaluate(trained, q, split)
        finally:
            integer.design_of = runner.design_of = real  # type: ignore[assignment]
        assert ev_i.record.backend["infer_datapath"] == "integer"
        assert ev_f.record.backend["infer_datapath"] == "float32"
        ci, cf = ev_i.test_counts, ev_f.test_counts
        assert ci is not None and cf is not None
        mode = trained.model.readout
        n_cls = ev_i.assignment.proportions.shape[1]
        pi = readout.predict(ci, ev_i.assignment, n_cls, mode)
        pf = readout.predict(cf, ev_f.assignment, n_cls, mode)
        p_float = float_readout(ci, ev_i.assignment, mode)
        label = f"{q.rounding} W{q.weight_bits}/V{q.vmem_bits}/T{q.vth_bits}"
        print(
            f"| {label} | {ev_i.record.outcome.accuracy * 100:.2f} % | "
            f"{ev_f.record.outcome.accuracy * 100:.2f} % | "
            f"{float((ci == cf).double().mean()) * 100:.2f} % | "
            f"{float((pi == pf).double().mean()) * 100:.2f} % | "
            f"{int((pi != p_float).sum())} of {len(y)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
