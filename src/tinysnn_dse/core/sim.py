"""The simulation's entry points: learning presentations, training samples, batched
inference and range observation, each on the backend :mod:`backend` chooses.

The concerns live in modules of their own (docs/architecture.md, "The core"):
:mod:`encoding` (spike trains and counter-based uniforms), :mod:`rules` (learning rules,
traces, normalisation), :mod:`neuron` (state, neuron steps, thresholds, quantized
networks), :mod:`reference` (the plain torch loop), :mod:`marshal` (packing state for the
compiled kernels and calling them), :mod:`batch` (design batches), :mod:`events`
(event counts). This module re-exports the names its callers use (``sim.X``); the rest
are imported from their own modules.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from tinysnn_dse.core import gpu_kernels, integer, kernels
from tinysnn_dse.core.backend import Backend, choose, supported
from tinysnn_dse.core.batch import DesignBatch, check_batch_configs
from tinysnn_dse.core.encoding import (
    SpikeTrains,
    counter_thresholds,
    counter_trains,
    draw_key,
    learning_trains,
    poisson,
    poisson_trains,
    rate_scale,
    skip_trains,
)
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.events import count_learning
from tinysnn_dse.core.marshal import (
    boosts_in_one_call,
    infer_drawn,
    infer_fast,
    learn_presentation,
    learn_sample,
    learn_stepwise_presentation,
    normalize_q,
    pack_keys,
)
from tinysnn_dse.core.modes import Rule
from tinysnn_dse.core.neuron import (
    LIFConsts,
    LIFState,
    Net,
    QuantMeter,
    consts,
    init_net,
    lateral_current,
    lif_consts,
    lif_fire,
    lif_integrate,
    new_meter,
    one_spike,
    quantize_net,
    uniform_rows,
)
from tinysnn_dse.core.params import ModelConfig
from tinysnn_dse.core.prune import fan_in, pruned_events
from tinysnn_dse.core.quant import ObservedRanges, Quantizers
from tinysnn_dse.core.reference import infer_reference, simulate_reference
from tinysnn_dse.core.rules import (
    normalize,
    pair_update_,
    presyn_traces,
    sl_stdp_cols,
    tinysnn_cols,
    traces_at,
    update_points,
)
from tinysnn_dse.errors import ConfigError

Tensor = torch.Tensor
K = kernels

__all__ = [
    "Backend", "DesignBatch", "K", "LIFConsts", "LIFState", "Net", "QuantMeter",
    "SpikeTrains", "check_batch_configs", "consts", "gpu_kernels", "infer", "infer_drawn",
    "infer_fast", "infer_reference", "init_net", "kernels", "lateral_current", "lif_consts",
    "lif_fire", "lif_integrate", "new_meter", "normalize", "normalize_q", "observe_ranges",
    "one_spike", "pack_keys", "pair_update_", "poisson", "poisson_trains", "presyn_traces",
    "quantize_net", "rate_scale", "simulate", "simulate_reference", "skip_trains",
    "sl_stdp_cols", "supported", "tinysnn_cols", "traces_at", "train_sample",
    "update_points",
]  # fmt: skip


TRITON_SINGLE = (
    "the triton backend trains tinySNN points as a design batch (runner.train_batch; a "
    "batch of one for a single point), not one presentation at a time"
)


def _learn_backend(
    cfg: ModelConfig, qz: Quantizers, device: torch.device, want: Backend | str | None
) -> Backend:
    """The backend of one point's presentations: Triton's fused kernels run whole design
    batches, so on CUDA a presentation of its own runs the reference loop."""
    b = choose("learn", cfg, qz, device, want)
    if b == Backend.TRITON:
        if want is not None:
            raise ConfigError(TRITON_SINGLE)
        return Backend.REFERENCE
    return b


def simulate(
    net: Net,
    spikes: Tensor | SpikeTrains,
    cfg: ModelConfig,
    qz: Quantizers,
    generator: torch.Generator,
    learn: bool,
    backend: Backend | str | None = None,
    stats: OpCounts | None = None,
    meter: QuantMeter | None = None,
    inplace: bool = False,
) -> tuple[Net, Tensor]:
    """Present ``spikes`` [B, T, n_in] (dense, or compact :class:`SpikeTrains`) with the
    backend :func:`backend.choose` picks for learning (or ``backend``); learning off, the
    reference loop (:func:`infer` runs batched inference). See :func:`simulate_reference`.
    ``inplace``: the compiled learning paths may update ``net.w`` itself (the caller owns
    it: :func:`train_sample`'s re-presentations)."""
    device = spikes.spikes.device if isinstance(spikes, SpikeTrains) else spikes.device
    if learn:
        b = _learn_backend(cfg, qz, device, backend)
        if b == Backend.NUMBA:
            if cfg.rule == Rule.TINYSNN:
                return learn_presentation(net, spikes, cfg, qz, generator, stats, meter, inplace)
            return learn_stepwise_presentation(net, spikes, cfg, qz, generator, meter, inplace)
    elif backend is not None and Backend(backend) != Backend.REFERENCE:
        raise ConfigError("simulate runs inference on the reference loop; use infer()")
    dense = spikes.dense() if isinstance(spikes, SpikeTrains) else spikes
    return simulate_reference(net, dense, cfg, qz, generator, learn, stats, meter=meter)


def train_sample(
    net: Net,
    pixels: Tensor,
    cfg: ModelConfig,
    qz: Quantizers,
    generator: torch.Generator,
    backend: Backend | str | None = None,
    stats: OpCounts | None = None,
    meter: QuantMeter | None = None,
) -> tuple[Net, Tensor]:
    """Learn from ``pixels`` [n_in] in [0, 1]; returns (net, counts [N]) of the last presentation.

    Encodes and simulates with learning; while the image draws fewer than ``min_spikes``
    spikes it is presented again at a boosted rate (learning stays on, as in DC15). Then W
    is normalised (and re-quantized under ITQ). ``backend``: as :func:`simulate`;
    ``stats`` accumulates the events, ``meter`` what the quantizers did.
    """
    b = _learn_backend(cfg, qz, pixels.device, backend)
    if b == Backend.NUMBA and boosts_in_one_call(net, pixels, cfg, qz, generator):
        net, last = learn_sample(net, pixels, cfg, qz, generator, stats, meter)
    else:
        net, last = _presentations(net, pixels, cfg, qz, generator, b, stats, meter)
    if stats is not None:
        stats.samples += 1
        stats.normalisations += 1
        if net.keep is not None:
            stats.pruned_normalised += int((~net.keep).sum())
    fast = b == Backend.NUMBA
    return net._replace(w=normalize_q(net.w, cfg, qz, generator, fast)), last


def _presentations(
    net: Net,
    pixels: Tensor,
    cfg: ModelConfig,
    qz: Quantizers,
    generator: torch.Generator,
    b: Backend,
    stats: OpCounts | None,
    meter: QuantMeter | None,
) -> tuple[Net, Tensor]:
    """:func:`train_sample`'s presentations one by one (where
    :func:`marshal.learn_sample` does not run them in one call); returns (net, counts [N]
    of the last presentation)."""
    enc = cfg.encoding
    for boost in range(int(enc.max_boosts) + 1):
        scale = rate_scale(cfg, boost)
        spikes = learning_trains(pixels.unsqueeze(0), enc.steps, scale, generator)
        # the first presentation copies W; the re-presentations update that copy
        net, counts = simulate(net, spikes, cfg, qz, generator, learn=True, backend=b,
                               stats=stats, meter=meter, inplace=boost > 0)  # fmt: skip
        if stats is not None:
            count_learning([stats], int(spikes.spikes.sum()), [int(counts.sum())], cfg,
                           pruned_events(spikes, net.keep), fan_in(net.keep, cfg.n_in))  # fmt: skip
        if enc.min_spikes <= 0 or float(counts.sum()) >= enc.min_spikes:
            break
    return net, counts[0]


def infer(
    net: Net,
    pixels: Tensor,
    cfg: ModelConfig,
    qz: Quantizers,
    generator: torch.Generator,
    batch_size: int = 256,
    backend: Backend | str | None = None,
    stats: OpCounts | None = None,
    meter: QuantMeter | None = None,
    capture: Capture | None = None,
) -> Tensor:
    """Spike counts [S, N] for ``pixels`` [S, n_in] with learning off, in batches.

    With the ``numba`` backend (:func:`backend.choose`: the CPU's default) batches run in
    the compiled kernel (:func:`kernels.infer_batch`, which sums only active input rows;
    equal to the reference within float32 rounding), which draws the spike trains of
    :func:`skip_trains` itself; with ``reference`` (CUDA's) in :func:`simulate_reference`,
    with :func:`poisson_trains` on CUDA.

    Images that draw fewer than ``min_spikes`` spikes are presented again at a boosted
    rate (as in training) and their counts replaced by the new presentation's.
    ``stats`` accumulates the events of every presentation; ``meter`` what the Vmem
    quantizer did (clipped roundings) and, in FP32, the range of the potentials.
    ``capture``, if given, receives every presentation's input (:data:`Capture`): the
    trains are then drawn and stored (the same trains the kernel draws in place).
    """
    enc = cfg.encoding
    use_fast = choose("infer", cfg, qz, pixels.device, backend) == Backend.NUMBA
    # CPU: spike trains by geometric skipping (both paths, so they see the same spikes)
    skip = pixels.device.type == "cpu" and kernels.HAVE_NUMBA
    encode = skip_trains if skip else poisson_trains
    stochastic = bool(uniform_rows(cfg, qz))
    counter = enc.encoder == "counter"
    image_keys = None
    if counter:  # every image's key (image i: hash(ukey, 0, i)), one draw for the pass
        image_keys = integer.image_keys(draw_key(generator), int(pixels.shape[0]))

    def present(x: Tensor, scale: float, idx: Tensor, boost: int) -> Tensor:
        if use_fast and skip and capture is None and not counter:  # the kernel draws them
            counts, (n_in, n_pruned) = infer_drawn(net, x, scale, cfg, qz, generator, meter)
        else:
            if image_keys is not None:
                thr = counter_thresholds(cfg, boost)
                trains = counter_trains(x, enc.steps, thr, image_keys[idx.numpy()], boost)
            else:
                trains = encode(x, enc.steps, scale, generator)
            if capture is not None:  # with the rounding key the simulation draws next
                ukey = draw_key(_copy(generator)) if stochastic else 0
                keys = integer.image_keys(ukey, x.shape[0]) if stochastic else None
                capture(idx, boost, trains, keys)
            sim = infer_fast if use_fast else infer_reference
            counts = sim(net, trains, cfg, qz, generator, meter)
            n_in = int(trains.spikes.sum()) if stats is not None else 0
            n_pruned = pruned_events(trains, net.keep) if stats is not None else 0
        if stats is not None:
            stats.presentations += x.shape[0]
            stats.steps += x.shape[0] * enc.steps
            stats.input_spikes += n_in
            stats.pruned_events += n_pruned
            stats.exc_spikes += int(counts.sum())
        return counts

    if stats is not None:
        stats.samples += int(pixels.shape[0])
    out = []
    for i in range(0, pixels.shape[0], batch_size):
        x = pixels[i : i + batch_size]
        idx = torch.arange(i, i + x.shape[0])
        counts = present(x, rate_scale(cfg, 0), idx, 0)
        for boost in range(1, int(enc.max_boosts) + 1):
            if enc.min_spikes <= 0:
                break
            weak = (counts.sum(dim=1) < enc.min_spikes).nonzero().flatten()
            if weak.numel() == 0:
                break
            counts[weak] = present(x[weak], rate_scale(cfg, boost), idx[weak], boost)
        out.append(counts)
    if not out:
        return torch.zeros(0, cfg.n_exc, device=pixels.device)
    return torch.cat(out)


#: What :func:`infer` hands a capture for each presentation: the indices of its images
#: in ``pixels`` [B], the boost (0 for the first presentation), their spike trains, and
#: each image's stochastic-rounding key [B] (:func:`integer.image_keys`; None unless
#: Vmem rounds stochastically).
Capture = Callable[[Tensor, int, SpikeTrains, "np.ndarray | None"], None]


def _copy(g: torch.Generator) -> torch.Generator:
    """A generator in ``g``'s state (to read a draw ahead without consuming it)."""
    c = torch.Generator(device=g.device)
    c.set_state(g.get_state())
    return c


def observe_ranges(
    net: Net,
    pixels: Tensor,
    cfg: ModelConfig,
    generator: torch.Generator,
    what: str,
    batch_size: int = 256,
) -> ObservedRanges:
    """The ranges Vmem and Vth take when ``net`` runs in FP32 on ``pixels`` [S, n_in]
    (inference, every presentation boosts included; learning's one-spike rule keeps
    potentials within these, docs/model.md): the observation formats are derived from.
    ``what`` names the pass in the result's ``source``."""
    meter = QuantMeter(track=True)
    infer(net, pixels, cfg, Quantizers.fp32(), generator, batch_size, meter=meter)
    vth = net.theta.detach().cpu().to(torch.float64) + cfg.exc.v_th_mv
    lo, hi = (meter.lo, meter.hi) if meter.lo <= meter.hi else (cfg.exc.v_rest_mv,) * 2
    return ObservedRanges(vmem=(lo, hi), vth=(float(vth.min()), float(vth.max())), source=what)
