"""The reference path: one plain per-step torch loop over batched ``[B, N]`` state, on
any device, for learning (B = 1) and inference. Every compiled path is held equal to it
(tests/core/test_fast_path.py, tests/test_cuda.py).

``I_in = s_in @ W``; ``I_rec`` is the recurrent inhibition of the previous step: tinySNN's
direct lateral inhibition ``-w_lateral * (sum_k s_k - s_j)`` or, for the baseline, the
inhibitory layer's ``-w_inh_exc * (sum_k s_inh_k - s_inh_j)`` (the inhibitory layer is
driven one-to-one by the previous step's excitatory spikes). Input spikes reach the
excitatory layer in the same step; recurrent connections have a one-step delay. Traces
``x`` decay with ``tau_trace`` and are set to 1 on a spike, so a trace depends only on the
time since the last spike and is computed in closed form (:mod:`rules`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from tinysnn_dse.core import integer
from tinysnn_dse.core.encoding import SpikeTrains, draw_key, hashed_uniforms
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.modes import RoundMode, Rule, Topology
from tinysnn_dse.core.neuron import (
    FLOOR_OFF,
    LIFState,
    Net,
    QuantMeter,
    acc_on,
    consts,
    inference_thresholds,
    lateral_current,
    lif_fire,
    lif_integrate,
    one_spike,
    roundings,
    theta_decay_,
    theta_set,
    uniform_rows,
    vmem_floor,
)
from tinysnn_dse.core.params import ModelConfig
from tinysnn_dse.core.prune import fan_in as fan_in_of
from tinysnn_dse.core.quant import Quantizers, quantize, quantize_counted
from tinysnn_dse.core.rules import (
    pair_update_,
    presyn_traces,
    sl_stdp_cols,
    tinysnn_cols,
    traces_at,
    update_points,
)

Tensor = torch.Tensor


def simulate_reference(
    net: Net,
    spikes: Tensor,
    cfg: ModelConfig,
    qz: Quantizers,
    generator: torch.Generator,
    learn: bool,
    stats: OpCounts | None = None,
    vmem_u: Tensor | None = None,
    meter: QuantMeter | None = None,
) -> tuple[Net, Tensor]:
    """Present input ``spikes`` [B, T, n_in] (bool) and return (net, spike counts [B, N]).

    ``stats``, if given, receives the tinySNN rule's synapse updates (the other rules' are
    derived from spike counts by the caller). ``vmem_u`` [T, R, B, N] (inference with
    stochastic rounding, as the compiled kernel rounds): the uniforms of each step's Vmem
    rounding, excitatory then inhibitory, instead of draws from ``generator``. ``meter``
    receives what the quantizers did (:class:`QuantMeter`), as the kernels count it.

    With ``learn`` (B must be 1) the learning rule of ``cfg.rule`` updates W, thresholds
    adapt (a spike adds theta_plus; the decay of the presentation is applied at its end),
    the one-spike rule applies, and under ITQ W is quantized after every weight update
    and Vth after every change (read from its accumulator, ``Net.vth_acc``). Vmem is
    quantized after every state update whenever ``qz.vmem`` is set. Normalisation is left
    to the caller (per sample).
    """
    c = consts(cfg)
    b, t_steps, n_in = spikes.shape
    n = cfg.n_exc
    dev = spikes.device
    lp = cfg.learning
    rule = cfg.rule
    if learn and b != 1:
        raise ValueError("learning runs one sample at a time (B == 1)")

    g = generator
    v_lo, v_hi = math.inf, -math.inf

    v_floor = vmem_floor(cfg, qz)

    def quant_v(x: Tensor, u: Tensor | None, floor: float) -> Tensor:
        nonlocal v_lo, v_hi
        if qz.vmem is None:
            x = torch.clamp(x, min=floor)  # step.floor_at
            if meter is not None and meter.track:
                v_lo, v_hi = min(v_lo, float(x.min())), max(v_hi, float(x.max()))
            return x
        q, n_sat = quantize_counted(x, qz.vmem, qz.rounding, g, u)
        if meter is not None:
            meter.add(0, n_sat, math.inf, -math.inf)
        return torch.clamp(q, min=floor)  # step.floor_at, after the rounding

    def qv_step(t: int, row: int) -> Callable[[Tensor], Tensor]:
        u = None if vmem_u is None or qz.vmem is None else vmem_u[t, row]
        floor = v_floor if row == 0 else FLOOR_OFF  # the excitatory layer's floor
        return lambda x: quant_v(x, u, floor)

    w = net.w.clone() if learn else net.w
    keep = net.keep
    keepf = keep.to(w.dtype) if keep is not None else None
    fan_in = fan_in_of(keep, n_in)
    v_th = cfg.exc.v_th_mv
    theta = (net.theta.clone() if learn else inference_thresholds(net.theta, cfg, qz)).to(dev)
    acc = acc_on(net, cfg, qz) if learn else None
    exc = LIFState(
        v=qz.v(torch.full((b, n), c.exc.v_rest, device=dev), g),
        refr=torch.zeros(b, n, device=dev),
    )
    counts = torch.zeros(b, n, device=dev)
    i_rec = torch.zeros(b, n, device=dev)
    inhibitory = cfg.topology == Topology.INHIBITORY
    if inhibitory:
        inh = LIFState(
            v=qz.v(torch.full((b, n), c.inh.v_rest, device=dev), g),
            refr=torch.zeros(b, n, device=dev),
        )
        # a constant: put on the Vth grid once, deterministically
        inh_thr = float(quantize(torch.tensor(cfg.inh.v_th_mv), qz.vth, RoundMode.NEAREST))
        s_prev = torch.zeros(b, n, dtype=torch.bool, device=dev)

    use_one_spike = learn and cfg.exc.one_spike
    tiebreak = hashed_uniforms(g, (t_steps, b, n), dev) if use_one_spike else None
    vth_key = draw_key(g) if learn and qz.vth is not None and qz.stochastic else 0
    window = c.window if (not learn or rule == Rule.TINYSNN) else 1
    if learn:
        if rule == Rule.TINYSNN:  # traces are read only at the update points
            x_upd = traces_at(
                spikes, update_points(t_steps, c.window), cfg.encoding.dt_ms, lp.tau_trace_ms
            )[0]
        else:
            x_pre_all = presyn_traces(spikes, cfg.encoding.dt_ms, lp.tau_trace_ms)[0]  # [T, n_in]
        x_post = torch.zeros(n, device=dev)
        counts_at_update = torch.zeros(b, n, device=dev)
    i_win = w[:0]
    for t in range(t_steps):
        k = t % window
        if k == 0:  # float only per window: a [B, T, n_in] float copy would be 4x the input
            i_win = spikes[:, t : t + window].to(torch.float32) @ w  # [B, window, N]
        i_total = i_win[:, k] + i_rec
        v = lif_integrate(exc, i_total, c.exc, qv_step(t, 0))
        s = v >= (theta + v_th)
        if use_one_spike:
            s = one_spike(s, tiebreak[t])  # type: ignore[index]
        exc = lif_fire(v, exc.refr, s, c.exc, theta + v_th)
        sf = s.to(torch.float32)
        counts = counts + sf
        # recurrent inhibition for the next step
        if inhibitory:
            vi = lif_integrate(
                inh, s_prev.to(torch.float32) * cfg.inh.w_exc_inh, c.inh, qv_step(t, 1)
            )
            si = vi >= inh_thr
            inh = lif_fire(vi, inh.refr, si, c.inh, inh_thr)
            i_rec = lateral_current(si, cfg.inh.w_inh_exc)
            s_prev = s
        else:
            i_rec = lateral_current(s, cfg.inh.w_lateral)
        if not learn:
            continue
        # ---- learning: thresholds of the neurons that fired, then the rule
        fired = s[0].nonzero().flatten()
        if fired.numel() and cfg.exc.theta_plus_mv != 0:
            assert acc is not None
            base = acc[fired] if qz.vth is not None else theta[fired].to(torch.float64) + v_th
            x = base + cfg.exc.theta_plus_mv
            theta_set(theta, acc, fired, x, t, v_th, qz, vth_key, meter)
        if rule == Rule.TINYSNN:
            if (t + 1) % c.window == 0 or t == t_steps - 1:
                s_max = float(counts.max())
                if s_max > 0:
                    cols = ((counts[0] - counts_at_update[0]) > 0).nonzero().flatten()
                    x_t = x_upd[t // c.window]
                    if cols.numel():
                        w[:, cols] = qz.w(tinysnn_cols(w[:, cols], x_t, s_max, lp), g)
                        if keepf is not None:  # a pruned synapse is never moved
                            w[:, cols] *= keepf[:, cols]
                        if stats is not None:
                            stats.synapse_updates += int(cols.numel()) * fan_in
                counts_at_update = counts
            continue
        x_post = torch.where(s[0], torch.ones_like(x_post), x_post * c.trace_decay)
        if rule == Rule.PAIR:
            pair_update_(w, spikes[0, t], s[0], x_pre_all[t], x_post, lp)
            if qz.weight is not None:
                w.copy_(qz.w(w, g))
            if keepf is not None:
                w.mul_(keepf)
        elif bool(s.any()):  # sl-stdp: only at postsynaptic spikes
            x_t = x_pre_all[t]
            cols = s[0].nonzero().flatten()
            w[:, cols] = qz.w(sl_stdp_cols(w[:, cols], x_t, lp), g)
            if keepf is not None:
                w[:, cols] *= keepf[:, cols]
    if meter is not None:
        meter.add(roundings(cfg, qz, b, t_steps), 0, v_lo, v_hi)
    if not learn:
        return net, counts
    assert acc is not None
    theta_decay_(theta, acc, cfg, qz, vth_key, t_steps, meter)
    return Net(w=w, theta=theta, vth_acc=acc if qz.vth is not None else None, keep=keep), counts


def infer_reference(
    net: Net,
    trains: SpikeTrains,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
    meter: QuantMeter | None = None,
) -> Tensor:
    """The reference of :func:`infer_fast`: stochastic Vmem rounding with the uniforms
    that the kernel hashes in place (one key, drawn first); a design with an integer
    datapath runs :func:`integer.infer_reference`."""
    rows = uniform_rows(cfg, qz)
    b, t_steps, _ = trains.shape
    d = integer.design_of(cfg, qz)
    if d is not None:  # the integer datapath (docs/model.md, "Integer inference")
        keys = integer.image_keys(draw_key(g), b) if rows else None
        wc = torch.from_numpy(integer.weight_codes(net.w, d))
        thr = d.vmem_thresholds(integer.threshold_codes(net.theta, cfg, qz))
        counts, n_sat, _ = integer.infer_reference(wc, thr, trains.dense(), d, keys)
        if meter is not None:
            meter.add(roundings(cfg, qz, b, t_steps), n_sat, math.inf, -math.inf)
        return counts.to(trains.spikes.device)
    u = hashed_uniforms(g, (t_steps, len(rows), b, cfg.n_exc)) if rows else None
    dense = trains.dense()
    return simulate_reference(net, dense, cfg, qz, g, learn=False, vmem_u=u, meter=meter)[1]
