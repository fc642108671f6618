"""Training one design point, or several ITQ points of one network as a design batch,
and what training decides on the way: the Vmem and Vth ranges ITQ needs before it
starts, STDP pruning rounds, and magnitude pruning after training."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

import torch

from tinysnn_dse import meter
from tinysnn_dse.core import prune
from tinysnn_dse.core.backend import Backend, choose
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.params import ModelConfig, QuantSpec
from tinysnn_dse.core.quant import ObservedRanges, Quantizers, with_ranges
from tinysnn_dse.core.sim import (
    DesignBatch,
    Net,
    QuantMeter,
    init_net,
    normalize_q,
    observe_ranges,
    quantize_net,
    train_sample,
)
from tinysnn_dse.runner.settings import (
    RANGE_SAMPLES,
    RANGES_SEED_OFFSET,
    Progress,
    RunSettings,
    Split,
    no_progress,
    sync,
)


@dataclass
class Trained:
    """A trained network and what is needed to evaluate it again. ``net`` and ``model``
    are its family's (runner/family.py): ``sim.Net`` and ``ModelConfig`` for the STDP
    family, ``core.diet.DietNet`` and ``DietModel`` for the gradient-trained one."""

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
    #: the gradient-trained family: the value ranges an ITQ training took its formats
    #: from (``core.diet.Ranges``), which its evaluation uses again
    ranges: Any = None


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
    progress: Progress = no_progress,
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
    with meter.measure(str(device), settings.power_w, sync(device)) as m:
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
    r = _observed(net, x, model, seed, f"{what}, FP32 inference of train[0:{x.shape[0]}]")
    q = with_ranges(quant, r, model)
    source = (
        f"{r.source}: Vmem {r.vmem[0]:.1f} .. {r.vmem[1]:.1f} mV, "
        f"Vth {r.vth[0]:.1f} .. {r.vth[1]:.1f} mV, each widened by 10 % of its span"
    )
    return dataclasses.replace(q, ranges_source=source)


#: the ranges of the last few FP32 passes of :func:`observed_quant`, by what determines
#: them (the network's values, the images', the model, the seed): a study asks for the
#: same FP32 network's ranges once per quantized design point (108 times in
#: ``paper-mnist``), and each pass is an inference of ``RANGE_SAMPLES`` images
_RANGES: OrderedDict[str, tuple[tuple[float, float], tuple[float, float]]] = OrderedDict()
_RANGES_KEPT = 8


def _digest(*tensors: torch.Tensor | None) -> str:
    """A digest of the tensors' dtypes, shapes and values (None counts as itself)."""
    h = hashlib.sha256()
    for t in tensors:
        if t is None:
            h.update(b"none;")
            continue
        c = t.detach().cpu().contiguous()
        h.update(f"{c.dtype}{tuple(c.shape)};".encode())
        h.update(c.view(torch.uint8).numpy().tobytes() if c.numel() else b"")
    return h.hexdigest()


def _observed(net: Net, x: torch.Tensor, model: ModelConfig, seed: int, what: str
              ) -> ObservedRanges:  # fmt: skip
    """:func:`sim.observe_ranges` of ``net`` on ``x`` with the ranges' own generator
    (``seed + RANGES_SEED_OFFSET``), remembered for the process: the pass is a pure
    function of these, so a second equal network gets the first one's numbers without
    running it again."""
    key = "|".join((_digest(net.w, net.theta, net.vth_acc, net.keep, x), repr(model),
                    str(seed), str(x.device)))  # fmt: skip
    if key in _RANGES:
        _RANGES.move_to_end(key)
        vmem, vth = _RANGES[key]
        return ObservedRanges(vmem=vmem, vth=vth, source=what)
    g = torch.Generator(device=x.device).manual_seed(seed + RANGES_SEED_OFFSET)
    r = observe_ranges(net, x, model, g, what)
    _RANGES[key] = (r.vmem, r.vth)
    while len(_RANGES) > _RANGES_KEPT:
        _RANGES.popitem(last=False)
    return r


def itq_ranges(
    model: ModelConfig,
    quant: QuantSpec,
    settings: RunSettings,
    split: Split,
    progress: Progress = no_progress,
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


def train_batch(
    model: ModelConfig,
    quants: list[QuantSpec],
    settings: RunSettings,
    split: Split,
    progress: Progress = no_progress,
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
    with meter.measure(str(device), settings.power_w, sync(device)) as m:
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
