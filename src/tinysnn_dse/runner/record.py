"""The record of a tested design point (:class:`records.Record`, schema_version 2): its
outcome (accuracy, readouts, timings, saturation), its memory (Eq. 4), its measured and
modelled energy per phase, and the configuration and environment it ran in."""

from __future__ import annotations

import math
import platform
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from tinysnn_dse import __version__
from tinysnn_dse.core import integer, readout
from tinysnn_dse.core.backend import choose
from tinysnn_dse.core.energy import OpCounts, modelled_energy
from tinysnn_dse.core.memory import memory_report
from tinysnn_dse.core.modes import Topology
from tinysnn_dse.core.params import READOUTS, ModelConfig, QuantSpec
from tinysnn_dse.core.quant import VTH_GUARD_BITS, Quantizers
from tinysnn_dse.core.sim import Net
from tinysnn_dse.records import DesignPoint, Memory, Outcome, PhaseEnergy, Record
from tinysnn_dse.runner.settings import Split, default_batch_size
from tinysnn_dse.runner.training import Trained

if TYPE_CHECKING:
    from tinysnn_dse.runner.evaluation import Pass


class Tested(NamedTuple):
    """What an evaluation ran and measured, from which its record is made."""

    trained: Trained  # as evaluated (magnitude-pruned where the model asks for it)
    quant: QuantSpec  # the design point's formats, ranges observed
    qz: Quantizers
    net: Net  # the network as deployed (quantized)
    infer_model: ModelConfig  # the model of the inference passes
    split: Split
    assignment: readout.Assignment
    assigned: Pass  # the assignment pass
    tested: Pass  # the test pass (counted)


def record_of(t: Tested) -> Record:
    """The record of an evaluation."""
    model, s, device = t.trained.model, t.trained.settings, t.split.eval_x.device
    return Record(
        design_point=design_point_of(model, t.quant),
        outcome=outcome_of(t),
        memory=memory_of(t),
        energy=energy_of(t),
        formats=t.qz.describe(),
        # the implementations that trained and tested it (core/backend.py), and whether
        # inference ran the integer datapath (core/integer.py) or float32 with rounding
        backend={
            "train": t.trained.train_backend,
            "infer": choose("infer", model, t.qz, device).value,
            "infer_datapath": "integer" if integer.design_of(t.infer_model, t.qz) else "float32",
        },
        config={
            "model": asdict(model),
            "quant": asdict(t.quant),
            "trained_with": asdict(t.trained.quant),
            "run": {
                **asdict(s),
                "batch_size": s.batch_size or default_batch_size(device),
                "data_source": t.trained.data_source,
            },
        },
        environment=environment_of(device),
    )


def environment_of(device: torch.device) -> dict[str, Any]:
    """The environment a record was measured in (every family's records)."""
    return {
        "tinysnn": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def outcome_of(t: Tested) -> Outcome:
    """Accuracy (under the model's readout and every other), test-pass statistics, the
    training's and the passes' timings."""
    trained, model, split = t.trained, t.trained.model, t.split
    counts, labels, n_cls = t.tested.counts, split.eval_y.cpu(), split.n_classes
    pred = readout.predict(counts, t.assignment, n_cls, model.readout)
    by_readout = {
        r: readout.accuracy(readout.predict(counts, t.assignment, n_cls, r), labels)
        for r in READOUTS
    }
    n_test = int(split.eval_x.shape[0])
    ops, vmem = t.tested.ops, t.tested.vmem
    assert ops is not None and vmem is not None  # the test pass is counted
    test_s = t.tested.measured.seconds
    return Outcome(
        accuracy=readout.accuracy(pred, labels),
        readout=model.readout,
        # the same test counts read out every way (docs/model.md, Readout)
        accuracy_by_readout=by_readout,
        eval_set=split.eval_set,
        test_samples=n_test,
        silent_fraction=float((pred < 0).to(torch.float64).mean()) if n_test else 0.0,
        unassigned_neurons=int((t.assignment.labels < 0).sum()),
        vth_saturated_fraction=_saturated(trained.net, model, t.qz),
        # share of the test pass's Vmem roundings that clipped at the format's ends
        vmem_saturated_fraction=vmem.saturated_fraction,
        # ITQ training: share of its Vmem roundings that clipped, and of its threshold
        # updates that the accumulator clipped (None for an FP32 training)
        train_vmem_saturated_fraction=(trained.train_quant or {}).get("vmem_saturated_fraction"),
        train_vth_clipped_fraction=(trained.train_quant or {}).get("vth_clipped_fraction"),
        ranges_source=t.quant.ranges_source,
        train_seconds=trained.train_seconds,
        train_images=trained.train_images,
        train_images_per_s=_rate(trained.train_images, trained.train_seconds),
        assign_seconds=t.assigned.measured.seconds,
        infer_seconds=test_s,
        infer_images_per_s=_rate(n_test, test_s),
        neurobench=neurobench_of(t, ops),
        # mean presentation time per test image, boosted re-presentations included
        latency_ms=(
            t.infer_model.encoding.t_present_ms * ops.presentations / ops.samples
            if ops.samples
            else 0.0
        ),
    )


def neurobench_of(t: Tested, ops: OpCounts) -> dict[str, float]:
    """NeuroBench's metrics of the test pass, per image, as NeuroBench defines them:
    every input is a spike, so there are no multiply-accumulates; an accumulate is a spike
    reaching a neuron through a retained synapse (the input's, and the recurrent ones:
    tinySNN's lateral inhibition reaches the n - 1 others; the baseline's excitatory
    spike its inhibitory partner and, counted as one, that partner's spike the n - 1
    others); dense operations are every connection at every simulated step; activation
    sparsity the share of excitatory neuron-steps without a spike."""
    model = t.trained.model
    n, n_in, samples = model.n_exc, model.n_in, max(ops.samples, 1)
    inhibitory = model.topology == Topology.INHIBITORY
    rec_per_spike = n if inhibitory else n - 1  # (1 + (n - 1)) or (n - 1)
    rec_dense = n * n if inhibitory else n * (n - 1)
    acs = ops.input_spikes * n - ops.pruned_events + ops.exc_spikes * rec_per_spike
    w = t.net.w  # as deployed: pruned weights are 0, and so are those rounded to 0
    zeros = int((w == 0).sum())
    return {
        "footprint_bytes": memory_of(t).bits / 8,
        "connection_sparsity": zeros / max(w.numel(), 1),
        "activation_sparsity": 1.0 - ops.exc_spikes / max(ops.steps * n, 1),
        "effective_macs": 0.0,
        "effective_acs": acs / samples,
        "dense_ops": ops.steps * (n_in * n + rec_dense) / samples,
    }


def memory_of(t: Tested) -> Memory:
    """Eq. 4's memory of the deployed network (an ITQ threshold's guard bits, retained
    synapses only where it is pruned)."""
    model, q, tq = t.trained.model, t.quant, t.trained.quant
    itq_vth = tq.scheme == "itq" and tq.vth_bits is not None
    mem = memory_report(
        model.n_in, model.n_exc, model.topology, q.weight_bits, q.vmem_bits, q.vth_bits,
        VTH_GUARD_BITS if itq_vth else 0, None if t.net.keep is None else int(t.net.keep.sum()),
    )  # fmt: skip
    return Memory(
        bits=mem.memory_bits,
        normalized=mem.normalized_memory,
        reference=f"{model.topology} topology, {model.n_in}x{model.n_exc}, FP32",
        vs_baseline_fp32=mem.vs_baseline_fp32,
        train_bits=mem.train_memory_bits,
        detail=mem.to_dict(),
    )


def energy_of(t: Tested) -> dict[str, PhaseEnergy]:
    """Measured and modelled energy of the training (at its formats) and of the test
    pass (at the design point's); a phase without counts is left out."""
    trained, model, ops = t.trained, t.trained.model, t.tested.ops
    assert ops is not None  # the test pass is counted
    phases = (
        ("train", energy_fields(trained.train_ops, trained.train_measured, model, trained.quant)),
        ("infer", energy_fields(ops.to_dict(), asdict(t.tested.measured), model, t.quant)),
    )
    return {k: PhaseEnergy.from_dict(v) for k, v in phases if v}


def energy_fields(
    ops: dict[str, int] | None,
    measured: dict[str, Any] | None,
    model: ModelConfig,
    quant: QuantSpec,
) -> dict[str, Any]:
    """Measured and modelled energy of one phase (training or inference) for a record."""
    if ops is None or measured is None:
        return {}
    counts = OpCounts(**ops)
    learn_bits = None  # an ITQ threshold learns in its accumulator
    if quant.scheme == "itq" and quant.vth_bits is not None and counts.synapse_updates:
        learn_bits = quant.vth_bits + VTH_GUARD_BITS
    est = modelled_energy(
        counts,
        model.n_in,
        model.n_exc,
        model.topology,
        quant.weight_bits,
        quant.vmem_bits,
        quant.vth_bits,
        learn_bits,
        leak=model.exc.leak,
        floor=model.exc.vmem_floor_mv > 0,
    )
    return {**measured_fields(measured, counts.samples), **est.to_dict()}


def measured_fields(measured: dict[str, Any], n: int) -> dict[str, Any]:
    """A phase's measured energy (``meter.Measurement`` as a dict) over ``n`` samples, as
    a record's fields (every family's records)."""
    out = {
        "measured_j": measured["energy_j"],
        "measured_j_per_sample": measured["energy_j"] / n if n else math.nan,
        "measured_method": measured["method"],
        "measured_power_w": measured["power_w"],
        "measured_seconds": measured["seconds"],
        "samples": n,
    }
    if measured.get("shared_by", 1) > 1:  # one point's even share of a batched training
        out["measured_shared_by"] = measured["shared_by"]
    return out


def design_point_of(model: ModelConfig, quant: QuantSpec) -> DesignPoint:
    """The design point a model and a quantization make (the axes that are model
    parameters read from ``model``)."""
    enc, ln = model.encoding, model.learning
    p = DesignPoint(
        model.model, model.n_exc, quant.scheme, quant.rounding, quant.weight_bits,
        quant.vmem_bits, quant.vth_bits, t_present_ms=int(round(enc.t_present_ms)),
        leak=model.exc.leak, t_present_infer_ms=int(round(enc.t_infer_ms)),
        prune=float(ln.prune), prune_method=ln.prune_method,
    )  # fmt: skip
    return p.canonical


def _saturated(net: Net, model: ModelConfig, qz: Quantizers) -> float:
    """Fraction of neurons whose threshold sits at (or beyond) an end of its format."""
    if qz.vth is None or net.theta.numel() == 0:
        return 0.0
    thr = net.theta.detach().cpu().to(torch.float64) + model.exc.v_th_mv
    return float(((thr >= qz.vth.hi32) | (thr <= qz.vth.lo)).to(torch.float64).mean())


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else math.inf
