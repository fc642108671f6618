"""Network state, neuron steps, learning rules and the simulation loop (method.md 1-2).

Governing equations, per step of ``dt`` (all potentials in mV)::

    v   <- v_rest + (v - v_rest) * exp(-dt / tau_m) + [not refractory] * (I_in + I_rec)
    s    = v >= Vth,   Vth = v_th + theta            (per neuron, learned)
    on s: v <- v_reset, refractory for t_ref, theta <- theta + theta_plus   (learning only)
    theta <- theta * exp(-dt / tau_theta)                                (learning only)

``I_in = s_in @ W``; ``I_rec`` is the recurrent inhibition of the previous step: tinySNN's
direct lateral inhibition ``-w_lateral * (sum_k s_k - s_j)`` or, for the baseline, the
inhibitory layer's ``-w_inh_exc * (sum_k s_inh_k - s_inh_j)`` (the inhibitory layer is
driven one-to-one by the previous step's excitatory spikes). Input spikes reach the
excitatory layer in the same step; recurrent connections have a one-step delay.

Traces ``x`` decay with ``tau_trace`` and are set to 1 on a spike; a trace therefore
depends only on the time since the last spike, ``x(t) = exp(-(t - t_last) dt / tau)``,
which is how the presynaptic traces are computed here (in closed form, for all steps).

State tensors carry a leading batch dimension ``B``; learning runs with ``B == 1``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch

from tinysnn_dse.core import gpu_kernels, kernels
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.params import ExcParams, InhParams, LearningParams, ModelConfig
from tinysnn_dse.core.quant import FixedPoint, Quantizers, quantize

Tensor = torch.Tensor


class Net(NamedTuple):
    """The learned parameters: input weights ``w`` [n_in, n_exc] and thresholds ``theta``."""

    w: Tensor
    theta: Tensor


class LIFState(NamedTuple):
    """Membrane potential ``v`` [B, N] (mV) and remaining refractory steps ``refr`` [B, N]."""

    v: Tensor
    refr: Tensor


class LIFConsts(NamedTuple):
    """Per-step constants of one LIF population, precomputed from its parameters."""

    v_rest: float
    v_reset: float
    decay: float
    ref_steps: float


def lif_consts(p: ExcParams | InhParams, dt_ms: float) -> LIFConsts:
    return LIFConsts(
        v_rest=p.v_rest_mv,
        v_reset=p.v_reset_mv,
        decay=math.exp(-dt_ms / p.tau_m_ms),
        ref_steps=float(round(p.t_ref_ms / dt_ms)),
    )


def init_net(
    cfg: ModelConfig, generator: torch.Generator, device: torch.device | str = "cpu"
) -> Net:
    """W ~ w_init_scale * U(0, 1), columns normalised to ``cfg.norm``; theta = 0."""
    w = cfg.learning.w_init_scale * torch.rand(
        cfg.n_in, cfg.n_exc, generator=generator, device=device
    )
    w = normalize(w, cfg.norm, cfg.learning.w_max)
    return Net(w=w, theta=torch.zeros(cfg.n_exc, device=device))


def lif_integrate(
    st: LIFState, i_total: Tensor, c: LIFConsts, qv: Callable[[Tensor], Tensor]
) -> Tensor:
    """Leak, then integrate ``i_total`` where not refractory; returns the new (quantized) v."""
    v = (st.v - c.v_rest) * c.decay + c.v_rest
    v = torch.addcmul(v, (st.refr <= 0).to(v.dtype), i_total)
    return qv(v)


def lif_fire(v: Tensor, refr: Tensor, s: Tensor, c: LIFConsts) -> LIFState:
    """Reset the neurons in ``s`` (bool) and start their refractory period."""
    v = torch.where(s, torch.full_like(v, c.v_reset), v)
    refr = torch.where(s, torch.full_like(refr, c.ref_steps), refr - 1.0)
    return LIFState(v=v, refr=refr)


def one_spike(s: Tensor, tiebreak: Tensor) -> Tensor:
    """Keep at most one spike per row of ``s`` [B, N]: the one with the largest tiebreak.

    ``tiebreak`` holds uniforms in [0, 1) (:func:`hashed_uniforms`, keyed by the run's generator).
    """
    score = torch.where(s, tiebreak, torch.full_like(tiebreak, -1.0))
    m = score.amax(dim=-1, keepdim=True)
    return (score == m) & (m >= 0)


def lateral_current(s: Tensor, w: float) -> Tensor:
    """tinySNN direct lateral inhibition: ``-w`` into every other neuron of the layer."""
    sf = s.to(torch.float32)
    return (sf - sf.sum(dim=-1, keepdim=True)) * w


def presyn_traces(spikes: Tensor, dt_ms: float, tau_ms: float) -> Tensor:
    """Traces of ``spikes`` [B, T, n] (bool) at every step: exp(-(t - t_last) dt / tau), 0 if none.

    Equal to the recursion ``x <- x * exp(-dt/tau); x[s] = 1`` started from zero.
    """
    b, t, n = spikes.shape
    steps = torch.arange(t, device=spikes.device, dtype=torch.float32).view(1, t, 1)
    last = torch.where(spikes, steps, torch.full_like(steps, -1e9).expand(b, t, n))
    last = torch.cummax(last, dim=1).values
    return torch.exp(-(steps - last) * (dt_ms / tau_ms))


def traces_at(spikes: Tensor, ends: list[int], dt_ms: float, tau_ms: float) -> Tensor:
    """The rows ``ends`` (ascending steps) of :func:`presyn_traces`, at a fraction of its cost.

    Returns [B, len(ends), n]; the same values as ``presyn_traces(spikes, ...)[:, ends]``.
    """
    b, _, n = spikes.shape
    last = torch.full((b, n), -1e9, device=spikes.device)
    out = []
    start = 0
    for end in ends:
        steps = torch.arange(start, end + 1, device=spikes.device, dtype=torch.float32)
        win = torch.where(spikes[:, start : end + 1], steps.view(1, -1, 1), -1e9)
        last = torch.maximum(last, win.amax(dim=1))
        out.append(torch.exp(-(float(end) - last) * (dt_ms / tau_ms)))
        start = end + 1
    return torch.stack(out, dim=1)


def update_points(steps: int, window: int) -> list[int]:
    """Last step of each update window: the tinySNN rule's update points."""
    return [min(t + window, steps) - 1 for t in range(0, steps, window)]


def rate_scale(cfg: ModelConfig, boost: int = 0) -> float:
    """Spike probability per step at full intensity after ``boost`` rate boosts (<= 1)."""
    enc = cfg.encoding
    return min(1.0, (enc.max_rate_hz + boost * enc.rate_boost_hz) * enc.dt_ms / 1000.0)


class SpikeTrains(NamedTuple):
    """Poisson input of a batch in compact form: only pixels that can spike are stored.

    ``img``, ``pix`` [M] (long): image and input index of each non-zero pixel (sorted by
    image, then input); ``spikes`` [M, T] (bool): its spike train; ``shape`` = (B, T, n).
    """

    img: Tensor
    pix: Tensor
    spikes: Tensor
    shape: tuple[int, int, int]

    def dense(self) -> Tensor:
        """[B, T, n] bool."""
        b, t, n = self.shape
        out = torch.zeros(b, n, t, dtype=torch.bool, device=self.spikes.device)
        out[self.img, self.pix] = self.spikes
        return out.transpose(1, 2)


def poisson_trains(
    pixels: Tensor, steps: int, rate_scale: float, generator: torch.Generator
) -> SpikeTrains:
    """Bernoulli-per-step spike trains for intensities ``pixels`` [B, n] in [0, 1].

    ``rate_scale`` = max_rate_hz * dt_ms / 1000 is the spike probability per step at full
    intensity. Uniforms are drawn only for non-zero pixels (zero pixels never spike), one
    [M, T] block from ``generator``.
    """
    b, n = pixels.shape
    img, pix = (pixels > 0).nonzero(as_tuple=True)
    p = pixels[img, pix] * rate_scale
    u = torch.rand(p.shape[0], steps, generator=generator, device=pixels.device)
    return SpikeTrains(img, pix, u < p.unsqueeze(1), (b, steps, n))


@contextmanager
def _kernel_threads() -> Iterator[None]:
    """Run numba's parallel kernels on torch's thread count, and leave torch's count as it
    was: numba's OpenMP layer changes the count torch reads back."""
    n = torch.get_num_threads()
    kernels.set_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def draw_key(generator: torch.Generator) -> int:
    """One key for :func:`kernels.hash_uniform`, drawn from ``generator``."""
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))


def hashed_uniforms(
    generator: torch.Generator, shape: tuple[int, ...], device: torch.device | None = None
) -> Tensor:
    """Uniforms in [0, 1) of ``shape`` from one key drawn from ``generator``: the element
    at leading index ``a`` and flat index ``b`` over the other axes is
    :func:`kernels.hash_uniform` (key, a, b), so a compiled kernel can compute any of them
    in place instead of reading the block. Tie-breaks and the rounding uniforms of design
    batches and inference come from here, far cheaper than torch's CPU generator."""
    rest = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    block = torch.from_numpy(kernels.hash_block(draw_key(generator), shape[0], rest))
    block = block.reshape(shape)
    return block if device is None else block.to(device)


def skip_trains(
    pixels: Tensor, steps: int, rate_scale: float, generator: torch.Generator
) -> SpikeTrains:
    """The same Bernoulli-per-step trains as :func:`poisson_trains`, drawn on the CPU by
    :func:`kernels.geometric_spikes` (geometric gaps between spikes, counter-based
    uniforms keyed by one draw from ``generator``): a few uniforms per spike instead of
    one per step, in parallel threads. Inference and learning on the CPU encode with it."""
    b, n = pixels.shape
    img, pix = (pixels > 0).nonzero(as_tuple=True)
    p = (pixels[img, pix] * rate_scale).numpy().astype(np.float64)
    key = draw_key(generator)
    with _kernel_threads():
        spikes = torch.from_numpy(kernels.geometric_spikes(p, key, steps))
    return SpikeTrains(img, pix, spikes, (b, steps, n))


def learning_trains(
    pixels: Tensor, steps: int, rate_scale: float, generator: torch.Generator
) -> SpikeTrains:
    """Training spike trains for ``pixels`` [B, n]: :func:`skip_trains` where it runs (the
    pixels and the generator on the CPU, with numba), :func:`poisson_trains` elsewhere;
    the same Bernoulli-per-step process. Single-point learning and design batches both
    draw through here, so with the same generator they see the same spikes."""
    cpu = pixels.device.type == "cpu" and generator.device.type == "cpu"
    encode = skip_trains if cpu and kernels.HAVE_NUMBA else poisson_trains
    return encode(pixels, steps, rate_scale, generator)


def poisson(pixels: Tensor, steps: int, rate_scale: float, generator: torch.Generator) -> Tensor:
    """Dense spikes [B, T, n] (bool) of :func:`poisson_trains`."""
    return poisson_trains(pixels, steps, rate_scale, generator).dense()


# ----------------------------------------------------------------------------- learning


def normalize(w: Tensor, norm: float, w_max: float) -> Tensor:
    """Rescale each column (one excitatory neuron's inputs) to sum to ``norm``."""
    col = w.sum(dim=0, keepdim=True).clamp_min(1e-12)
    return (w * (norm / col)).clamp_(0.0, w_max)


def pair_update_(
    w: Tensor, s_pre: Tensor, s_post: Tensor, x_pre: Tensor, x_post: Tensor, p: LearningParams
) -> Tensor:
    """DC15 pair STDP for one step, in place on ``w``; traces include this step's spikes.

    ``dw_ij = -eta_pre * s_pre_i * x_post_j + eta_post * x_pre_i * s_post_j``; shapes
    ``s_pre, x_pre`` [n_in], ``s_post, x_post`` [N]. W is clamped to [0, w_max].
    """
    a = torch.stack((s_pre.to(w.dtype), x_pre), dim=1)  # [n_in, 2]
    b = torch.stack((x_post * -p.eta_pre, s_post.to(w.dtype) * p.eta_post), dim=0)  # [2, N]
    return w.addmm_(a, b).clamp_(0.0, p.w_max)


def sl_stdp_cols(wc: Tensor, x_pre: Tensor, p: LearningParams) -> Tensor:
    """SL-STDP new values of the columns ``wc`` [n_in, k] of neurons that just spiked.

    ``dw_ij = eta (x_pre_i - x_tar) * (w_max - w_ij)`` when ``x_pre_i >= x_tar`` (soft-bounded
    potentiation), else ``eta (x_pre_i - x_tar) * w_ij`` (soft-bounded depression).
    """
    d = (x_pre - p.x_tar).unsqueeze(1)
    bound = torch.where(d >= 0, p.w_max - wc, wc)
    return (wc + p.eta_sl * d * bound).clamp_(0.0, p.w_max)


def tinysnn_cols(wc: Tensor, x_pre: Tensor, s_max: float, p: LearningParams) -> Tensor:
    """tinySNN update (paper Eq. 1-2) of the columns ``wc`` [n_in, k] of neurons that fired
    since the previous update point: ``k = s_max / s_th``,
    ``dw_ij = k * eta * x_pre_i * (w_max - w_ij)``."""
    k = s_max / p.s_th
    return (wc + (k * p.eta) * x_pre.unsqueeze(1) * (p.w_max - wc)).clamp_(0.0, p.w_max)


# --------------------------------------------------------------------------- simulation


class Consts(NamedTuple):
    exc: LIFConsts
    inh: LIFConsts
    theta_decay: float
    trace_decay: float
    steps: int
    window: int
    rate_scale: float


def consts(cfg: ModelConfig) -> Consts:
    enc = cfg.encoding
    return Consts(
        exc=lif_consts(cfg.exc, enc.dt_ms),
        inh=lif_consts(cfg.inh, enc.dt_ms),
        theta_decay=math.exp(-enc.dt_ms / cfg.exc.tau_theta_ms),
        trace_decay=math.exp(-enc.dt_ms / cfg.learning.tau_trace_ms),
        steps=enc.steps,
        window=max(1, int(round(cfg.learning.update_every_ms / enc.dt_ms))),
        rate_scale=enc.max_rate_hz * enc.dt_ms / 1000.0,
    )


def quantize_net(net: Net, cfg: ModelConfig, qz: Quantizers, g: torch.Generator | None) -> Net:
    """Put W and Vth = v_th + theta on their fixed-point grids (PTQ, or ITQ start)."""
    w = qz.w(net.w, g)
    v_th = cfg.exc.v_th_mv
    theta = qz.th(net.theta + v_th, g) - v_th
    return Net(w=w, theta=theta)


def fast_path_ok(cfg: ModelConfig, qz: Quantizers, device: torch.device) -> bool:
    """Whether the compiled learning kernel covers this configuration (else: reference)."""
    if not kernels.HAVE_NUMBA or device.type != "cpu":
        return False
    if qz.rounding != "stochastic" or cfg.rule == "tinysnn":
        return True  # tinySNN: weights are quantized in shared torch code
    return qz.is_fp32  # per-step rules: stochastic rounding only on the reference path


def simulate(
    net: Net,
    spikes: Tensor | SpikeTrains,
    cfg: ModelConfig,
    qz: Quantizers,
    generator: torch.Generator,
    learn: bool,
    fast: bool | None = None,
    stats: OpCounts | None = None,
) -> tuple[Net, Tensor]:
    """Present ``spikes`` [B, T, n_in] (dense, or compact :class:`SpikeTrains`); dispatches
    learning to the compiled fast path when it covers the configuration (``fast=None``), or
    as told. See :func:`simulate_reference`."""
    device = spikes.spikes.device if isinstance(spikes, SpikeTrains) else spikes.device
    if learn and fast is not False and fast_path_ok(cfg, qz, device):
        if cfg.rule == "tinysnn":
            return _learn_fast_presentation(net, spikes, cfg, qz, generator, stats)
        dense = spikes.dense() if isinstance(spikes, SpikeTrains) else spikes
        return _learn_fast_stepwise(net, dense, cfg, qz, generator)
    if fast:
        raise ValueError("the fast path does not cover this configuration")
    dense = spikes.dense() if isinstance(spikes, SpikeTrains) else spikes
    return simulate_reference(net, dense, cfg, qz, generator, learn, stats)


def simulate_reference(
    net: Net,
    spikes: Tensor,
    cfg: ModelConfig,
    qz: Quantizers,
    generator: torch.Generator,
    learn: bool,
    stats: OpCounts | None = None,
    vmem_u: Tensor | None = None,
) -> tuple[Net, Tensor]:
    """Present input ``spikes`` [B, T, n_in] (bool) and return (net, spike counts [B, N]).

    ``stats``, if given, receives the tinySNN rule's synapse updates (the other rules' are
    derived from spike counts by the caller). ``vmem_u`` [T, R, B, N] (inference with
    stochastic rounding, as the compiled kernel rounds): the uniforms of each step's Vmem
    rounding, excitatory then inhibitory, instead of draws from ``generator``.

    With ``learn`` (B must be 1) the learning rule of ``cfg.rule`` updates W, theta adapts,
    the one-spike rule applies, and under ITQ (``qz`` not FP32) W is quantized after every
    weight update and Vth after every theta change. Vmem is quantized after every state
    update whenever ``qz.vmem`` is set. Normalisation is left to the caller (per sample).
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

    def qv(x: Tensor) -> Tensor:
        return qz.v(x, g)

    def qv_step(t: int, row: int) -> Callable[[Tensor], Tensor]:
        if vmem_u is None or qz.vmem is None:
            return qv
        return lambda x: quantize(x, qz.vmem, qz.rounding, u=vmem_u[t, row])

    w, theta = (net.w.clone() if learn else net.w), net.theta
    v_th = cfg.exc.v_th_mv
    thr = qz.th(theta + v_th, g).expand(b, n) if qz.vth is not None else (theta + v_th).expand(b, n)
    exc = LIFState(
        v=qv(torch.full((b, n), c.exc.v_rest, device=dev)), refr=torch.zeros(b, n, device=dev)
    )
    counts = torch.zeros(b, n, device=dev)
    i_rec = torch.zeros(b, n, device=dev)
    inhibitory = cfg.topology == "inhibitory"
    if inhibitory:
        inh = LIFState(
            v=qv(torch.full((b, n), c.inh.v_rest, device=dev)),
            refr=torch.zeros(b, n, device=dev),
        )
        # a constant: put on the Vth grid once, deterministically
        inh_thr = float(quantize(torch.tensor(cfg.inh.v_th_mv), qz.vth, "nearest"))
        s_prev = torch.zeros(b, n, dtype=torch.bool, device=dev)

    use_one_spike = learn and cfg.exc.one_spike
    tiebreak = hashed_uniforms(g, (t_steps, b, n), dev) if use_one_spike else None
    window = c.window if (not learn or rule == "tinysnn") else 1
    if learn:
        if rule == "tinysnn":  # traces are read only at the update points
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
        s = v >= thr
        if use_one_spike:
            s = one_spike(s, tiebreak[t])  # type: ignore[index]
        exc = lif_fire(v, exc.refr, s, c.exc)
        sf = s.to(torch.float32)
        counts = counts + sf
        # recurrent inhibition for the next step
        if inhibitory:
            vi = lif_integrate(
                inh, s_prev.to(torch.float32) * cfg.inh.w_exc_inh, c.inh, qv_step(t, 1)
            )
            si = vi >= inh_thr
            inh = lif_fire(vi, inh.refr, si, c.inh)
            i_rec = lateral_current(si, cfg.inh.w_inh_exc)
            s_prev = s
        else:
            i_rec = lateral_current(s, cfg.inh.w_lateral)
        if not learn:
            continue
        # ---- learning: thresholds, traces and the rule
        theta = theta * c.theta_decay + sf[0] * cfg.exc.theta_plus_mv
        if qz.vth is not None:
            thr = qz.th(theta + v_th, g).expand(b, n)
            theta = thr[0] - v_th
        else:
            thr = (theta + v_th).expand(b, n)
        if rule == "tinysnn":
            if (t + 1) % c.window == 0 or t == t_steps - 1:
                s_max = float(counts.max())
                if s_max > 0:
                    cols = ((counts[0] - counts_at_update[0]) > 0).nonzero().flatten()
                    x_t = x_upd[t // c.window]
                    if cols.numel():
                        w[:, cols] = qz.w(tinysnn_cols(w[:, cols], x_t, s_max, lp), g)
                        if stats is not None:
                            stats.synapse_updates += int(cols.numel()) * n_in
                counts_at_update = counts
            continue
        x_post = torch.where(s[0], torch.ones_like(x_post), x_post * c.trace_decay)
        if rule == "pair":
            pair_update_(w, spikes[0, t], s[0], x_pre_all[t], x_post, lp)
            if qz.weight is not None:
                w.copy_(qz.w(w, g))
        elif bool(s.any()):  # sl-stdp: only at postsynaptic spikes
            x_t = x_pre_all[t]
            cols = s[0].nonzero().flatten()
            w[:, cols] = qz.w(sl_stdp_cols(w[:, cols], x_t, lp), g)
    return Net(w=w, theta=theta), counts


def _qparams(fmt: FixedPoint | None, rounding: str) -> np.ndarray:
    if fmt is None:
        return np.zeros(6, dtype=np.float64)
    inv = 1.0 / fmt.eps
    off = {"nearest": 0.5, "truncate": 0.0, "stochastic": -1.0}[rounding]
    return np.array([1.0, inv, fmt.eps, fmt.lo * inv, fmt.hi * inv, off], dtype=np.float64)


class _FastState(NamedTuple):
    """numpy views (float32) of the learning state, shared by both fast kernels."""

    theta_t: Tensor
    counts_t: Tensor
    arrays: tuple[np.ndarray, ...]  # v, refr, theta, counts, i_rec, inh_v, inh_refr, s_prev
    consts: tuple  # ex_c, in_c, v_th, theta_decay, theta_plus, one_spike, inhibitory, ...
    tkey: int  # tie-break key (kernels.hash_uniform)


def _fast_state(
    net: Net, spikes: Tensor | SpikeTrains, cfg: ModelConfig, qz: Quantizers, g: torch.Generator
) -> _FastState:
    """Initial state and constants, drawing random numbers as the reference does."""
    c = consts(cfg)
    n = cfg.n_exc
    f32 = np.float32
    theta_t = net.theta.clone()
    if qz.vth is not None:  # as the reference: Vth on its grid from the start
        theta_t = qz.th(theta_t + cfg.exc.v_th_mv, g) - cfg.exc.v_th_mv
    v = qz.v(torch.full((1, n), c.exc.v_rest), g)[0].numpy().copy()
    inh_t = torch.full((1, n), c.inh.v_rest)
    if cfg.topology == "inhibitory":  # drawn only where the reference draws it
        inh_t = qz.v(inh_t, g)
    inh_v = inh_t[0].numpy().copy()
    one = cfg.exc.one_spike
    tkey = draw_key(g) if one else 0  # the kernels hash the reference's tie-breaks
    counts_t = torch.zeros(n)
    z = np.zeros(n, f32)
    arrays = (v, z.copy(), theta_t.numpy(), counts_t.numpy(), z.copy(), inh_v, z.copy(), z.copy())
    inhibitory = cfg.topology == "inhibitory"
    inh_thr = float(quantize(torch.tensor(cfg.inh.v_th_mv), qz.vth, "nearest"))
    k = (
        np.array([c.exc.v_rest, c.exc.v_reset, c.exc.decay, c.exc.ref_steps], f32),
        np.array([c.inh.v_rest, c.inh.v_reset, c.inh.decay, c.inh.ref_steps], f32),
        f32(cfg.exc.v_th_mv),
        f32(c.theta_decay),
        f32(cfg.exc.theta_plus_mv),
        one,
        inhibitory,
        f32(cfg.inh.w_inh_exc if inhibitory else cfg.inh.w_lateral),
        f32(cfg.inh.w_exc_inh),
        f32(inh_thr),
        _qparams(qz.vmem, qz.rounding),
        _qparams(qz.vth, qz.rounding),
    )
    return _FastState(theta_t, counts_t, arrays, k, tkey)


def _by_input(spikes: Tensor | SpikeTrains) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's spikes, input by input, as :func:`kernels.tinysnn_steps` reads them:
    (iptr [M+1], times, rows [M]) with active input ``m`` = row ``rows[m]`` of W
    (ascending) spiking at steps ``times[iptr[m] .. iptr[m+1]-1]`` (ascending)."""
    if isinstance(spikes, SpikeTrains):
        rows, trains = spikes.pix, spikes.spikes
    else:  # dense [1, T, n_in]: its active inputs as compact trains
        sp = spikes[0].T
        rows = sp.any(dim=1).nonzero().flatten()
        trains = sp[rows].contiguous()
    iptr, times = kernels.spikes_by_input(trains.numpy())
    return iptr, times, rows.numpy().astype(np.int64)


def _csr_one(spikes: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """CSR rows (``ptr`` [T+1], ``idx``) of the active inputs of each step of ``spikes``
    [1, T, n], inputs ascending within a step."""
    sp = spikes[0]
    ptr = np.zeros(sp.shape[0] + 1, dtype=np.int64)
    np.cumsum(sp.sum(dim=1).numpy(), out=ptr[1:])
    return ptr, sp.nonzero()[:, 1].numpy().astype(np.int64)


def _learn_fast_presentation(
    net: Net,
    spikes: Tensor | SpikeTrains,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
    stats: OpCounts | None = None,
) -> tuple[Net, Tensor]:
    """tinySNN-rule learning of one sample in compiled code (any rounding).

    FP32 or deterministic weight rounding: one call of :func:`kernels.learn_tinysnn`.
    Stochastic weight rounding: per update window, :func:`kernels.tinysnn_steps`, then
    W's uniforms drawn here, then :func:`kernels.tinysnn_rule`. Either way the random
    numbers are the reference's, in its order. The input current sums only the active
    rows of W (the reference uses a window product) and the rule runs in the kernel, so
    results agree to float32 rounding, not bitwise (see tests/core/test_fast_path.py).
    """
    c = consts(cfg)
    lp = cfg.learning
    st = _fast_state(net, spikes, cfg, qz, g)
    iptr, times, rows_w = _by_input(spikes)
    t_steps, n, n_in = spikes.shape[1], cfg.n_exc, cfg.n_in
    rows = _uniform_rows(cfg, qz)
    w = net.w.clone().contiguous()
    wn = w.numpy()
    f32 = np.float32
    lr = np.array([lp.eta, lp.s_th, lp.w_max, cfg.encoding.dt_ms / lp.tau_trace_ms], f32)
    wq = _qparams(qz.weight, qz.rounding)
    if qz.weight is None or qz.rounding != "stochastic":
        u = np.zeros((t_steps if rows else 1, 3, n), dtype=np.float32)
        if rows:  # one block equals the reference's per-step draws, in its order
            u[:, rows] = torch.rand(t_steps, len(rows), n, generator=g).numpy()
        n_cols = kernels.learn_tinysnn(  # type: ignore[call-arg]
            wn, iptr, times, rows_w, t_steps, st.tkey, u, c.window, lr, wq, 0,
            *st.arrays, *st.consts,
        )  # fmt: skip
    else:
        n_cols = 0
        counts = st.arrays[3]
        at_update = counts.copy()
        last = np.full(n_in, -1, dtype=np.int64)
        pos = iptr[:-1].copy()
        u_win = np.zeros((c.window if rows else 1, 3, n), dtype=np.float32)
        for t0 in range(0, t_steps, c.window):
            t1 = min(t0 + c.window, t_steps)
            uw_steps = u_win
            if rows:  # the window's Vmem/Vth uniforms, then (at its end) W's
                uw_steps = u_win[: t1 - t0]
                uw_steps[:, rows] = torch.rand(t1 - t0, len(rows), n, generator=g).numpy()
            kernels.tinysnn_steps(  # type: ignore[call-arg]
                wn, iptr, times, rows_w, pos, t0, t1, last, st.tkey, uw_steps,
                *st.arrays, *st.consts,
            )  # fmt: skip
            s_max = float(counts.max())
            if s_max > 0:
                cols = np.nonzero(counts - at_update > 0)[0]
                if cols.size:
                    uw = torch.rand(n_in, cols.size, generator=g).numpy()
                    kernels.tinysnn_rule(wn, t1 - 1, last, cols, f32(s_max), lr, wq, uw, 0)
                    n_cols += int(cols.size)
            at_update[:] = counts
    if stats is not None:
        stats.synapse_updates += int(n_cols) * n_in
    return Net(w=w, theta=st.theta_t), st.counts_t.unsqueeze(0)


def _uniform_rows(cfg: ModelConfig, qz: Quantizers, learn: bool = True) -> list[int]:
    """Which stochastic-rounding draws each step makes, in the reference's order:
    0 = Vmem, 1 = inhibitory Vmem, 2 = Vth (learning only); empty if rounding is
    deterministic."""
    if qz.rounding != "stochastic":
        return []
    rows = []
    if qz.vmem is not None:
        rows.append(0)
        if cfg.topology == "inhibitory":
            rows.append(1)
    if learn and qz.vth is not None:
        rows.append(2)
    return rows


def _learn_fast_stepwise(
    net: Net, spikes: Tensor, cfg: ModelConfig, qz: Quantizers, g: torch.Generator
) -> tuple[Net, Tensor]:
    """``pair`` / ``sl-stdp`` learning of one sample in one compiled call.

    Same random numbers as the reference; the input current sums only the active rows of W
    (the reference uses a dense product), so results agree to float32 rounding, not bitwise.
    """
    lp = cfg.learning
    st = _fast_state(net, spikes, cfg, qz, g)
    x_pre_all = presyn_traces(spikes, cfg.encoding.dt_ms, lp.tau_trace_ms)[0].contiguous()
    ptr, idx = _csr_one(spikes)
    w = net.w.clone().contiguous()
    f32 = np.float32
    lr = np.array([lp.eta_pre, lp.eta_post, lp.eta_sl, lp.x_tar, lp.w_max], f32)
    rule = 1 if cfg.rule == "pair" else 2
    kernels.learn_stepwise(  # type: ignore[call-arg]
        w.numpy(), ptr, idx, x_pre_all.numpy(), st.tkey, rule, lr,
        _qparams(qz.weight, qz.rounding), *st.arrays, *st.consts, f32(consts(cfg).trace_decay),
    )  # fmt: skip
    return Net(w=w, theta=st.theta_t), st.counts_t.unsqueeze(0)


def train_sample(
    net: Net,
    pixels: Tensor,
    cfg: ModelConfig,
    qz: Quantizers,
    generator: torch.Generator,
    fast: bool | None = None,
    stats: OpCounts | None = None,
) -> tuple[Net, Tensor]:
    """Learn from ``pixels`` [n_in] in [0, 1]; returns (net, counts [N]) of the last presentation.

    Encodes and simulates with learning; while the image draws fewer than ``min_spikes``
    spikes it is presented again at a boosted rate (learning stays on, as in DC15). Then W
    is normalised (and re-quantized under ITQ). ``stats`` accumulates the events.
    """
    enc = cfg.encoding
    for boost in range(int(enc.max_boosts) + 1):
        scale = rate_scale(cfg, boost)
        spikes = learning_trains(pixels.unsqueeze(0), enc.steps, scale, generator)
        net, counts = simulate(net, spikes, cfg, qz, generator, learn=True, fast=fast, stats=stats)
        if stats is not None:
            _count_learning([stats], int(spikes.spikes.sum()), [int(counts.sum())], cfg)
        if enc.min_spikes <= 0 or float(counts.sum()) >= enc.min_spikes:
            break
    if stats is not None:
        stats.samples += 1
        stats.normalisations += 1
    w = normalize(net.w, cfg.norm, cfg.learning.w_max)
    if qz.weight is not None:
        w = qz.w(w, generator)
    return Net(w=w, theta=net.theta), counts[0]


class DesignBatch:
    """K design points of one tinySNN-rule model, trained together on shared input.

    Each training sample is encoded once and presented to every point in one parallel
    compiled call (:func:`kernels.learn_tinysnn_multi`); each point keeps its own weights,
    thresholds and fixed-point formats (any mix of precisions and roundings). The points
    share their random numbers (common random numbers): spikes, tie-breaks and Vmem/Vth
    rounding uniforms from the run's generator, W's stochastic-rounding uniforms from a
    counter-based hash keyed by a draw from it. A point that draws too few spikes is
    re-presented at a boosted rate, as in :func:`train_sample`; the boosted spikes are
    drawn once for all points that need them.

    With deterministic rounding and no re-presentation each point computes what
    :func:`train_sample` computes from the same spikes and tie-breaks (to float32
    rounding; tests/core/test_design_batch.py). The numbers differ from K separate runs
    with the same seed only in which random numbers each point sees: separate runs draw
    their own, a batch shares them.

    On the CPU the points run in Numba threads; on CUDA (``device``, default the
    networks' device) in the fused Triton kernels of :mod:`gpu_kernels`, one program per
    point. Random numbers come from the generator passed to :meth:`train_sample`, on
    its own device: with a CPU generator a CUDA batch sees the numbers a CPU batch sees
    and ends where it ends, to float32 rounding (tests/test_cuda.py).
    """

    def __init__(
        self,
        nets: list[Net],
        cfg: ModelConfig,
        qzs: list[Quantizers],
        device: torch.device | str | None = None,
        cfgs: list[ModelConfig] | None = None,
    ) -> None:
        if not nets or len(nets) != len(qzs):
            raise ValueError("a design batch needs one quantizer per network, at least one")
        cfgs = cfgs or [cfg] * len(nets)
        if len(cfgs) != len(nets):
            raise ValueError("a design batch needs one model configuration per network")
        check_batch_configs(cfg, cfgs)
        self.device = torch.device(device) if device is not None else nets[0].w.device
        if cfg.rule != "tinysnn" or not batch_ok(self.device):
            raise ValueError(
                "design batches cover the tinysnn rule, with numba on the CPU and Triton on CUDA"
            )
        self.cfg, self.qzs, self.k = cfg, qzs, len(nets)
        c = consts(cfg)
        n, f32 = cfg.n_exc, np.float32
        dev = self.device
        self.w = torch.stack([net.w.to(dev, torch.float32) for net in nets]).contiguous()
        self.theta = torch.stack([net.theta.to(dev, torch.float32) for net in nets])
        self.theta = self.theta.contiguous()
        self.wq = np.stack([_qparams(q.weight, q.rounding) for q in qzs])
        self.vq = np.stack([_qparams(q.vmem, q.rounding) for q in qzs])
        self.tq = np.stack([_qparams(q.vth, q.rounding) for q in qzs])
        # Initial potentials on each Vmem grid (round-to-nearest: a fixed value needs no
        # random draw) and the inhibitory threshold on each Vth grid, as the reference.
        self.v0 = np.stack([_grid(c.exc.v_rest, q.vmem, n) for q in qzs])
        self.iv0 = np.stack([_grid(c.inh.v_rest, q.vmem, n) for q in qzs])
        self.inh_thr = np.array([_grid(cfg.inh.v_th_mv, q.vth, 1)[0] for q in qzs], f32)
        self.neuron_draws = any(
            q.rounding == "stochastic" and (q.vmem is not None or q.vth is not None) for q in qzs
        )
        self.weight_draws = any(q.rounding == "stochastic" and q.weight is not None for q in qzs)
        inhibitory = cfg.topology == "inhibitory"
        self.ex_c = np.array([c.exc.v_rest, c.exc.v_reset, c.exc.decay, c.exc.ref_steps], f32)
        self.in_c = np.array([c.inh.v_rest, c.inh.v_reset, c.inh.decay, c.inh.ref_steps], f32)
        self.scalars = (
            f32(cfg.exc.v_th_mv), f32(c.theta_decay), cfg.exc.one_spike, inhibitory,
            f32(cfg.inh.w_exc_inh),
        )  # fmt: skip
        # per point: the learning parameters a batch may vary (BATCH_PARAMS)
        self.theta_plus = np.array([q.exc.theta_plus_mv for q in cfgs], f32)
        self.w_lat = np.array(
            [q.inh.w_inh_exc if inhibitory else q.inh.w_lateral for q in cfgs], f32
        )
        dt_tau = cfg.encoding.dt_ms / cfg.learning.tau_trace_ms
        self.lr = np.array(
            [[q.learning.eta, q.learning.s_th, q.learning.w_max, dt_tau] for q in cfgs], f32
        )
        self.norm = np.array([q.norm for q in cfgs], f32)
        self.window = c.window
        self.n_cols = np.zeros(self.k, dtype=np.int64)
        self.gpu = None
        if dev.type == "cuda":
            self.gpu = gpu_kernels.LearnLaunch(
                dev, self.wq, self.vq, self.tq, self.inh_thr, self.ex_c, self.in_c,
                self.scalars, self.theta_plus, self.w_lat, self.lr, self.norm, self.window,
                cfg.n_in, n,
            )  # fmt: skip
            self.n_cols_t = torch.zeros(self.k, dtype=torch.int64, device=dev)
            self.v0_t = torch.as_tensor(self.v0, device=dev)
            self.iv0_t = torch.as_tensor(self.iv0, device=dev)

    def _key(self, g: torch.Generator) -> int:
        """A hash key for W's stochastic rounding; drawn only when some point needs one, so
        that deterministic batches consume the generator as single runs do."""
        if not self.weight_draws:
            return 0
        return draw_key(g)

    def nets(self) -> list[Net]:
        """The current network of every point (copies)."""
        return [Net(w=self.w[i].clone(), theta=self.theta[i].clone()) for i in range(self.k)]

    def columns_updated(self) -> np.ndarray:
        """Columns updated by the rule so far, per point [K] (for the event counts)."""
        if self.gpu is not None:
            return self.n_cols_t.cpu().numpy()
        return self.n_cols.copy()

    def train_sample(
        self, pixels: Tensor, generator: torch.Generator, stats: list[OpCounts] | None = None
    ) -> Tensor:
        """Learn from ``pixels`` [n_in] in [0, 1] at every point; returns each point's spike
        counts [K, N] of its last presentation. ``stats`` (one per point) accumulate the
        events, as :func:`train_sample` counts them."""
        cfg, enc, g = self.cfg, self.cfg.encoding, generator
        k, n, t_steps = self.k, cfg.n_exc, enc.steps
        f32 = np.float32
        active = np.ones(k, dtype=np.bool_)
        final = np.zeros((k, n), dtype=f32)
        gdev = g.device
        for boost in range(int(enc.max_boosts) + 1):
            trains = learning_trains(
                pixels.to(gdev).unsqueeze(0), t_steps, rate_scale(cfg, boost), g
            )
            tkey = draw_key(g) if cfg.exc.one_spike else 0  # tie-breaks, hashed in the kernel
            u = None
            if self.neuron_draws:
                u = hashed_uniforms(g, (t_steps, 3, n), gdev)
            key = self._key(g)
            cols_before = self.columns_updated() if stats is not None else None
            counts, n_pre = self._present(active, trains, tkey, u, key)
            final[active] = counts[active]
            if stats is not None and cols_before is not None:
                cols_now = self.columns_updated()
                idx = np.flatnonzero(active)  # counted once for all points, on the host
                n_post = counts[idx].sum(axis=1, dtype=np.float64).astype(np.int64).tolist()
                _count_learning([stats[i] for i in idx], n_pre, n_post, cfg)
                for i in idx:
                    stats[i].synapse_updates += int(cols_now[i] - cols_before[i]) * cfg.n_in
            if enc.min_spikes <= 0:
                break
            active &= counts.sum(axis=1) < enc.min_spikes
            if not active.any():
                break
        key = self._key(g)
        if self.gpu is not None:
            self.gpu.normalize(self.w, key)
        else:
            with _kernel_threads():
                kernels.normalize_multi(
                    self.w.numpy(), self.norm, f32(cfg.learning.w_max), self.wq, key
                )
        if stats is not None:
            for st in stats:
                st.samples += 1
                st.normalisations += 1
        return torch.from_numpy(final)

    def _present(
        self,
        active: np.ndarray,
        trains: SpikeTrains,
        tkey: int,
        u: Tensor | None,
        key: int,
    ) -> tuple[np.ndarray, int]:
        """One presentation of ``trains`` to the ``active`` points; returns their spike
        counts [K, N] (zeros for inactive points) and the number of input spikes.
        ``tkey``: the tie-breaks' hash key."""
        k, n, f32 = self.k, self.cfg.n_exc, np.float32
        t_steps = trains.shape[1]
        if self.gpu is not None:
            dev = self.device
            tiebreak = torch.zeros(t_steps, n)
            if self.cfg.exc.one_spike:  # the numbers the CPU kernel hashes, as a block
                tiebreak = torch.from_numpy(kernels.hash_block(tkey, t_steps, n))
            counts_t = torch.zeros(k, n, device=dev)
            self.gpu(
                self.w, torch.as_tensor(active, dtype=torch.int32, device=dev), trains,
                tiebreak.to(dev), None if u is None else u.to(dev), key,
                self.v0_t.clone(), self.theta, counts_t, self.iv0_t.clone(), self.n_cols_t,
            )  # fmt: skip
            return counts_t.cpu().numpy(), int(trains.spikes.sum())
        iptr, times, rows = _by_input(trains)
        un = np.zeros((1, 3, n), f32) if u is None else u.numpy()
        v, iv = self.v0.copy(), self.iv0.copy()
        counts, z = np.zeros((k, n), f32), np.zeros((k, n), f32)
        with _kernel_threads():
            kernels.learn_tinysnn_multi(  # type: ignore[call-arg]
                self.w.numpy(), active, iptr, times, rows, t_steps, tkey, un,
                self.window, self.lr,
                self.wq, key, v, z.copy(), self.theta.numpy(), counts, z.copy(), iv, z.copy(),
                z.copy(), self.ex_c, self.in_c, *self.scalars, self.theta_plus, self.w_lat,
                self.inh_thr, self.vq, self.tq, self.n_cols,
            )  # fmt: skip
        return counts, int(iptr[-1])


BATCH_PARAMS = ("theta_plus_mv", "eta", "s_th", "w_lateral", "w_inh_exc", "norm_per_input")


def check_batch_configs(cfg: ModelConfig, cfgs: list[ModelConfig]) -> None:
    """Raise ValueError unless every one of ``cfgs`` equals ``cfg`` outside
    :data:`BATCH_PARAMS` (what a design batch may vary per point)."""
    r = dataclasses.replace

    def shape(c: ModelConfig) -> ModelConfig:
        return r(
            c,
            exc=r(c.exc, theta_plus_mv=0.0),
            inh=r(c.inh, w_lateral=0.0, w_inh_exc=0.0),
            learning=r(c.learning, eta=0.0, s_th=1.0, norm_per_input=0.0),
        )

    if any(shape(c) != shape(cfg) for c in cfgs):
        raise ValueError(
            "the points of a design batch may differ only in " + ", ".join(BATCH_PARAMS)
        )


def batch_ok(device: torch.device) -> bool:
    """Whether design batches (and fused tinySNN learning) run on ``device``: Numba on
    the CPU, Triton on CUDA."""
    if device.type == "cuda":
        return gpu_kernels.available(device)
    return kernels.HAVE_NUMBA and device.type == "cpu"


def _grid(value: float, fmt: FixedPoint | None, n: int) -> np.ndarray:
    """``value`` put on ``fmt``'s grid by round-to-nearest, as a float32 [n] array."""
    x = torch.full((n,), value)
    return quantize(x, fmt, "nearest").numpy().astype(np.float32)


def _count_learning(stats: list[OpCounts], n_pre: int, n_post: list[int], cfg: ModelConfig) -> None:
    """Add one learning presentation's events to each of ``stats`` (points that saw the
    same ``n_pre`` input spikes and fired ``n_post`` excitatory spikes each); the tinySNN
    rule counts its own synapse updates."""
    t_steps = cfg.encoding.steps
    if cfg.rule == "pair":
        traces = t_steps * (cfg.n_in + cfg.n_exc)
    elif cfg.rule == "sl-stdp":
        traces = t_steps * cfg.n_in
    else:  # traces read only at the update points
        traces = len(update_points(t_steps, consts(cfg).window)) * cfg.n_in
    for st, post in zip(stats, n_post, strict=True):
        st.presentations += 1
        st.steps += t_steps
        st.input_spikes += n_pre
        st.exc_spikes += post
        st.trace_updates += traces
        if cfg.rule == "pair":  # depression row per input spike, potentiation column per output
            st.synapse_updates += n_pre * cfg.n_exc + post * cfg.n_in
        elif cfg.rule == "sl-stdp":
            st.synapse_updates += post * cfg.n_in


def infer_fast_ok(qz: Quantizers, device: torch.device) -> bool:
    """Whether the compiled inference kernel covers this configuration (any rounding)."""
    return kernels.HAVE_NUMBA and device.type == "cpu"


def _infer_reference(
    net: Net, trains: SpikeTrains, cfg: ModelConfig, qz: Quantizers, g: torch.Generator
) -> Tensor:
    """The reference of :func:`_infer_fast`: stochastic Vmem rounding with the uniforms
    that the kernel hashes in place (one key, drawn first)."""
    rows = _uniform_rows(cfg, qz, learn=False)
    b, t_steps, _ = trains.shape
    u = hashed_uniforms(g, (t_steps, len(rows), b, cfg.n_exc)) if rows else None
    return simulate_reference(net, trains.dense(), cfg, qz, g, learn=False, vmem_u=u)[1]


def _infer_fast(
    net: Net, trains: SpikeTrains, cfg: ModelConfig, qz: Quantizers, g: torch.Generator
) -> Tensor:
    return _infer_kernel(net, trains, None, cfg, qz, g)[0]


def _infer_drawn(
    net: Net, pixels: Tensor, scale: float, cfg: ModelConfig, qz: Quantizers, g: torch.Generator
) -> tuple[Tensor, int]:
    """:func:`skip_trains` and :func:`_infer_fast` in one kernel call: the same trains (the
    same key drawn from ``g``), summed into the input current as they are drawn, never
    stored. Returns the counts and the number of input spikes."""
    return _infer_kernel(net, None, (pixels, scale), cfg, qz, g)


def _infer_kernel(
    net: Net,
    trains: SpikeTrains | None,
    draw: tuple[Tensor, float] | None,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
) -> tuple[Tensor, int]:
    if trains is not None:
        b, t_steps, _ = trains.shape
        img, pix, spikes = trains.img, trains.pix.numpy(), trains.spikes.numpy()
        p, key = np.zeros(0), 0
    else:
        assert draw is not None
        pixels, scale = draw
        b, t_steps = pixels.shape[0], cfg.encoding.steps
        img, pix_t = (pixels > 0).nonzero(as_tuple=True)
        pix = pix_t.numpy()
        p = (pixels[img, pix_t] * scale).numpy().astype(np.float64)
        key = draw_key(g)  # as skip_trains draws it
        spikes = np.zeros((0, 0), dtype=np.bool_)
    n = cfg.n_exc
    rows = _uniform_rows(cfg, qz, learn=False)
    ukey = draw_key(g) if rows else 0  # Vmem rounding uniforms, as _infer_reference
    img_ptr = np.zeros(b + 1, dtype=np.int64)
    np.cumsum(torch.bincount(img, minlength=b).numpy(), out=img_ptr[1:])
    v_th = cfg.exc.v_th_mv
    theta = net.theta if qz.vth is None else qz.th(net.theta + v_th, g) - v_th
    counts = np.zeros((b, n), dtype=np.float32)
    n_in = np.zeros(b, dtype=np.int64)
    c = consts(cfg)
    f32 = np.float32
    inhibitory = cfg.topology == "inhibitory"
    # initial potentials, drawn as the reference draws them
    v0 = qz.v(torch.full((b, n), c.exc.v_rest), g).contiguous().numpy()
    iv0_t = torch.full((b, n), c.inh.v_rest)
    iv0 = (qz.v(iv0_t, g) if inhibitory else iv0_t).contiguous().numpy()
    tq = _qparams(qz.vth, qz.rounding)
    if rows:
        tq[0] = 0.0  # thresholds are frozen at inference and already on their grid
    with _kernel_threads():
        kernels.infer_batch(
            net.w.contiguous().numpy(), img_ptr, pix, spikes, p, key,
            t_steps, theta.contiguous().numpy(), counts, n_in, v0, iv0, ukey,
            np.array([c.exc.v_rest, c.exc.v_reset, c.exc.decay, c.exc.ref_steps], f32),
            np.array([c.inh.v_rest, c.inh.v_reset, c.inh.decay, c.inh.ref_steps], f32),
            f32(v_th), inhibitory, f32(cfg.inh.w_inh_exc if inhibitory else cfg.inh.w_lateral),
            f32(cfg.inh.w_exc_inh),
            f32(float(quantize(torch.tensor(cfg.inh.v_th_mv), qz.vth, "nearest"))),
            _qparams(qz.vmem, qz.rounding), tq, torch.get_num_threads(),
        )  # fmt: skip
    return torch.from_numpy(counts), int(n_in.sum())


def infer(
    net: Net,
    pixels: Tensor,
    cfg: ModelConfig,
    qz: Quantizers,
    generator: torch.Generator,
    batch_size: int = 256,
    fast: bool | None = None,
    stats: OpCounts | None = None,
) -> Tensor:
    """Spike counts [S, N] for ``pixels`` [S, n_in] with learning off, in batches.

    On the CPU batches run in the compiled kernel (:func:`kernels.infer_batch`, which sums
    only active input rows; equal to the reference within float32 rounding), which draws
    the spike trains of :func:`skip_trains` itself; on CUDA in :func:`simulate_reference` with
    :func:`poisson_trains`.

    Images that draw fewer than ``min_spikes`` spikes are presented again at a boosted
    rate (as in training) and their counts replaced by the new presentation's.
    ``stats`` accumulates the events of every presentation.
    """
    enc = cfg.encoding
    use_fast = infer_fast_ok(qz, pixels.device) if fast is None else fast
    # CPU: spike trains by geometric skipping (both paths, so they see the same spikes)
    skip = pixels.device.type == "cpu" and kernels.HAVE_NUMBA
    encode = skip_trains if skip else poisson_trains

    def present(x: Tensor, scale: float) -> Tensor:
        if use_fast and skip:  # the kernel draws the trains itself, as skip_trains would
            counts, n_in = _infer_drawn(net, x, scale, cfg, qz, generator)
        else:
            trains = encode(x, enc.steps, scale, generator)
            sim = _infer_fast if use_fast else _infer_reference
            counts = sim(net, trains, cfg, qz, generator)
            n_in = int(trains.spikes.sum()) if stats is not None else 0
        if stats is not None:
            stats.presentations += x.shape[0]
            stats.steps += x.shape[0] * enc.steps
            stats.input_spikes += n_in
            stats.exc_spikes += int(counts.sum())
        return counts

    if stats is not None:
        stats.samples += int(pixels.shape[0])
    out = []
    for i in range(0, pixels.shape[0], batch_size):
        x = pixels[i : i + batch_size]
        counts = present(x, rate_scale(cfg, 0))
        for boost in range(1, int(enc.max_boosts) + 1):
            if enc.min_spikes <= 0:
                break
            weak = (counts.sum(dim=1) < enc.min_spikes).nonzero().flatten()
            if weak.numel() == 0:
                break
            counts[weak] = present(x[weak], rate_scale(cfg, boost))
        out.append(counts)
    if not out:
        return torch.zeros(0, cfg.n_exc, device=pixels.device)
    return torch.cat(out)
