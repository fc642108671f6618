"""Testing a trained design point: its formats, the quantized network, the assignment
and test passes, and the record (:mod:`runner.record`) of what they measured.

Evaluation draws from ``Generator(seed + EVAL_SEED_OFFSET)`` (the quantization of W and
Vth, then the assignment pass, then the test pass, in that order), so that re-evaluating
a checkpoint with the same settings reproduces its record exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from tinysnn_dse import meter
from tinysnn_dse.core import readout
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.params import ModelConfig, QuantSpec
from tinysnn_dse.core.quant import Quantizers
from tinysnn_dse.core.sim import Capture, Net, QuantMeter, infer, quantize_net
from tinysnn_dse.records import Record
from tinysnn_dse.runner.record import Tested, record_of
from tinysnn_dse.runner.settings import (
    EVAL_SEED_OFFSET,
    Progress,
    RunSettings,
    Split,
    default_batch_size,
    no_progress,
    sync,
)
from tinysnn_dse.runner.training import Trained, magnitude_pruned, observed_quant


class Deployed(NamedTuple):
    """What a tested design point runs at inference: its quantized network, the model
    configuration of the inference passes and its formats (what ``tinysnn export``
    writes out)."""

    net: Net
    model: ModelConfig
    qz: Quantizers


class Evaluation(NamedTuple):
    """A tested design point: its record, the label assignment it was read out with, the
    test pass's spike counts [S, N] (of each image's last presentation) and true labels
    [S], and the network as deployed."""

    record: Record
    assignment: readout.Assignment | None  # None: a family that reads out without one
    test_counts: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    deployed: Deployed | None = None
    #: the gradient-trained family's integer design as tested (``runner.diet.IntTested``:
    #: its constants, formats and the images' keys), where it ran in integers
    integer: Any = None


def evaluate(
    trained: Trained,
    quant: QuantSpec,
    split: Split,
    progress: Progress = no_progress,
    capture: Capture | None = None,
) -> Evaluation:
    """Quantize (PTQ: W and Vth once; Vmem at every step), assign labels, test; a record.

    ``quant`` is the design point's quantization; for ITQ it must equal the training one.
    Under PTQ the Vmem and Vth formats take their integer bits from the ranges observed
    on the trained network (:func:`observed_quant`), unless integer bits are given.
    ``capture`` receives the input of every presentation of the test pass
    (:data:`sim.Capture`, image indices into ``split.eval_x``).
    """
    trained = magnitude_pruned(trained)
    s = trained.settings
    # the inference passes present each image for t_infer_ms where it is set
    infer_model = dataclasses.replace(
        trained.model, encoding=trained.model.encoding.for_inference()
    )
    gen = torch.Generator(device=split.eval_x.device).manual_seed(s.seed + EVAL_SEED_OFFSET)
    quant = design_formats(trained, quant, infer_model, split)
    qz = Quantizers.from_spec(quant)
    net = trained.net if quant.is_fp32 else quantize_net(trained.net, trained.model, qz, gen)
    passes = Inference(net, infer_model, qz, gen, s, progress)
    assigned = passes.run(split.assign_x, "assign")
    assignment = readout.assign_labels(assigned.counts, split.assign_y.cpu(), split.n_classes)
    tested = passes.run(split.eval_x, "test", counted=True, capture=capture)
    record = record_of(
        Tested(trained, quant, qz, net, infer_model, split, assignment, assigned, tested)
    )
    return Evaluation(record, assignment, tested.counts, split.eval_y.cpu(),
                      Deployed(net, infer_model, qz))  # fmt: skip


def design_formats(
    trained: Trained, quant: QuantSpec, infer_model: ModelConfig, split: Split
) -> QuantSpec:
    """``quant`` with the Vmem and Vth ranges its formats take their integer bits from:
    PTQ observes them on the trained network, ITQ keeps those it was trained with."""
    if quant.scheme == "ptq":
        return observed_quant(
            quant, trained.net, infer_model, split, trained.settings.seed, "the trained network"
        )
    if quant.needs_ranges:
        return dataclasses.replace(
            quant,
            vmem_range_mv=trained.quant.vmem_range_mv,
            vth_range_mv=trained.quant.vth_range_mv,
            ranges_source=trained.quant.ranges_source,
        )
    return quant


class Pass(NamedTuple):
    """One inference pass over a set of images: spike counts [S, N] (on the CPU), its
    wall time and energy, and (a counted pass) its event counts and Vmem roundings."""

    counts: torch.Tensor
    measured: meter.Measurement
    ops: OpCounts | None = None
    vmem: QuantMeter | None = None


@dataclass(frozen=True)
class Inference:
    """The deployed network's inference passes, all drawing from one generator."""

    net: Net
    model: ModelConfig
    qz: Quantizers
    gen: torch.Generator
    settings: RunSettings
    progress: Progress

    def run(
        self, x: torch.Tensor, phase: str, counted: bool = False, capture: Capture | None = None
    ) -> Pass:
        """Infer ``x`` in batches, reporting ``phase``'s progress; ``counted``: with event
        counts and a Vmem meter; ``capture``: as :func:`evaluate`'s."""
        s, device = self.settings, x.device
        ops, vm = (OpCounts(), QuantMeter()) if counted else (None, None)
        out = []
        bs = s.batch_size or default_batch_size(device)
        with meter.measure(str(device), s.power_w, sync(device)) as m:
            for i in range(0, x.shape[0], bs):
                xb = x[i : i + bs]
                c = None if capture is None else _offset(capture, i)
                out.append(infer(self.net, xb, self.model, self.qz, self.gen, batch_size=bs,
                                 stats=ops, meter=vm, capture=c))  # fmt: skip
                self.progress(phase, min(i + bs, x.shape[0]), x.shape[0])
        counts = torch.cat(out) if out else torch.zeros(0, self.model.n_exc, device=device)
        return Pass(counts.cpu(), m, ops, vm)


def _offset(cap: Capture, i: int) -> Capture:
    """``cap`` for a batch that starts at image ``i``."""
    return lambda idx, boost, trains, keys: cap(idx + i, boost, trains, keys)
