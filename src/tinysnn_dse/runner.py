"""Train, assign, test and count one design point; save and reload checkpoints.

This layer joins the pure core to the data sets and files. It imports no CLI framework:
progress reaches it as a callback ``progress(phase, done, total)``.

Random streams: training draws from ``Generator(seed)``; evaluation (assignment pass and
test pass, including stochastic PTQ rounding) from ``Generator(seed + EVAL_SEED_OFFSET)``,
so that re-evaluating a checkpoint with the same settings reproduces its record exactly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import json
import math
import os
import platform
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from tinysnn_dse import __version__, meter
from tinysnn_dse import data as data_mod
from tinysnn_dse.core import prune, readout
from tinysnn_dse.core.backend import Backend, choose
from tinysnn_dse.core.energy import OpCounts, modelled_energy
from tinysnn_dse.core.integer import design_of
from tinysnn_dse.core.memory import memory_report
from tinysnn_dse.core.params import (
    READOUTS,
    ModelConfig,
    QuantSpec,
    model_from_dict,
    quant_from_dict,
    validate_quant,
)
from tinysnn_dse.core.quant import VTH_GUARD_BITS, Quantizers, with_ranges
from tinysnn_dse.core.sim import (
    Capture,
    DesignBatch,
    Net,
    QuantMeter,
    infer,
    init_net,
    normalize_q,
    observe_ranges,
    quantize_net,
    train_sample,
)
from tinysnn_dse.errors import CheckpointError, ConfigError, OutputError, os_error
from tinysnn_dse.records import DesignPoint, Memory, Outcome, PhaseEnergy, Record

Progress = Callable[[str, int, int], None]
EVAL_SEED_OFFSET = 1_000_003
#: the largest seed: the derived streams (seed + the offsets below) stay within a signed
#: 64-bit integer, which torch and numpy generators take
MAX_SEED = 2**62
RANGES_SEED_OFFSET = 2_000_003  # the FP32 pass that observes the Vmem and Vth ranges
#: images of the FP32 pass the Vmem and Vth ranges are observed on (the first ones of
#: the assignment set)
RANGE_SAMPLES = 1000
CHECKPOINT_FORMAT = "tinysnn-checkpoint-v1"


@dataclass(frozen=True)
class RunSettings:
    """Data set and budget of a run. ``None`` sample counts mean "all available"."""

    dataset: str = "digits"
    train_samples: int | None = None
    test_samples: int | None = None
    assign_samples: int | None = None  # default: every training sample used
    holdout: int = 0  # > 0: evaluate on the last `holdout` training images, not the test set
    epochs: int = 1
    seed: int = 0
    device: str = "auto"
    batch_size: int | None = None  # None: default_batch_size(device)
    threads: int | None = None
    power_w: float | None = None  # declared power for "time x power" energy (None: default)

    def validate(self) -> RunSettings:
        for name in ("train_samples", "test_samples", "assign_samples"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be at least 1, got {v}")
        if self.holdout < 0:
            raise ConfigError(f"holdout must be >= 0, got {self.holdout}")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be in 0..2**62, got {self.seed}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")
        if self.power_w is not None and not (self.power_w > 0 and math.isfinite(self.power_w)):
            raise ConfigError(f"power_w must be a positive number of watts, got {self.power_w}")
        resolve_device(self.device)
        return self


def default_batch_size(device: torch.device) -> int:
    """Inference batch when none is given: 256 images on the CPU (the kernel's threads
    need no more), 4096 on CUDA, where per-step launches dominate until batches are large
    (docs/benchmarks.md: 3.6k img/s at 256, 44k at 4096 on an H100)."""
    return 4096 if device.type == "cuda" else 256


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cpu``; ``cuda``; ``cuda:N``."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        idx = spec.split(":", 1)[1] if ":" in spec else "0"
        if not idx.isdigit():
            raise ConfigError(f"bad device {spec!r}; use auto, cpu, cuda or cuda:N")
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec} requested but CUDA is not available here")
        if int(idx) >= torch.cuda.device_count():
            raise ConfigError(f"device {spec}: only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(f"cuda:{idx}")
    raise ConfigError(f"bad device {spec!r}; use auto, cpu, cuda or cuda:N")


@dataclass
class Split:
    train_x: torch.Tensor
    train_y: torch.Tensor
    assign_x: torch.Tensor
    assign_y: torch.Tensor
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    eval_set: str
    n_classes: int


def _take(n: int | None, avail: int, what: str) -> int:
    if n is None:
        return avail
    if n > avail:
        raise ConfigError(f"{what}: asked for {n} samples but only {avail} are available")
    return n


def check_split(ds: data_mod.Dataset, s: RunSettings) -> tuple[int, int, int]:
    """(train, assign, available) counts of ``s`` on ``ds``, or a :class:`ConfigError`."""
    n_train_all = len(ds.train_images)
    if s.holdout >= n_train_all:
        raise ConfigError(f"holdout {s.holdout} leaves no training data ({n_train_all} images)")
    avail = n_train_all - s.holdout
    n_tr = _take(s.train_samples, avail, "train_samples")
    n_as = _take(s.assign_samples, n_tr, "assign_samples (at most train_samples)")
    n_eval = s.holdout if s.holdout else len(ds.test_images)
    _take(s.test_samples, n_eval, "test_samples" + (" (from the holdout)" if s.holdout else ""))
    return n_tr, n_as, avail


def make_split(ds: data_mod.Dataset, s: RunSettings, device: torch.device) -> Split:
    """Training, assignment and evaluation tensors (intensities in [0, 1])."""
    n_tr, n_as, avail = check_split(ds, s)

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(x, copy=True)).to(device)

    def px(x: np.ndarray) -> torch.Tensor:
        return t(x).to(torch.float32) / 255.0

    if s.holdout:
        ex = ds.train_images[avail:]
        ey = ds.train_labels[avail:]
        n_ev = _take(s.test_samples, len(ex), "test_samples (from the holdout)")
        eval_set = f"train[{avail}:{avail + n_ev}] (holdout)"
    else:
        ex, ey = ds.test_images, ds.test_labels
        n_ev = _take(s.test_samples, len(ex), "test_samples")
        eval_set = f"test[0:{n_ev}]"
    return Split(
        train_x=px(ds.train_images[:n_tr]),
        train_y=t(ds.train_labels[:n_tr]),
        assign_x=px(ds.train_images[:n_as]),
        assign_y=t(ds.train_labels[:n_as]),
        eval_x=px(ex[:n_ev]),
        eval_y=t(ey[:n_ev]),
        eval_set=eval_set,
        n_classes=ds.n_classes,
    )


def _noop(phase: str, done: int, total: int) -> None:
    pass


@dataclass
class Trained:
    """A trained network and what is needed to evaluate it again."""

    net: Net
    model: ModelConfig
    quant: QuantSpec  # the quantization applied during training (ITQ) or FP32
    settings: RunSettings
    train_seconds: float
    train_images: int
    data_source: str | None = None
    train_ops: dict[str, int] | None = None  # OpCounts of the training run
    train_measured: dict[str, Any] | None = None  # meter.Measurement of the training run
    train_quant: dict[str, float] | None = None  # what the quantizers did in training (ITQ)
    train_backend: str | None = None  # backend.Backend that trained it (None: unknown, old)
    # the design point's quantization, where the checkpoint's record holds one (a PTQ
    # point trains in FP32: its formats are the record's, not the training's)
    design_quant: QuantSpec | None = None


def _quant_summary(m: QuantMeter) -> dict[str, float]:
    """A training run's :class:`QuantMeter` as record fields."""
    return {
        "vmem_saturated_fraction": m.saturated_fraction,
        "vth_clipped_fraction": m.vth_clipped_fraction,
        "vth_updates": float(m.vth_updates),
    }


def train(
    model: ModelConfig,
    quant: QuantSpec,
    settings: RunSettings,
    split: Split,
    progress: Progress = _noop,
) -> Trained:
    """Train ``model`` on ``split.train_x`` for ``settings.epochs`` passes.

    Under ITQ the quantizers act during training; under PTQ training is FP32. An ITQ
    ``quant`` whose Vmem/Vth ranges are not yet observed (``QuantSpec.needs_ranges``)
    takes them from an FP32 training of the same network first (:func:`itq_ranges`).
    """
    if quant.scheme == "itq" and quant.needs_ranges:
        quant = itq_ranges(model, quant, settings, split, progress)
    device = split.train_x.device
    qz = Quantizers.from_spec(quant) if quant.scheme == "itq" else Quantizers.fp32()
    backend = choose("learn", model, qz, device)
    if backend == Backend.TRITON:
        # fused GPU kernels: a batch of one design point (ITQ, or PTQ's FP32 training)
        q = quant if quant.scheme == "itq" else QuantSpec()
        return train_batch(model, [q], settings, split, progress)[0]
    gen = torch.Generator(device=device).manual_seed(settings.seed)
    net = init_net(model, gen, device)
    if quant.scheme == "itq":
        net = quantize_net(net, model, qz, gen)
    n = split.train_x.shape[0]
    total = n * settings.epochs
    step = max(1, total // 200)
    done = 0
    ops = OpCounts()
    qm = QuantMeter()
    rounds = prune.schedule(total, model)  # STDP pruning (docs/model.md, "Pruning")
    with meter.measure(str(device), settings.power_w, _sync(device)) as m:
        for _ in range(settings.epochs):
            for i in range(n):
                x = split.train_x[i]
                net, _counts = train_sample(net, x, model, qz, gen, backend, stats=ops, meter=qm)
                done += 1
                if done in rounds:
                    net = _prune_round(net, model, qz, gen, backend, rounds[done], ops)
                if done % step == 0 or done == total:
                    progress("train", done, total)
    return Trained(
        net,
        model,
        quant if quant.scheme == "itq" else QuantSpec(),
        settings,
        m.seconds,
        total,
        train_ops=ops.to_dict(),
        train_measured=asdict(m),
        train_quant=_quant_summary(qm),
        train_backend=backend.value,
    )


def _prune_round(
    net: Net,
    model: ModelConfig,
    qz: Quantizers,
    gen: torch.Generator,
    backend: Backend,
    fraction: float,
    ops: OpCounts,
) -> Net:
    """One STDP pruning round: each neuron's weakest retained synapses go until
    ``fraction`` of its inputs are pruned, then the normalisation (and, under ITQ, the
    rounding) of a training sample gives each neuron its total drive back."""
    keep = prune.prune_to(net.w, net.keep, prune.n_removed(model.n_in, fraction))
    w = normalize_q(prune.apply_mask(net.w, keep), model, qz, gen, backend == Backend.NUMBA)
    ops.normalisations += 1
    ops.pruned_normalised += int((~keep).sum())
    return net._replace(w=w * keep.to(w.dtype), keep=keep)


def magnitude_pruned(trained: Trained) -> Trained:
    """``trained`` pruned by magnitude if its model asks for it and it is not pruned yet
    (the post-training method shares an unpruned training, as PTQ shares FP32's)."""
    ln = trained.model.learning
    if ln.prune <= 0 or ln.prune_method != "magnitude" or trained.net.keep is not None:
        return trained
    w, keep = prune.prune_trained(trained.net.w, trained.model)
    return dataclasses.replace(trained, net=trained.net._replace(w=w, keep=keep))


def observed_quant(
    quant: QuantSpec, net: Net, model: ModelConfig, split: Split, seed: int, what: str
) -> QuantSpec:
    """``quant`` with its Vmem and Vth ranges observed on ``net`` (paper 2.3): an FP32
    inference pass over the first :data:`RANGE_SAMPLES` assignment images (its own
    generator, so evaluation's random numbers are untouched), each range widened by
    ``quant.RANGE_MARGIN``. ``what`` names the network; a no-op when nothing needs it."""
    if not quant.needs_ranges:
        return quant
    x = split.assign_x[:RANGE_SAMPLES]
    g = torch.Generator(device=x.device).manual_seed(seed + RANGES_SEED_OFFSET)
    r = observe_ranges(net, x, model, g, f"{what}, FP32 inference of train[0:{x.shape[0]}]")
    q = with_ranges(quant, r, model)
    source = (
        f"{r.source}: Vmem {r.vmem[0]:.1f} .. {r.vmem[1]:.1f} mV, "
        f"Vth {r.vth[0]:.1f} .. {r.vth[1]:.1f} mV, each widened by 10 % of its span"
    )
    return dataclasses.replace(q, ranges_source=source)


def itq_ranges(
    model: ModelConfig,
    quant: QuantSpec,
    settings: RunSettings,
    split: Split,
    progress: Progress = _noop,
) -> QuantSpec:
    """``quant`` with the Vmem/Vth ranges of an FP32 training of the same network (same
    data and seed), which ITQ has no other way to know before it trains."""
    if not quant.needs_ranges:
        return quant

    def ref_progress(phase: str, done: int, total: int) -> None:
        progress("reference", done, total)

    ref = train(model, QuantSpec(), settings, split, ref_progress)
    what = f"the FP32 training of the same network ({ref.train_images} images)"
    return observed_quant(quant, ref.net, model, split, settings.seed, what)


def _sync(device: torch.device) -> Callable[[], None] | None:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return None


def train_batch(
    model: ModelConfig,
    quants: list[QuantSpec],
    settings: RunSettings,
    split: Split,
    progress: Progress = _noop,
    models: list[ModelConfig] | None = None,
) -> list[Trained]:
    """Train K ITQ design points of one tinySNN-rule network together on shared input
    (:class:`DesignBatch`: Numba threads on the CPU, fused Triton kernels on CUDA), one
    :class:`Trained` per point, in order.

    ``models`` (one per point) may vary the learning parameters of
    :data:`sim.BATCH_PARAMS` around ``model`` (benchmarks/tune_batch.py).
    All points start from the same initial network (as separate runs with this seed do).
    The initial network comes from a CPU generator on either device; on CUDA the
    presentations' random numbers are drawn on the GPU (a DesignBatch driven by a CPU
    generator trains on CUDA what it trains on the CPU, to float32 rounding; that costs
    ~1 ms of CPU draws per image, so runs draw where they compute).
    The batch's wall time and measured energy are split evenly between the points; each
    point's ``train_measured`` says so in ``shared_by``. Event counts are per point.
    """
    device = split.train_x.device
    if any(q.needs_ranges for q in quants):
        quants = [itq_ranges(model, q, settings, split, progress) for q in quants]
    qzs = [Quantizers.from_spec(q) for q in quants]
    backend = choose("batch", model, qzs[0], device)  # a ConfigError where none runs
    gen = torch.Generator().manual_seed(settings.seed)
    net = init_net(model, gen, "cpu")
    nets = [quantize_net(net, model, qz, gen) for qz in qzs]
    models = models or [model] * len(quants)
    batch = DesignBatch(nets, model, qzs, device=device, cfgs=models)
    if device.type == "cuda":  # draw where the kernels run (CPU draws would cost more time
        gen = torch.Generator(device=device).manual_seed(settings.seed)  # than they do)
    n = split.train_x.shape[0]
    total = n * settings.epochs
    step = max(1, total // 200)
    done = 0
    ops = [OpCounts() for _ in quants]
    rounds = prune.schedule(total, model)  # STDP pruning, as train() prunes one point
    with meter.measure(str(device), settings.power_w, _sync(device)) as m:
        for _ in range(settings.epochs):
            for i in range(n):
                batch.train_sample(split.train_x[i], gen, ops)
                done += 1
                if done in rounds:
                    batch.prune(rounds[done], gen, ops)
                if done % step == 0 or done == total:
                    progress("train", done, total)
    k = len(quants)
    share = {**asdict(m), "energy_j": m.energy_j / k, "seconds": m.seconds / k, "shared_by": k}
    return [
        Trained(net_k, model_k, q, settings, m.seconds / k, total, train_ops=o.to_dict(),
                train_measured=share, train_quant=_quant_summary(qm),
                train_backend=backend.value)
        for net_k, model_k, q, o, qm in zip(batch.nets(), models, quants, ops, batch.meters,
                                            strict=True)
    ]  # fmt: skip


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
    )
    n = counts.samples
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
    out.update(est.to_dict())
    return out


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
    assignment: readout.Assignment
    test_counts: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    deployed: Deployed | None = None


def evaluate(
    trained: Trained,
    quant: QuantSpec,
    split: Split,
    progress: Progress = _noop,
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
    model, s = trained.model, trained.settings
    # the inference passes present each image for t_infer_ms where it is set (issue 15)
    infer_model = dataclasses.replace(model, encoding=model.encoding.for_inference())
    device = split.eval_x.device
    gen = torch.Generator(device=device).manual_seed(s.seed + EVAL_SEED_OFFSET)
    if quant.scheme == "ptq":
        quant = observed_quant(
            quant, trained.net, infer_model, split, s.seed, "the trained network"
        )
    elif quant.needs_ranges:  # ITQ: the formats the network was trained with
        quant = dataclasses.replace(
            quant,
            vmem_range_mv=trained.quant.vmem_range_mv,
            vth_range_mv=trained.quant.vth_range_mv,
            ranges_source=trained.quant.ranges_source,
        )
    qz = Quantizers.from_spec(quant)
    net = quantize_net(trained.net, model, qz, gen) if not quant.is_fp32 else trained.net

    def run(
        x: torch.Tensor,
        phase: str,
        ops: OpCounts | None = None,
        vm: QuantMeter | None = None,
        cap: Capture | None = None,
    ) -> tuple[torch.Tensor, meter.Measurement]:
        out = []
        bs = s.batch_size or default_batch_size(device)
        with meter.measure(str(device), s.power_w, _sync(device)) as m:
            for i in range(0, x.shape[0], bs):
                xb = x[i : i + bs]
                c = None if cap is None else _offset(cap, i)
                out.append(infer(net, xb, infer_model, qz, gen, batch_size=bs, stats=ops,
                                 meter=vm, capture=c))  # fmt: skip
                progress(phase, min(i + bs, x.shape[0]), x.shape[0])
        counts = torch.cat(out) if out else torch.zeros(0, model.n_exc, device=device)
        return counts.cpu(), m

    assign_counts, assign_m = run(split.assign_x, "assign")
    assign_s = assign_m.seconds
    assignment = readout.assign_labels(assign_counts, split.assign_y.cpu(), split.n_classes)
    infer_ops = OpCounts()
    vmem_meter = QuantMeter()
    test_counts, test_m = run(split.eval_x, "test", infer_ops, vmem_meter, capture)
    test_s = test_m.seconds
    pred = readout.predict(test_counts, assignment, split.n_classes, model.readout)
    acc = readout.accuracy(pred, split.eval_y.cpu())
    by_readout = {
        r: readout.accuracy(readout.predict(test_counts, assignment, split.n_classes, r),
                            split.eval_y.cpu())
        for r in READOUTS
    }  # fmt: skip
    itq_vth = trained.quant.scheme == "itq" and trained.quant.vth_bits is not None
    mem = memory_report(
        model.n_in, model.n_exc, model.topology, quant.weight_bits, quant.vmem_bits,
        quant.vth_bits, VTH_GUARD_BITS if itq_vth else 0,
        None if net.keep is None else int(net.keep.sum()),
    )  # fmt: skip
    n_test = int(split.eval_x.shape[0])
    outcome = Outcome(
        accuracy=acc,
        readout=model.readout,
        # the same test counts read out every way (docs/model.md, Readout)
        accuracy_by_readout=by_readout,
        eval_set=split.eval_set,
        test_samples=n_test,
        silent_fraction=float((pred < 0).to(torch.float64).mean()) if n_test else 0.0,
        unassigned_neurons=int((assignment.labels < 0).sum()),
        vth_saturated_fraction=_saturated(trained.net, model, qz),
        # share of the test pass's Vmem roundings that clipped at the format's ends
        vmem_saturated_fraction=vmem_meter.saturated_fraction,
        # ITQ training: share of its Vmem roundings that clipped, and of its threshold
        # updates that the accumulator clipped (None for an FP32 training)
        train_vmem_saturated_fraction=(trained.train_quant or {}).get("vmem_saturated_fraction"),
        train_vth_clipped_fraction=(trained.train_quant or {}).get("vth_clipped_fraction"),
        ranges_source=quant.ranges_source,
        train_seconds=trained.train_seconds,
        train_images=trained.train_images,
        train_images_per_s=_rate(trained.train_images, trained.train_seconds),
        assign_seconds=assign_s,
        infer_seconds=test_s,
        infer_images_per_s=_rate(n_test, test_s),
        # mean presentation time per test image, boosted re-presentations included
        latency_ms=(
            infer_model.encoding.t_present_ms * infer_ops.presentations / infer_ops.samples
            if infer_ops.samples
            else 0.0
        ),
    )
    memory = Memory(
        bits=mem.memory_bits,
        normalized=mem.normalized_memory,
        reference=f"{model.topology} topology, {model.n_in}x{model.n_exc}, FP32",
        vs_baseline_fp32=mem.vs_baseline_fp32,
        train_bits=mem.train_memory_bits,
        detail=mem.to_dict(),
    )
    energy = {
        k: PhaseEnergy.from_dict(v)
        for k, v in (
            ("train", energy_fields(trained.train_ops, trained.train_measured, model,
                                    trained.quant)),
            ("infer", energy_fields(infer_ops.to_dict(), asdict(test_m), model, quant)),
        )
        if v
    }  # fmt: skip
    record = Record(
        design_point=design_point_of(model, quant),
        outcome=outcome,
        memory=memory,
        energy=energy,
        formats=qz.describe(),
        # the implementations that trained and tested it (core/backend.py), and whether
        # inference ran the integer datapath (core/integer.py) or float32 with rounding
        backend={
            "train": trained.train_backend,
            "infer": choose("infer", model, qz, device).value,
            "infer_datapath": "integer" if design_of(infer_model, qz) else "float32",
        },
        config={
            "model": asdict(model),
            "quant": asdict(quant),
            "trained_with": asdict(trained.quant),
            "run": {
                **asdict(s),
                "batch_size": s.batch_size or default_batch_size(device),
                "data_source": trained.data_source,
            },
        },
        environment={
            "tinysnn": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(device),
            "threads": torch.get_num_threads(),
        },
    )
    return Evaluation(record, assignment, test_counts, split.eval_y.cpu(),
                      Deployed(net, infer_model, qz))  # fmt: skip


def _offset(cap: Capture, i: int) -> Capture:
    """``cap`` for a batch that starts at image ``i``."""
    return lambda idx, boost, trains, keys: cap(idx + i, boost, trains, keys)


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


def train_and_evaluate(
    model: ModelConfig,
    quant: QuantSpec,
    settings: RunSettings,
    data_dir: str | None = None,
    progress: Progress = _noop,
) -> tuple[Trained, Evaluation]:
    """The whole design point: load data, train, evaluate; returns (trained, evaluation)."""
    validate_quant(quant)
    settings.validate()
    device = resolve_device(settings.device)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    ds = data_mod.load(settings.dataset, data_dir)
    if ds.n_in != model.n_in:
        model = dataclasses.replace(model, n_in=ds.n_in)
    split = make_split(ds, settings, device)
    trained = dataclasses.replace(train(model, quant, settings, split, progress),
                                  data_source=ds.source)  # fmt: skip
    return trained, evaluate(trained, quant, split, progress)


# ------------------------------------------------------------------------- checkpoints


def _with_errno(e: OSError) -> OSError:
    """``e``, or an ENOSPC ``OSError`` where ``e`` carries no errno but says the disk is full
    (HDF5's errors do: "... errno = 28, error message = 'No space left on device'")."""
    text = str(e)
    if e.errno is None and ("No space left" in text or "errno = 28" in text):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return e


@contextlib.contextmanager
def write_guard(what: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an ``OSError`` raised inside into one line naming ``what`` (a path, or words
    such as "the trial's checkpoint"): an :class:`OutputError` from
    :func:`errors.os_error`, which says "no space left on the device" for a full disk."""
    try:
        yield
    except OSError as e:
        raise os_error(_with_errno(e), str(what)) from None


def check_clobber(
    out_dir: Path, names: Iterable[str] | None, force: bool, what: str = "this command"
) -> None:
    """Refuse, before anything is written, to write into ``out_dir`` where it already holds
    one of ``names`` (``None``: where it holds anything at all), unless ``force``: a
    one-line :class:`OutputError` naming the first such file and ``--force``."""
    if force or not out_dir.is_dir():
        return
    with write_guard(out_dir):
        present = sorted(p.name for p in out_dir.iterdir())
    if names is None:
        if present:
            raise OutputError(
                f"{out_dir} is not empty ({present[0]}); give --force to write {what} into "
                "it, replacing files of the same name"
            )
        return
    clash = [n for n in present if n in set(names)]
    if clash:
        raise OutputError(
            f"{out_dir / clash[0]} already exists; give --force to replace it (and the other "
            f"files {what} writes there)"
        )


def missing_dirs(d: Path) -> list[Path]:
    """``d`` and its ancestors that do not exist yet, deepest first."""
    out = []
    while not d.exists() and d != d.parent:
        out.append(d)
        d = d.parent
    return out


def remove_empty(dirs: Iterable[Path]) -> None:
    """Remove the folders of ``dirs`` (deepest first) that are still empty: what a failed
    command created, so that it leaves nothing behind."""
    for d in dirs:
        with contextlib.suppress(OSError):
            d.rmdir()


def write_files(files: Mapping[Path, bytes | str]) -> None:
    """Write each file of ``files`` (path -> contents) under a temporary name in its own
    folder, flushed to the disk, then move them all in (``os.replace``): a reader sees the
    old files or the new ones, never a part of one, and a failure before the moves changes
    nothing (the temporary files and any folder made for them are removed). An
    ``OSError`` (a full disk) becomes a one-line :class:`OutputError`."""
    made: list[Path] = []
    staged: list[tuple[str, Path]] = []
    current = Path()
    try:
        for path, data in files.items():
            current = path
            made += [d for d in missing_dirs(path.parent) if d not in made]
            path.parent.mkdir(parents=True, exist_ok=True)
            raw = data.encode() if isinstance(data, str) else data
            tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, path in staged:
            current = path
            os.replace(tmp, path)
    except BaseException as e:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        remove_empty(sorted(made, key=lambda d: -len(d.parts)))
        if isinstance(e, OSError):
            raise os_error(_with_errno(e), str(current)) from None
        raise


def atomic_write(path: Path, data: bytes | str) -> Path:
    """One file, as :func:`write_files` writes it."""
    write_files({path: data})
    return path


def prepare_out_dir(out_dir: Path) -> Path:
    """Create ``out_dir`` (before any work is done) or fail with a one-line reason."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write-test-"):
            pass
    except OSError as e:
        raise os_error(e, f"to output folder {out_dir}") from None
    return out_dir


def _payload(trained: Trained) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "w": trained.net.w.detach().cpu(),
        "theta": trained.net.theta.detach().cpu(),
        **({} if trained.net.keep is None else {"keep": trained.net.keep.detach().cpu()}),
        "model_json": json.dumps(asdict(trained.model)),
        "trained_with_json": json.dumps(asdict(trained.quant)),
        "settings_json": json.dumps(asdict(trained.settings)),
        "train_seconds": float(trained.train_seconds),
        "train_images": int(trained.train_images),
        "train_ops_json": json.dumps(trained.train_ops),
        "train_measured_json": json.dumps(trained.train_measured),
        "train_quant_json": json.dumps(trained.train_quant),
        "train_backend": trained.train_backend or "",
    }


def _torch_bytes(payload: dict[str, Any]) -> bytes:
    """``payload`` as ``torch.save`` writes it, in memory: written to a file by
    :func:`write_files`, a full disk is an ``OSError`` (torch's own writer says "unexpected
    pos 64 vs 0") and never a truncated checkpoint."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def save_trained(path: Path, trained: Trained) -> Path:
    """Write a trained network alone (no labels, no record), atomically; reload with
    :func:`load_checkpoint`. Used to share one FP32 training between PTQ points."""
    return atomic_write(path, _torch_bytes(_payload(trained)))


def save(out_dir: Path, trained: Trained, ev: Evaluation) -> tuple[Path, Path]:
    """Write ``model.pt`` (tensors + JSON strings only) and ``record.json`` atomically,
    replacing those of an earlier run (both or, on a failure, neither)."""
    payload = {
        **_payload(trained),
        "assignment": ev.assignment.labels.cpu(),
        "proportions": ev.assignment.proportions.cpu(),
        "record_json": json.dumps(ev.record.to_dict()),
    }
    ckpt = out_dir / "model.pt"
    rec = out_dir / "record.json"
    text = json.dumps(ev.record.to_dict(), indent=2, sort_keys=True)
    write_files({ckpt: _torch_bytes(payload), rec: text + "\n"})
    return ckpt, rec


def load_checkpoint(path: Path, device: str = "cpu") -> Trained:
    """Load a checkpoint without executing pickled code (``weights_only=True``); one whose
    weights or thresholds are not all finite (NaN, inf) is refused."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        p = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: not a readable tinysnn checkpoint ({first[:160]})"
        ) from None
    if not isinstance(p, dict) or p.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a tinysnn checkpoint (format {CHECKPOINT_FORMAT})")
    try:
        model = model_from_dict(json.loads(p["model_json"]))
        quant = quant_from_dict(json.loads(p["trained_with_json"]))
        settings = RunSettings(**json.loads(p["settings_json"]))
        dev = resolve_device(device)
        keep = p.get("keep")
        if keep is not None and tuple(keep.shape) != tuple(p["w"].shape):
            raise ValueError("pruning mask shape differs from the weights'")
        net = Net(w=p["w"].to(dev), theta=p["theta"].to(dev),
                  keep=None if keep is None else keep.to(dev).bool())  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{path}: incomplete checkpoint ({e})") from None
    if tuple(net.w.shape) != (model.n_in, model.n_exc):
        raise CheckpointError(f"{path}: weight shape {tuple(net.w.shape)} does not match config")
    bad = [n for n, t in (("weights", net.w), ("thresholds", net.theta))
           if not bool(torch.isfinite(t).all())]  # fmt: skip
    if bad:
        raise CheckpointError(
            f"{path}: non-finite {' and '.join(bad)} (NaN or inf); not a usable network"
        )
    try:
        source = json.loads(p.get("record_json", "{}"))["config"]["run"].get("data_source")
    except (KeyError, TypeError, ValueError):
        source = None
    try:
        design_quant = quant_from_dict(json.loads(p["record_json"])["config"]["quant"])
    except (KeyError, TypeError, ValueError, ConfigError):
        design_quant = None
    return Trained(
        net,
        model,
        quant,
        settings,
        float(p["train_seconds"]),
        int(p["train_images"]),
        source,
        train_ops=json.loads(p.get("train_ops_json", "null")),
        train_measured=json.loads(p.get("train_measured_json", "null")),
        train_quant=json.loads(p.get("train_quant_json", "null")),
        train_backend=p.get("train_backend") or None,
        design_quant=design_quant,
    )


def evaluate_checkpoint(
    trained: Trained,
    quant: QuantSpec | None,
    data_dir: str | None = None,
    test_samples: int | None = None,
    device: str = "cpu",
    progress: Progress = _noop,
    capture: Capture | None = None,
    at_most: bool = False,
) -> Evaluation:
    """Re-test a saved model, optionally under a PTQ setting, without retraining
    (``capture``: as :func:`evaluate`; ``at_most``: ``test_samples`` or as many as the
    evaluation set has, if fewer)."""
    if quant is None:
        quant = trained.quant
    validate_quant(quant)  # PTQ on an ITQ-trained model re-applies the new formats
    s = trained.settings
    if data_dir is None and trained.data_source:  # where the model was trained from
        root = Path(trained.data_source).parent
        data_dir = str(root) if root.is_dir() else None
    ds = data_mod.load(s.dataset, data_dir)
    if test_samples is not None:
        if at_most:
            test_samples = min(test_samples, s.holdout or len(ds.test_images))
        s = dataclasses.replace(s, test_samples=test_samples)
    s = dataclasses.replace(s, device=device).validate()
    trained = dataclasses.replace(trained, settings=s)
    split = make_split(ds, s, resolve_device(device))
    return evaluate(trained, quant, split, progress, capture)
