"""The gradient-trained family behind the family seam (:mod:`runner.family`): training
one design point (FP32, or quantization-aware from the FP32 training of the same
network), testing it, and its record. The network and its arithmetic are
:mod:`tinysnn_dse.core.diet`'s; the record types, memory references, energy table,
meter and checkpoint format are the ones the STDP family uses.

Random streams, as the STDP family's: training draws from ``Generator(seed)`` (initial
weights, batch order, Poisson spikes), the Vmem ranges of PTQ from ``Generator(seed +
RANGES_SEED_OFFSET)``, and evaluation (stochastic rounding of W and theta, then the test
pass's Poisson spikes and membrane roundings) from ``Generator(seed + EVAL_SEED_OFFSET)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, NamedTuple

import torch

from tinysnn_dse import meter
from tinysnn_dse.core import diet, diet_integer, integer
from tinysnn_dse.core.memory import memory_report
from tinysnn_dse.core.modes import Topology
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.records import DesignPoint, Memory, Outcome, PhaseEnergy, Record
from tinysnn_dse.runner.evaluation import Evaluation
from tinysnn_dse.runner.record import environment_of, measured_fields
from tinysnn_dse.runner.settings import (
    EVAL_SEED_OFFSET,
    RANGE_SAMPLES,
    RANGES_SEED_OFFSET,
    Progress,
    RunSettings,
    Split,
    no_progress,
    sync,
)
from tinysnn_dse.runner.training import Trained

#: the ANN's generator stream of a converted model: ``seed + ANN_SEED_OFFSET``
ANN_SEED_OFFSET = 3_000_017
#: the readout of the family: the output neuron with the largest final membrane
READOUT = "membrane"
#: the family's training backend (``Trained.train_backend``): torch autograd
BACKEND = "torch"


class IntTested(NamedTuple):
    """A fixed-point design as its integer datapath tested it: the constants, the formats
    and every test image's key of the counter-based uniforms."""

    design: diet_integer.IntDiet
    formats: diet.Formats
    keys: torch.Tensor


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def observed_ranges(net: diet.DietNet, split: Split, seed: int) -> diet.Ranges:
    """The ranges of a network's values (:func:`diet.observe`) on the first
    :data:`RANGE_SAMPLES` training images, with their own generator."""
    x = split.assign_x[:RANGE_SAMPLES]
    return diet.observe(net, x, generator=_generator(x.device, seed + RANGES_SEED_OFFSET))


def _formats(quant: QuantSpec, ranges: diet.Ranges) -> diet.Formats:
    return diet.formats_for(ranges, quant.weight_bits, quant.vmem_bits, quant.vth_bits,
                            quant.rounding)  # fmt: skip


#: training images whose ANN pre-activations set a conversion's thresholds (the first ones)
CONVERSION_SAMPLES = 10_000
#: ``cache(key, make)``: a caller's store of tensors made once and shared (explore's
#: artifact folder); ``make()`` makes them where the store has none
Cache = Callable[[str, Callable[[], dict[str, torch.Tensor]]], dict[str, torch.Tensor]]


def ann_weights(model: diet.DietModel, settings: RunSettings, split: Split,
                cache: Cache | None = None) -> list[torch.Tensor]:  # fmt: skip
    """The trained ANN a converted model starts from (:func:`diet.train_ann`, from the
    run's seed, its own generator stream); through ``cache`` where the caller shares it
    (every point that converts the same topology with the same training)."""
    x, y = split.train_x, split.train_y.long()

    def make() -> dict[str, torch.Tensor]:
        g = _generator(x.device, settings.seed + ANN_SEED_OFFSET)
        tc = dataclasses.replace(model.train, epochs=model.ann_epochs or model.train.epochs)
        w = diet.train_ann(model.net, x, y, tc, g)
        return {f"w{k}": t.cpu() for k, t in enumerate(w)}

    got = make() if cache is None else cache(model.ann_key, make)
    return [got[f"w{k}"].to(x.device) for k in range(len(got))]


def train(
    model: diet.DietModel,
    quant: QuantSpec,
    settings: RunSettings,
    split: Split,
    progress: Progress = no_progress,
    reference: Trained | None = None,
    cache: Cache | None = None,
) -> Trained:
    """Train a design point of the family on ``split.train_x``.

    FP32 and PTQ points train in FP32 from the seed's initial weights. An ITQ point
    fine-tunes the FP32 training of the same network (``reference``, or trained here)
    quantization-aware for ``model.qat_epochs`` epochs at ``model.qat_lr``, in the
    formats of the ranges that training reached (docs/model.md: why from FP32)."""
    x, y = split.train_x, split.train_y.long()
    device = x.device
    gen = _generator(device, settings.seed)
    ranges = None
    formats = None
    if quant.scheme == "itq" and not quant.is_fp32:
        if reference is None:
            reference = train(model, QuantSpec(), settings, split,
                              lambda _p, d, t: progress("reference", d, t),
                              cache=cache)  # fmt: skip
        ref_net: diet.DietNet = reference.net  # type: ignore[assignment]
        ranges = observed_ranges(ref_net, split, settings.seed)
        formats = _formats(quant, ranges)
        net = ref_net.to(device)  # a copy: the shared FP32 training stays as it is
        tc = dataclasses.replace(model.train, epochs=model.qat_epochs, lr=model.qat_lr)
    else:
        quant = QuantSpec()
        before = model.stage_before()
        if before is not None:  # an IIR stage: from the previous stage's W, theta, lambda
            if reference is None:
                reference = train(before, QuantSpec(), settings, split,
                                  lambda _p, d, t: progress("stage", d, t),
                                  cache=cache)  # fmt: skip
            prev: diet.DietNet = reference.net  # type: ignore[assignment]
            copy = prev.to(device)  # the previous stage's training stays as it is
            net = diet.DietNet(copy.w, copy.leak, copy.theta, model.net)
            tc = dataclasses.replace(model.train, epochs=model.stage_epochs)
        else:
            reference = None
            if model.init == "ann":  # hybrid conversion: the ANN's weights and thresholds
                w = ann_weights(model, settings, split, cache)
                n_obs = min(CONVERSION_SAMPLES, int(x.shape[0]))
                th = diet.conversion_thresholds(w, x[:n_obs], model.conv_percentile,
                                                model.conv_scale)  # fmt: skip
                net = diet.converted(model.net, w, th, device)
            else:
                net = diet.init_net(model.net, gen, device)
            tc = model.train

    def on_epoch(ep: int, _loss: float) -> None:
        progress("train", ep + 1, tc.epochs)

    with meter.measure(str(device), settings.power_w, sync(device)) as m:
        diet.train(net, x, y, tc, gen, on_epoch, formats)
    images = tc.epochs * int(x.shape[0])
    # an IIR stage's cost includes the stages before it (each at its own timesteps); a
    # QAT fine-tuning's is its own (the FP32 training it starts from is the PTQ points')
    stages = [[model.net.timesteps, images]]
    seconds, measured = m.seconds, asdict(m)
    if quant.is_fp32 and reference is not None:
        stages = [*_stages(reference), *stages]
        seconds += reference.train_seconds
        images += reference.train_images
        measured["energy_j"] += (reference.train_measured or {}).get("energy_j", 0.0)
        measured["seconds"] = seconds
    return Trained(
        net,  # type: ignore[arg-type]
        model,  # type: ignore[arg-type]
        quant,
        settings,
        seconds,
        images,
        train_ops={"samples": images, "stages": stages},  # type: ignore[dict-item]
        train_measured=measured,
        train_backend=BACKEND,
        ranges=ranges,
    )


def evaluate(
    trained: Trained,
    quant: QuantSpec,
    split: Split,
    progress: Progress = no_progress,
    capture: Any = None,
) -> Evaluation:
    """Test a trained point at ``quant``: FP32, PTQ (formats from the ranges the trained
    network reaches on the first :data:`RANGE_SAMPLES` training images) or ITQ (the
    formats it trained in); the weights and thresholds rounded once, every membrane at
    every step (a fully fixed-point design in integers, :mod:`core.diet_integer`).
    Returns the evaluation with its record (no label assignment: the output layer reads
    out) and, for an integer design, :class:`IntTested`; ``capture`` (an integer design
    only) receives each batch's pixel codes and keys, ``capture(pixels, keys)``."""
    net: diet.DietNet = trained.net  # type: ignore[assignment]
    model: diet.DietModel = trained.model  # type: ignore[assignment]
    s = trained.settings
    x = split.eval_x
    gen = _generator(x.device, s.seed + EVAL_SEED_OFFSET)
    steps = None
    formats = design_formats(trained, quant, split)
    if formats is not None:
        net, steps = diet.deployed(net, formats, gen)
    bs = s.batch_size or 1000
    depth = len(model.net.hidden)
    spikes = [0.0] * depth
    preds, silent = [], 0
    # a fully fixed-point design infers in integers (core/diet_integer.py), as its C does
    design = None
    why = "it has FP32 parts" if formats is None else diet_integer.why_not(model.net, formats)
    if capture is not None and why is not None:
        raise ConfigError(f"only a fully fixed-point design of the diet family is captured: {why}")
    if formats is not None and why is None:
        design = diet_integer.design_of(net, formats)
        ukey = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device))
        keys = torch.from_numpy(integer.image_keys(ukey, int(x.shape[0])))
    with meter.measure(str(x.device), s.power_w, sync(x.device)) as m, torch.no_grad():
        for a in range(0, x.shape[0], bs):
            xb = x[a : a + bs]
            if design is not None:
                px = (xb.cpu().to(torch.int64) if model.net.encoding == diet.Encoding.EVENTS
                      else diet_integer.pixels(xb.cpu()))  # fmt: skip
                out, per_layer = diet_integer.infer(design, px, keys[a : a + bs])
                if capture is not None:
                    capture(px, keys[a : a + bs])
                preds.append(out.argmax(dim=1))
                spikes = [t + float(per_layer[:, k].sum()) for k, t in enumerate(spikes)]
                silent += int((per_layer[:, -1] == 0).sum())
            else:
                logits, counts = diet.forward(net, xb, gen, steps)
                preds.append(logits.argmax(dim=1))
                spikes = [t + float(c.sum()) for t, c in zip(spikes, counts, strict=True)]
                silent += int((counts[-1].sum(dim=1) == 0).sum())
            progress("test", min(a + bs, x.shape[0]), x.shape[0])
    pred = torch.cat(preds).cpu() if preds else torch.zeros(0, dtype=torch.int64)
    labels = split.eval_y.cpu()
    n = int(x.shape[0])
    acc = float((pred == labels).to(torch.float64).mean()) if n else 0.0
    ops = diet.ops_of(model.net, x, spikes)
    record = _record(trained, quant, formats, split, acc, silent / n if n else 0.0, ops, net,
                     asdict(m), "integer" if design is not None else "float32")  # fmt: skip
    tested = None if design is None else IntTested(design, formats, keys)  # type: ignore[arg-type]
    return Evaluation(record, None, pred, labels, None, integer=tested)


def design_formats(trained: Trained, quant: QuantSpec, split: Split) -> diet.Formats | None:
    """The formats a trained point is tested in at ``quant``: None (FP32), PTQ's from the
    ranges the trained network reaches on the first :data:`RANGE_SAMPLES` training images,
    or ITQ's (the formats it trained in)."""
    if quant.is_fp32:
        return None
    if quant.scheme == "itq":
        tq = trained.quant
        if trained.ranges is None or (tq.weight_bits, tq.vmem_bits, tq.vth_bits) != (
            quant.weight_bits,
            quant.vmem_bits,
            quant.vth_bits,
        ):
            raise ConfigError(
                "an ITQ point of the diet family is tested at the formats it trained in"
            )
        return _formats(quant, trained.ranges)
    net: diet.DietNet = trained.net  # type: ignore[assignment]
    return _formats(quant, observed_ranges(net, split, trained.settings.seed))


def predictor(
    trained: Trained, quant: QuantSpec, split: Split
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``predict(images)``: the labels the design as tested (:func:`evaluate`, integers
    where it runs in integers) gives images [S, n_in], from a fresh evaluation generator."""

    def predict(x: torch.Tensor) -> torch.Tensor:
        sub = dataclasses.replace(split, eval_x=x, eval_y=split.eval_y[: x.shape[0]])
        pred: torch.Tensor = evaluate(trained, quant, sub).test_counts  # type: ignore[assignment]
        return pred

    return predict


def attackable(
    trained: Trained, quant: QuantSpec, split: Split, generator: torch.Generator
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The design's differentiable forward pass for a white-box attack: its output
    membrane (the logits) of images [S, n_in], by backpropagation through time through
    the surrogate, straight through the Poisson encoder and, in a fixed-point design,
    straight through every rounding (:func:`diet.forward`); Poisson spikes and stochastic
    roundings from ``generator``."""
    net: diet.DietNet = trained.net  # type: ignore[assignment]
    formats = design_formats(trained, quant, split)
    steps = None
    if formats is not None:
        fixed, steps = diet.deployed(net, formats, generator)
    else:
        fixed = diet.DietNet([w.detach() for w in net.w], [lam.detach() for lam in net.leak],
                             [th.detach() for th in net.theta], net.cfg)  # fmt: skip

    def logits(x: torch.Tensor) -> torch.Tensor:
        return diet.forward(fixed, x, generator, steps)[0]

    return logits


def design_point_of(model: diet.DietModel, quant: QuantSpec) -> DesignPoint:
    """The design point a model of the family and a quantization make."""
    c = model.net
    # an event data set's frames are the axis' direct input (axes.py: its values are fixed
    # so that stored studies resume)
    enc = "direct" if c.encoding == diet.Encoding.EVENTS else c.encoding.value
    p = DesignPoint(
        model.model, c.hidden[0], quant.scheme, quant.rounding.value, quant.weight_bits,
        quant.vmem_bits, quant.vth_bits, leak=model.leak, depth=len(c.hidden),
        timesteps=c.timesteps, encoding=enc, trainable=c.trainable.value,
        schedule=model.schedule, init=model.init,
    )  # fmt: skip
    return p.canonical


def memory_of(model: diet.DietModel, formats: diet.Formats | None) -> Memory:
    """Eq. 4 of the family (:func:`diet.memory_bits`), normalized by the same network at
    FP32, and against the STDP baseline of the same input and hidden width at FP32."""
    c = model.net
    bits = diet.memory_bits(c, formats)
    ref = diet.memory_bits(c)
    base = memory_report(c.n_in, c.hidden[0], Topology.INHIBITORY, None, None, None)
    layers = "-".join(str(n) for n in c.sizes)
    weights = sum(a * b for a, b in zip(c.sizes[:-1], c.sizes[1:], strict=True))
    return Memory(
        bits=bits,
        normalized=bits / ref,
        reference=f"diet {layers}, FP32",
        vs_baseline_fp32=bits / base.reference_bits,
        detail={
            "layers": list(c.sizes),
            "n_weights": weights,
            "n_neurons": sum(c.hidden) + c.n_out,
            "reference_bits": ref,
            "baseline_fp32_bits": base.reference_bits,
            "leak_bits": diet.LEAK_BITS if formats is not None else 32,
        },
    )


def _stages(trained: Trained) -> list[list[int]]:
    """The ``[timesteps, images]`` of each training stage a training records (IIR)."""
    ops: dict[str, Any] = dict(trained.train_ops or {})
    return [[int(t), int(n)] for t, n in ops.get("stages") or []]


def _training_energy(model: diet.DietModel, trained: Trained) -> Any:
    """The modelled training energy: each stage (IIR) at its own timesteps."""
    stages = _stages(trained) or [[model.net.timesteps, trained.train_images]]
    ests = [diet.training_energy(dataclasses.replace(model.net, timesteps=int(t)), int(n))
            for t, n in stages]  # fmt: skip
    total = sum(e.total_j for e in ests)
    images = sum(int(n) for _t, n in stages)
    breakdown: dict[str, float] = {}
    for e in ests:
        for k, v in e.breakdown_j.items():
            breakdown[k] = breakdown.get(k, 0.0) + v
    return diet.energy.EnergyEstimate(
        total_j=total,
        per_sample_j=total / images if images else float("nan"),
        breakdown_j=breakdown,
        ops={"samples": images, "dense_ops": sum(int(e.ops["dense_ops"]) for e in ests)},
    )


def _phase(est: Any, measured: dict[str, Any], samples: int) -> PhaseEnergy:
    return PhaseEnergy.from_dict({**measured_fields(measured, samples), **est.to_dict()})


def _record(
    trained: Trained,
    quant: QuantSpec,
    formats: diet.Formats | None,
    split: Split,
    accuracy: float,
    silent: float,
    ops: diet.Ops,
    net: diet.DietNet,
    measured: dict[str, Any],
    datapath: str,
) -> Record:
    model: diet.DietModel = trained.model  # type: ignore[assignment]
    s = trained.settings
    n = int(split.eval_x.shape[0])
    device = split.eval_x.device
    mem = memory_of(model, formats)
    zeros = sum(int((w == 0).sum()) for w in net.w)
    total_w = sum(w.numel() for w in net.w)
    neurobench = {
        "footprint_bytes": mem.bits / 8,
        "connection_sparsity": zeros / total_w,
        "activation_sparsity": ops.activation_sparsity,
        "effective_macs": ops.effective_macs,
        "effective_acs": ops.effective_acs,
        "dense_ops": ops.dense_ops,
    }
    leaky = model.leak == "lif"
    energy = {
        "train": _phase(_training_energy(model, trained), trained.train_measured or {},
                        trained.train_images),
        "infer": _phase(diet.inference_energy(ops, model.net, quant.weight_bits,
                                              quant.vmem_bits, quant.vth_bits, n, leaky),
                        measured, n),
    }  # fmt: skip
    fmt_names = {}
    if formats is not None:
        for what, fs in (("weight", formats.weight), ("vmem", formats.vmem),
                         ("vth", formats.vth)):  # fmt: skip
            for k, f in enumerate(fs):
                if f is not None:
                    fmt_names[f"{what}[{k}]"] = f"{'s' if f.signed else 'u'}{f.bits}.{f.frac_bits}"
    train_s = trained.train_seconds
    return Record(
        design_point=design_point_of(model, quant),
        outcome=Outcome(
            accuracy=accuracy,
            readout=READOUT,
            accuracy_by_readout={READOUT: accuracy},
            eval_set=split.eval_set,
            test_samples=n,
            silent_fraction=silent,
            train_seconds=train_s,
            train_images=trained.train_images,
            train_images_per_s=trained.train_images / train_s if train_s > 0 else float("inf"),
            infer_seconds=measured["seconds"],
            infer_images_per_s=n / measured["seconds"] if measured["seconds"] > 0 else float("inf"),
            latency_ms=model.latency_ms,
            neurobench=neurobench,
        ),
        memory=mem,
        energy=energy,
        formats=fmt_names,
        backend={"train": trained.train_backend, "infer": BACKEND, "infer_datapath": datapath},
        config={
            "model": model.to_dict(),
            # the training stages that made it: [timesteps, images] each (IIR: several)
            "train_stages": _stages(trained),
            "quant": asdict(quant),
            "trained_with": asdict(trained.quant),
            "run": {
                **asdict(s),
                "batch_size": s.batch_size or 1000,
                "data_source": trained.data_source,
            },  # fmt: skip
        },
        environment=environment_of(device),
    )
