"""Network state, neuron steps, learning rules and the simulation loop (method.md 1-2).

Governing equations, per step of ``dt`` (all potentials in mV)::

    v   <- v_rest + (v - v_rest) * exp(-dt / tau_m) + [not refractory] * (I_in + I_rec)
    s    = v >= Vth,   Vth = v_th + theta            (per neuron, learned)
    on s: v <- v_reset, refractory for t_ref, theta <- theta + theta_plus   (learning only)

and, once per presentation of T steps (learning only; docs/model.md, "Thresholds")::

    theta <- theta * exp(-T dt / tau_theta)

``I_in = s_in @ W``; ``I_rec`` is the recurrent inhibition of the previous step: tinySNN's
direct lateral inhibition ``-w_lateral * (sum_k s_k - s_j)`` or, for the baseline, the
inhibitory layer's ``-w_inh_exc * (sum_k s_inh_k - s_inh_j)`` (the inhibitory layer is
driven one-to-one by the previous step's excitatory spikes). Input spikes reach the
excitatory layer in the same step; recurrent connections have a one-step delay.

Under ITQ a quantized threshold learns in an accumulator with
:data:`quant.VTH_GUARD_BITS` more fractional bits (``Net.vth_acc``); the neuron compares
against the accumulator rounded to the threshold's format.

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
from tinysnn_dse.core.quant import (
    FixedPoint,
    ObservedRanges,
    Quantizers,
    qparams,
    quantize,
    quantize_counted,
)

Tensor = torch.Tensor
K = kernels


class Net(NamedTuple):
    """The learned parameters: input weights ``w`` [n_in, n_exc] and thresholds ``theta``
    [n_exc] (``v_th + theta`` is on the Vth grid when Vth is quantized). ``vth_acc``
    [n_exc] (float64, mV): while thresholds learn under ITQ, the accumulator each one is
    read from (None: start it from ``v_th + theta``)."""

    w: Tensor
    theta: Tensor
    vth_acc: Tensor | None = None


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


# ---------------------------------------------------------------------------- thresholds


def store32(v: Tensor, fmt: FixedPoint) -> Tensor:
    """A float64 grid value as the float32 state holds it (:func:`kernels.store32`)."""
    return torch.clamp(v.to(torch.float32), max=fmt.hi32)


def _vth_uniforms(key: int, t: int, j: Tensor) -> tuple[Tensor, Tensor]:
    """The stochastic-rounding uniforms of the thresholds of neurons ``j`` at counter ``t``
    (:func:`kernels.theta_set`): (key, t, 2j) for the accumulator, (key, t, 2j + 1) for
    the threshold."""
    idx = j.tolist()
    u1 = [float(kernels.hash_uniform(key, t, 2 * i)) for i in idx]
    u2 = [float(kernels.hash_uniform(key, t, 2 * i + 1)) for i in idx]
    return torch.tensor(u1, dtype=torch.float32), torch.tensor(u2, dtype=torch.float32)


def theta_set(
    theta: Tensor,
    acc: Tensor,
    j: Tensor,
    x: Tensor,
    t: int,
    v_th: float,
    qz: Quantizers,
    key: int,
    meter: QuantMeter | None = None,
) -> None:
    """Reference of :func:`kernels.theta_set` for the neurons ``j`` (long), in place: their
    thresholds learn the values ``x`` (float64, mV)."""
    if qz.vth is None:
        theta[j] = (x - v_th).to(torch.float32)
        return
    assert qz.vth_acc is not None
    u1 = u2 = None
    if qz.rounding == "stochastic":
        u1, u2 = _vth_uniforms(key, t, j)
    a, n_clip = quantize_counted(x, qz.vth_acc, qz.rounding, u=u1)
    acc[j] = a
    if meter is not None:
        meter.vth_updates += int(j.numel())
        meter.vth_clipped += n_clip
    vth = store32(quantize(a, qz.vth, qz.rounding, u=u2), qz.vth)
    theta[j] = (vth.to(torch.float64) - v_th).to(torch.float32)


def theta_decay_(
    theta: Tensor,
    acc: Tensor,
    cfg: ModelConfig,
    qz: Quantizers,
    key: int,
    t: int,
    meter: QuantMeter | None = None,
) -> None:
    """Reference of :func:`kernels.theta_decay`: one presentation's threshold decay."""
    d = consts(cfg).theta_decay
    v_th = cfg.exc.v_th_mv
    if qz.vth is None:
        theta.copy_((theta.to(torch.float64) * d).to(torch.float32))
        return
    j = torch.arange(theta.shape[0])
    theta_set(theta, acc, j, v_th + (acc - v_th) * d, t, v_th, qz, key, meter)


def start_acc(net: Net, cfg: ModelConfig, qz: Quantizers) -> Tensor:
    """The threshold accumulators ITQ learning continues from: ``net.vth_acc``, or
    ``v_th + theta`` on the accumulator's grid (float64 [N]; zeros when Vth is FP32)."""
    n = net.theta.shape[0]
    if qz.vth is None:
        return torch.zeros(n, dtype=torch.float64)
    if net.vth_acc is not None:
        return net.vth_acc.detach().cpu().to(torch.float64).clone()
    x = net.theta.detach().cpu().to(torch.float64) + cfg.exc.v_th_mv
    return quantize(x, qz.vth_acc, "nearest")


def _acc_on(net: Net, cfg: ModelConfig, qz: Quantizers) -> Tensor:
    return start_acc(net, cfg, qz).to(net.theta.device)


# --------------------------------------------------------------------------- simulation


class Consts(NamedTuple):
    exc: LIFConsts
    inh: LIFConsts
    theta_decay: float  # per presentation: exp(-steps * dt / tau_theta)
    trace_decay: float
    steps: int
    window: int
    rate_scale: float


def consts(cfg: ModelConfig) -> Consts:
    enc = cfg.encoding
    return Consts(
        exc=lif_consts(cfg.exc, enc.dt_ms),
        inh=lif_consts(cfg.inh, enc.dt_ms),
        theta_decay=math.exp(-enc.steps * enc.dt_ms / cfg.exc.tau_theta_ms),
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


def inference_thresholds(theta: Tensor, cfg: ModelConfig, qz: Quantizers) -> Tensor:
    """``theta`` [N] with ``v_th + theta`` on the Vth grid (round-to-nearest: a no-op for
    thresholds already quantized by :func:`quantize_net`, and no random draw)."""
    if qz.vth is None:
        return theta
    v_th = cfg.exc.v_th_mv
    return store32(quantize(theta.to(torch.float64) + v_th, qz.vth, "nearest"), qz.vth) - v_th


class QuantMeter:
    """What the quantizers did over a run: Vmem roundings made and how many clipped at
    the format's ends; (FP32 runs) the lowest and highest potential of any neuron at any
    step, before a reset; quantized threshold updates (learning under ITQ) and how many
    the accumulator clipped. A mutable accumulator, as :class:`OpCounts`."""

    def __init__(self, track: bool = False) -> None:
        self.track = track  # record the range of the potentials (FP32 runs)
        self.roundings = 0
        self.saturated = 0
        self.lo = math.inf
        self.hi = -math.inf
        self.vth_updates = 0
        self.vth_clipped = 0

    def add(self, roundings: int, saturated: float, lo: float, hi: float) -> None:
        self.roundings += int(roundings)
        self.saturated += int(saturated)
        self.lo = min(self.lo, float(lo))
        self.hi = max(self.hi, float(hi))

    def add_kernel(self, m: np.ndarray, roundings: int) -> None:
        """Add a kernel's meter array (``kernels.M_*``) covering ``roundings`` roundings."""
        self.add(roundings, m[K.M_SAT], m[K.M_LO], m[K.M_HI])
        self.vth_updates += int(m[K.M_TUPD])
        self.vth_clipped += int(m[K.M_TCLIP])

    @property
    def saturated_fraction(self) -> float:
        return self.saturated / self.roundings if self.roundings else 0.0

    @property
    def vth_clipped_fraction(self) -> float:
        return self.vth_clipped / self.vth_updates if self.vth_updates else 0.0


def new_meter(track: bool = False) -> np.ndarray:
    """A kernel meter array (``kernels.M_*``), empty; ``track``: record the range of the
    potentials too (costs a pass per step)."""
    m = np.zeros(K.M_LEN, dtype=np.float64)
    m[K.M_LO], m[K.M_HI] = np.inf, -np.inf
    m[K.M_TRACK] = 1.0 if track else 0.0
    return m


def _roundings(cfg: ModelConfig, qz: Quantizers, presentations: int, steps: int) -> int:
    """Vmem roundings of ``presentations`` presentations of ``steps`` steps."""
    if qz.vmem is None:
        return 0
    layers = 2 if cfg.topology == "inhibitory" else 1
    return presentations * steps * cfg.n_exc * layers


def fast_path_ok(cfg: ModelConfig, qz: Quantizers, device: torch.device) -> bool:
    """Whether the compiled learning kernel covers this configuration (else: reference)."""
    if not kernels.HAVE_NUMBA or device.type != "cpu":
        return False
    if qz.rounding != "stochastic" or cfg.rule == "tinysnn":
        return True  # tinySNN: weights are quantized in shared torch code
    return qz.weight is None  # per-step rules: stochastic W rounding only on the reference


def simulate(
    net: Net,
    spikes: Tensor | SpikeTrains,
    cfg: ModelConfig,
    qz: Quantizers,
    generator: torch.Generator,
    learn: bool,
    fast: bool | None = None,
    stats: OpCounts | None = None,
    meter: QuantMeter | None = None,
) -> tuple[Net, Tensor]:
    """Present ``spikes`` [B, T, n_in] (dense, or compact :class:`SpikeTrains`); dispatches
    learning to the compiled fast path when it covers the configuration (``fast=None``), or
    as told. See :func:`simulate_reference`."""
    device = spikes.spikes.device if isinstance(spikes, SpikeTrains) else spikes.device
    if learn and fast is not False and fast_path_ok(cfg, qz, device):
        if cfg.rule == "tinysnn":
            return _learn_fast_presentation(net, spikes, cfg, qz, generator, stats, meter)
        dense = spikes.dense() if isinstance(spikes, SpikeTrains) else spikes
        return _learn_fast_stepwise(net, dense, cfg, qz, generator, meter)
    if fast:
        raise ValueError("the fast path does not cover this configuration")
    dense = spikes.dense() if isinstance(spikes, SpikeTrains) else spikes
    return simulate_reference(net, dense, cfg, qz, generator, learn, stats, meter=meter)


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

    def quant_v(x: Tensor, u: Tensor | None) -> Tensor:
        nonlocal v_lo, v_hi
        if qz.vmem is None:
            if meter is not None and meter.track:
                v_lo, v_hi = min(v_lo, float(x.min())), max(v_hi, float(x.max()))
            return x
        q, n_sat = quantize_counted(x, qz.vmem, qz.rounding, g, u)
        if meter is not None:
            meter.add(0, n_sat, math.inf, -math.inf)
        return q

    def qv_step(t: int, row: int) -> Callable[[Tensor], Tensor]:
        u = None if vmem_u is None or qz.vmem is None else vmem_u[t, row]
        return lambda x: quant_v(x, u)

    w = net.w.clone() if learn else net.w
    v_th = cfg.exc.v_th_mv
    theta = (net.theta.clone() if learn else inference_thresholds(net.theta, cfg, qz)).to(dev)
    acc = _acc_on(net, cfg, qz) if learn else None
    exc = LIFState(
        v=qz.v(torch.full((b, n), c.exc.v_rest, device=dev), g),
        refr=torch.zeros(b, n, device=dev),
    )
    counts = torch.zeros(b, n, device=dev)
    i_rec = torch.zeros(b, n, device=dev)
    inhibitory = cfg.topology == "inhibitory"
    if inhibitory:
        inh = LIFState(
            v=qz.v(torch.full((b, n), c.inh.v_rest, device=dev), g),
            refr=torch.zeros(b, n, device=dev),
        )
        # a constant: put on the Vth grid once, deterministically
        inh_thr = float(quantize(torch.tensor(cfg.inh.v_th_mv), qz.vth, "nearest"))
        s_prev = torch.zeros(b, n, dtype=torch.bool, device=dev)

    use_one_spike = learn and cfg.exc.one_spike
    tiebreak = hashed_uniforms(g, (t_steps, b, n), dev) if use_one_spike else None
    vth_key = draw_key(g) if learn and qz.vth is not None and qz.rounding == "stochastic" else 0
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
        s = v >= (theta + v_th)
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
        # ---- learning: thresholds of the neurons that fired, then the rule
        fired = s[0].nonzero().flatten()
        if fired.numel() and cfg.exc.theta_plus_mv != 0:
            assert acc is not None
            base = acc[fired] if qz.vth is not None else theta[fired].to(torch.float64) + v_th
            x = base + cfg.exc.theta_plus_mv
            theta_set(theta, acc, fired, x, t, v_th, qz, vth_key, meter)
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
    if meter is not None:
        meter.add(_roundings(cfg, qz, b, t_steps), 0, v_lo, v_hi)
    if not learn:
        return net, counts
    assert acc is not None
    theta_decay_(theta, acc, cfg, qz, vth_key, t_steps, meter)
    return Net(w=w, theta=theta, vth_acc=acc if qz.vth is not None else None), counts


# ------------------------------------------------------------------ kernel marshalling


def neuron_consts(cfg: ModelConfig, qz: Quantizers, learn: bool) -> np.ndarray:
    """The neuron and inhibition constants of ``cfg`` as the kernels read them
    (float32 [C_LEN], rows ``kernels.C_*``); at inference thresholds are frozen
    (theta_plus 0) and every neuron may fire (no one-spike rule)."""
    c = consts(cfg)
    inhibitory = cfg.topology == "inhibitory"
    nc = np.zeros(K.C_LEN, dtype=np.float32)
    nc[[K.C_V_REST, K.C_V_RESET, K.C_DECAY, K.C_REF]] = c.exc
    nc[[K.C_I_REST, K.C_I_RESET, K.C_I_DECAY, K.C_I_REF]] = c.inh
    nc[K.C_V_TH] = cfg.exc.v_th_mv
    nc[K.C_THETA_PLUS] = cfg.exc.theta_plus_mv if learn else 0.0
    nc[K.C_W_LAT] = cfg.inh.w_inh_exc if inhibitory else cfg.inh.w_lateral
    nc[K.C_W_EXC_INH] = cfg.inh.w_exc_inh
    nc[K.C_INH_THR] = float(quantize(torch.tensor(cfg.inh.v_th_mv), qz.vth, "nearest"))
    nc[K.C_ONE_SPIKE] = 1.0 if learn and cfg.exc.one_spike else 0.0
    nc[K.C_INHIB] = 1.0 if inhibitory else 0.0
    return nc


def formats(qz: Quantizers) -> np.ndarray:
    """A point's four formats as the kernels read them: float64 [F_LEN, QP_LEN], rows
    weights, Vmem, Vth and the threshold accumulator (``kernels.F_*``)."""
    fq = np.zeros((K.F_LEN, K.QP_LEN), dtype=np.float64)
    fq[K.F_W] = qparams(qz.weight, qz.rounding)
    fq[K.F_V] = qparams(qz.vmem, qz.rounding)
    fq[K.F_T] = qparams(qz.vth, qz.rounding)
    fq[K.F_A] = qparams(qz.vth_acc, qz.rounding)
    return fq


def _keys(tie: int = 0, vth: int = 0, w: int = 0) -> np.ndarray:
    keys = np.zeros(K.K_LEN, dtype=np.int64)
    keys[K.K_TIE], keys[K.K_VTH], keys[K.K_W] = tie, vth, w
    return keys


class _FastState(NamedTuple):
    """The learning state of one point as the kernels read it: ``st`` [S_LEN, N] float32
    (``theta_t`` and ``counts_t`` are torch views of two rows), ``acc`` [N] float64."""

    st: np.ndarray
    acc: np.ndarray
    theta_t: Tensor
    counts_t: Tensor
    nc: np.ndarray
    fq: np.ndarray
    keys: np.ndarray


def _fast_state(net: Net, cfg: ModelConfig, qz: Quantizers, g: torch.Generator) -> _FastState:
    """Initial state and constants, drawing random numbers as the reference does."""
    c = consts(cfg)
    n = cfg.n_exc
    st = np.zeros((K.S_LEN, n), dtype=np.float32)
    st[K.S_THETA] = net.theta.detach().cpu().numpy()
    st[K.S_V] = qz.v(torch.full((1, n), c.exc.v_rest), g)[0].numpy()
    inh_t = torch.full((1, n), c.inh.v_rest)
    if cfg.topology == "inhibitory":  # drawn only where the reference draws it
        inh_t = qz.v(inh_t, g)
    st[K.S_INHV] = inh_t[0].numpy()
    tkey = draw_key(g) if cfg.exc.one_spike else 0  # the kernels hash the reference's tie-breaks
    vkey = draw_key(g) if qz.vth is not None and qz.rounding == "stochastic" else 0
    acc = start_acc(net, cfg, qz).numpy()
    theta_t = torch.from_numpy(st[K.S_THETA])
    counts_t = torch.from_numpy(st[K.S_COUNTS])
    return _FastState(
        st, acc, theta_t, counts_t, neuron_consts(cfg, qz, True), formats(qz), _keys(tkey, vkey)
    )


def _fast_net(w: Tensor, fs: _FastState, qz: Quantizers) -> Net:
    acc = torch.from_numpy(fs.acc) if qz.vth is not None else None
    return Net(w=w, theta=fs.theta_t.clone(), vth_acc=acc)


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
    meter: QuantMeter | None = None,
) -> tuple[Net, Tensor]:
    """tinySNN-rule learning of one sample in compiled code (any rounding).

    FP32 or deterministic weight rounding: one call of :func:`kernels.learn_tinysnn`.
    Stochastic weight rounding: per update window, :func:`kernels.tinysnn_steps`, then
    W's uniforms drawn here, then :func:`kernels.tinysnn_rule`; then the presentation's
    threshold decay. Either way the random numbers are the reference's, in its order.
    The input current sums only the active rows of W (the reference uses a window
    product) and the rule runs in the kernel, so results agree to float32 rounding, not
    bitwise (see tests/core/test_fast_path.py).
    """
    c = consts(cfg)
    lp = cfg.learning
    fs = _fast_state(net, cfg, qz, g)
    spk = _by_input(spikes)
    t_steps, n, n_in = spikes.shape[1], cfg.n_exc, cfg.n_in
    rows = _uniform_rows(cfg, qz)
    w = net.w.clone().contiguous()
    wn = w.numpy()
    f32 = np.float32
    lr = np.array([lp.eta, lp.s_th, lp.w_max, cfg.encoding.dt_ms / lp.tau_trace_ms], f32)
    m = new_meter()
    if qz.weight is None or qz.rounding != "stochastic":
        u = np.zeros((t_steps if rows else 1, 2, n), dtype=np.float32)
        if rows:  # one block equals the reference's per-step draws, in its order
            u[:, rows] = torch.rand(t_steps, len(rows), n, generator=g).numpy()
        n_cols = kernels.learn_tinysnn(
            wn, spk, t_steps, c.window, fs.st, fs.acc, fs.nc, lr, fs.fq, u, fs.keys,
            c.theta_decay, m,
        )  # fmt: skip
    else:
        n_cols = 0
        counts = fs.st[K.S_COUNTS]
        at_update = counts.copy()
        last = np.full(n_in, -1, dtype=np.int64)
        pos = spk[0][:-1].copy()
        u_win = np.zeros((c.window if rows else 1, 2, n), dtype=np.float32)
        wq = fs.fq[K.F_W]
        for t0 in range(0, t_steps, c.window):
            t1 = min(t0 + c.window, t_steps)
            uw_steps = u_win
            if rows:  # the window's Vmem uniforms, then (at its end) W's
                uw_steps = u_win[: t1 - t0]
                uw_steps[:, rows] = torch.rand(t1 - t0, len(rows), n, generator=g).numpy()
            kernels.tinysnn_steps(
                wn, spk, pos, t0, t1, last, fs.st, fs.acc, fs.nc, fs.fq, uw_steps, fs.keys, m
            )
            s_max = float(counts.max())
            if s_max > 0:
                cols = np.nonzero(counts - at_update > 0)[0]
                if cols.size:
                    uw = torch.rand(n_in, cols.size, generator=g).numpy()
                    kernels.tinysnn_rule(wn, t1 - 1, last, cols, f32(s_max), lr, wq, uw, 0)
                    n_cols += int(cols.size)
            at_update[:] = counts
        kernels.theta_decay(
            fs.st[K.S_THETA], fs.acc, fs.nc[K.C_V_TH], fs.fq, c.theta_decay,
            fs.keys[K.K_VTH], t_steps, m,
        )  # fmt: skip
    if stats is not None:
        stats.synapse_updates += int(n_cols) * n_in
    if meter is not None:
        meter.add_kernel(m, _roundings(cfg, qz, 1, t_steps))
    return _fast_net(w, fs, qz), fs.counts_t.clone().unsqueeze(0)


def _uniform_rows(cfg: ModelConfig, qz: Quantizers) -> list[int]:
    """Which stochastic Vmem roundings each step draws uniforms for, in the reference's
    order: 0 = excitatory, 1 = inhibitory; empty if Vmem rounding draws nothing."""
    if qz.rounding != "stochastic" or qz.vmem is None:
        return []
    return [0, 1] if cfg.topology == "inhibitory" else [0]


def _learn_fast_stepwise(
    net: Net,
    spikes: Tensor,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
    meter: QuantMeter | None = None,
) -> tuple[Net, Tensor]:
    """``pair`` / ``sl-stdp`` learning of one sample in one compiled call.

    Same random numbers as the reference (stochastic Vmem rounding: its uniforms as one
    block); the input current sums only the active rows of W (the reference uses a dense
    product), so results agree to float32 rounding, not bitwise.
    """
    lp = cfg.learning
    c = consts(cfg)
    fs = _fast_state(net, cfg, qz, g)
    x_pre_all = presyn_traces(spikes, cfg.encoding.dt_ms, lp.tau_trace_ms)[0].contiguous()
    w = net.w.clone().contiguous()
    lr = np.array([lp.eta_pre, lp.eta_post, lp.eta_sl, lp.x_tar, lp.w_max], np.float32)
    rule = 1 if cfg.rule == "pair" else 2
    rows = _uniform_rows(cfg, qz)
    t_steps, n = spikes.shape[1], cfg.n_exc
    u = np.zeros((t_steps if rows else 1, 2, n), dtype=np.float32)
    if rows:  # one block equals the reference's per-step draws, in its order
        u[:, rows] = torch.rand(t_steps, len(rows), n, generator=g).numpy()
    m = new_meter()
    kernels.learn_stepwise(
        w.numpy(), _csr_one(spikes), x_pre_all.numpy(), rule, lr, fs.st, fs.acc, fs.nc, fs.fq,
        u, fs.keys, np.float32(c.trace_decay), c.theta_decay, m,
    )  # fmt: skip
    if meter is not None:
        meter.add_kernel(m, _roundings(cfg, qz, 1, t_steps))
    return _fast_net(w, fs, qz), fs.counts_t.clone().unsqueeze(0)


def train_sample(
    net: Net,
    pixels: Tensor,
    cfg: ModelConfig,
    qz: Quantizers,
    generator: torch.Generator,
    fast: bool | None = None,
    stats: OpCounts | None = None,
    meter: QuantMeter | None = None,
) -> tuple[Net, Tensor]:
    """Learn from ``pixels`` [n_in] in [0, 1]; returns (net, counts [N]) of the last presentation.

    Encodes and simulates with learning; while the image draws fewer than ``min_spikes``
    spikes it is presented again at a boosted rate (learning stays on, as in DC15). Then W
    is normalised (and re-quantized under ITQ). ``stats`` accumulates the events,
    ``meter`` what the quantizers did.
    """
    enc = cfg.encoding
    for boost in range(int(enc.max_boosts) + 1):
        scale = rate_scale(cfg, boost)
        spikes = learning_trains(pixels.unsqueeze(0), enc.steps, scale, generator)
        net, counts = simulate(
            net, spikes, cfg, qz, generator, learn=True, fast=fast, stats=stats, meter=meter
        )
        if stats is not None:
            _count_learning([stats], int(spikes.spikes.sum()), [int(counts.sum())], cfg)
        if enc.min_spikes <= 0 or float(counts.sum()) >= enc.min_spikes:
            break
    if stats is not None:
        stats.samples += 1
        stats.normalisations += 1
    device = net.w.device
    fast_norm = fast is not False and fast_path_ok(cfg, qz, device)
    return net._replace(w=normalize_q(net.w, cfg, qz, generator, fast_norm)), counts[0]


def normalize_q(
    w: Tensor, cfg: ModelConfig, qz: Quantizers, g: torch.Generator, fast: bool
) -> Tensor:
    """Per-sample normalisation of ``w`` [n_in, N], then (ITQ) its rounding onto the weight
    grid: compiled (:func:`kernels.normalize_multi`, as design batches run it) when
    ``fast``, else in torch. Stochastic rounding takes :func:`kernels.hash_uniform` (key,
    2**31 - 1, i N + j) under one key drawn from ``g``, on both paths."""
    stochastic = qz.weight is not None and qz.rounding == "stochastic"
    key = draw_key(g) if stochastic else 0
    if fast and kernels.HAVE_NUMBA and w.device.type == "cpu":
        out = w.detach().clone().contiguous()
        wq = qparams(qz.weight, qz.rounding)[None]
        norm = np.array([cfg.norm], dtype=np.float32)
        with _kernel_threads():
            kernels.normalize_multi(
                out.numpy()[None], norm, np.float32(cfg.learning.w_max), wq, key
            )
        return out
    out = normalize(w, cfg.norm, cfg.learning.w_max)
    if qz.weight is None:
        return out
    u = None
    if stochastic:
        n_in, n = out.shape
        u = torch.from_numpy(kernels.hash_row(key, 2147483647, n_in * n)).view(n_in, n)
    return quantize(out, qz.weight, qz.rounding, u=u)


class DesignBatch:
    """K design points of one tinySNN-rule model, trained together on shared input.

    Each training sample is encoded once and presented to every point in one parallel
    compiled call (:func:`kernels.learn_tinysnn_multi`); each point keeps its own weights,
    thresholds and fixed-point formats (any mix of precisions and roundings). The points
    share their random numbers (common random numbers): spikes, tie-breaks, Vmem and
    Vth rounding uniforms and W's stochastic rounding, all from the counter-based hash
    keyed by draws from the run's generator. A point that draws too few spikes is
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
        self.fq = np.stack([formats(q) for q in qzs])
        self.nc = np.stack(
            [neuron_consts(q_cfg, q, True) for q_cfg, q in zip(cfgs, qzs, strict=True)]
        )
        self.acc = np.stack(
            [start_acc(net, cfg, q).numpy() for net, q in zip(nets, qzs, strict=True)]
        )
        # the state every presentation starts from: initial potentials on each Vmem grid
        # (round-to-nearest: a fixed value needs no random draw), thresholds as given
        self.st0 = np.zeros((self.k, K.S_LEN, n), dtype=f32)
        self.st0[:, K.S_V] = np.stack([_grid(c.exc.v_rest, q.vmem, n) for q in qzs])
        self.st0[:, K.S_INHV] = np.stack([_grid(c.inh.v_rest, q.vmem, n) for q in qzs])
        self.theta = torch.stack([net.theta.to(torch.float32).cpu() for net in nets])
        self.neuron_draws = any(q.rounding == "stochastic" and q.vmem is not None for q in qzs)
        self.vth_draws = any(q.rounding == "stochastic" and q.vth is not None for q in qzs)
        self.weight_draws = any(q.rounding == "stochastic" and q.weight is not None for q in qzs)
        dt_tau = cfg.encoding.dt_ms / cfg.learning.tau_trace_ms
        self.lr = np.array(
            [[q.learning.eta, q.learning.s_th, q.learning.w_max, dt_tau] for q in cfgs], f32
        )
        self.norm = np.array([q.norm for q in cfgs], f32)
        self.window = c.window
        self.theta_decay = c.theta_decay
        self.n_cols = np.zeros(self.k, dtype=np.int64)
        self.meters = [QuantMeter() for _ in qzs]
        self.gpu = None
        if dev.type == "cuda":
            self.gpu = gpu_kernels.LearnLaunch(
                dev, self.fq, self.nc, self.lr, self.norm, self.window, self.theta_decay,
                cfg.n_in, n,
            )  # fmt: skip
            self.theta = self.theta.to(dev)
            self.acc_t = torch.as_tensor(self.acc, device=dev)
            self.n_cols_t = torch.zeros(self.k, dtype=torch.int64, device=dev)
            self.v0_t = torch.as_tensor(self.st0[:, K.S_V], device=dev)
            self.iv0_t = torch.as_tensor(self.st0[:, K.S_INHV], device=dev)

    def _key(self, g: torch.Generator, needed: bool) -> int:
        """A hash key, drawn only when some point needs one, so that deterministic
        batches consume the generator as single runs do."""
        return draw_key(g) if needed else 0

    def nets(self) -> list[Net]:
        """The current network of every point (copies)."""
        acc = self.acc_t.cpu().numpy() if self.gpu is not None else self.acc
        out = []
        for i, q in enumerate(self.qzs):
            a = torch.from_numpy(acc[i].copy()) if q.vth is not None else None
            out.append(Net(w=self.w[i].clone(), theta=self.theta[i].clone(), vth_acc=a))
        return out

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
                u = hashed_uniforms(g, (t_steps, 2, n), gdev)
            keys = _keys(tkey, self._key(g, self.vth_draws), self._key(g, self.weight_draws))
            cols_before = self.columns_updated() if stats is not None else None
            counts, n_pre = self._present(active, trains, keys, u)
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
        key = self._key(g, self.weight_draws)
        if self.gpu is not None:
            self.gpu.normalize(self.w, key)
        else:
            with _kernel_threads():
                kernels.normalize_multi(
                    self.w.numpy(), self.norm, f32(cfg.learning.w_max),
                    np.ascontiguousarray(self.fq[:, K.F_W]), key,
                )  # fmt: skip
        if stats is not None:
            for st in stats:
                st.samples += 1
                st.normalisations += 1
        return torch.from_numpy(final)

    def _present(
        self, active: np.ndarray, trains: SpikeTrains, keys: np.ndarray, u: Tensor | None
    ) -> tuple[np.ndarray, int]:
        """One presentation of ``trains`` to the ``active`` points; returns their spike
        counts [K, N] (zeros for inactive points) and the number of input spikes."""
        k, n = self.k, self.cfg.n_exc
        t_steps = trains.shape[1]
        if self.gpu is not None:
            dev = self.device
            tiebreak = torch.zeros(t_steps, n)
            if self.cfg.exc.one_spike:  # the numbers the CPU kernel hashes, as a block
                tiebreak = torch.from_numpy(kernels.hash_block(int(keys[K.K_TIE]), t_steps, n))
            counts_t = torch.zeros(k, n, device=dev)
            self.gpu(
                self.w, torch.as_tensor(active, dtype=torch.int32, device=dev), trains,
                tiebreak.to(dev), None if u is None else u.to(dev), keys,
                self.v0_t.clone(), self.theta, self.acc_t, counts_t, self.iv0_t.clone(),
                self.n_cols_t,
            )  # fmt: skip
            return counts_t.cpu().numpy(), int(trains.spikes.sum())
        spk = _by_input(trains)
        un = np.zeros((1, 2, n), np.float32) if u is None else u.numpy()
        st = self.st0.copy()
        st[:, K.S_THETA] = self.theta.numpy()
        m = np.stack([new_meter() for _ in range(k)])
        with _kernel_threads():
            kernels.learn_tinysnn_multi(
                self.w.numpy(), active, spk, t_steps, self.window, st, self.acc, self.nc,
                self.lr, self.fq, un, keys, self.theta_decay, self.n_cols, m,
            )  # fmt: skip
        self.theta[torch.from_numpy(active)] = torch.from_numpy(st[active, K.S_THETA])
        for i in np.flatnonzero(active):
            self.meters[i].add_kernel(m[i], _roundings(self.cfg, self.qzs[i], 1, t_steps))
        return st[:, K.S_COUNTS], int(spk[0][-1])


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


# ----------------------------------------------------------------------------- inference


def infer_fast_ok(qz: Quantizers, device: torch.device) -> bool:
    """Whether the compiled inference kernel covers this configuration (any rounding)."""
    return kernels.HAVE_NUMBA and device.type == "cpu"


def _infer_reference(
    net: Net,
    trains: SpikeTrains,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
    meter: QuantMeter | None = None,
) -> Tensor:
    """The reference of :func:`_infer_fast`: stochastic Vmem rounding with the uniforms
    that the kernel hashes in place (one key, drawn first)."""
    rows = _uniform_rows(cfg, qz)
    b, t_steps, _ = trains.shape
    u = hashed_uniforms(g, (t_steps, len(rows), b, cfg.n_exc)) if rows else None
    dense = trains.dense()
    return simulate_reference(net, dense, cfg, qz, g, learn=False, vmem_u=u, meter=meter)[1]


def _infer_fast(
    net: Net,
    trains: SpikeTrains,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
    meter: QuantMeter | None = None,
) -> Tensor:
    return _infer_kernel(net, trains, None, cfg, qz, g, meter)[0]


def _infer_drawn(
    net: Net,
    pixels: Tensor,
    scale: float,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
    meter: QuantMeter | None = None,
) -> tuple[Tensor, int]:
    """:func:`skip_trains` and :func:`_infer_fast` in one kernel call: the same trains (the
    same key drawn from ``g``), summed into the input current as they are drawn, never
    stored. Returns the counts and the number of input spikes."""
    return _infer_kernel(net, None, (pixels, scale), cfg, qz, g, meter)


def _infer_kernel(
    net: Net,
    trains: SpikeTrains | None,
    draw: tuple[Tensor, float] | None,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
    meter: QuantMeter | None = None,
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
    rows = _uniform_rows(cfg, qz)
    ukey = draw_key(g) if rows else 0  # Vmem rounding uniforms, as _infer_reference
    img_ptr = np.zeros(b + 1, dtype=np.int64)
    np.cumsum(torch.bincount(img, minlength=b).numpy(), out=img_ptr[1:])
    theta = inference_thresholds(net.theta, cfg, qz)
    counts = np.zeros((b, n), dtype=np.float32)
    n_in = np.zeros(b, dtype=np.int64)
    c = consts(cfg)
    inhibitory = cfg.topology == "inhibitory"
    # initial potentials, drawn as the reference draws them
    v0 = qz.v(torch.full((b, n), c.exc.v_rest), g).contiguous().numpy()
    iv0_t = torch.full((b, n), c.inh.v_rest)
    iv0 = (qz.v(iv0_t, g) if inhibitory else iv0_t).contiguous().numpy()
    meters = np.stack([new_meter(meter is not None and meter.track) for _ in range(b)])
    with _kernel_threads():
        kernels.infer_batch(
            net.w.contiguous().numpy(), (img_ptr, pix, spikes, p), np.array([key, ukey]),
            t_steps, theta.contiguous().numpy(), counts, n_in, v0, iv0,
            neuron_consts(cfg, qz, False), formats(qz), torch.get_num_threads(), meters,
        )  # fmt: skip
    if meter is not None:
        layers = 2 if inhibitory else 1
        meter.add(
            b * t_steps * n * layers if qz.vmem is not None else 0,
            meters[:, K.M_SAT].sum(), meters[:, K.M_LO].min(), meters[:, K.M_HI].max(),
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
    meter: QuantMeter | None = None,
) -> Tensor:
    """Spike counts [S, N] for ``pixels`` [S, n_in] with learning off, in batches.

    On the CPU batches run in the compiled kernel (:func:`kernels.infer_batch`, which sums
    only active input rows; equal to the reference within float32 rounding), which draws
    the spike trains of :func:`skip_trains` itself; on CUDA in :func:`simulate_reference` with
    :func:`poisson_trains`.

    Images that draw fewer than ``min_spikes`` spikes are presented again at a boosted
    rate (as in training) and their counts replaced by the new presentation's.
    ``stats`` accumulates the events of every presentation; ``meter`` what the Vmem
    quantizer did (clipped roundings) and, in FP32, the range of the potentials.
    """
    enc = cfg.encoding
    use_fast = infer_fast_ok(qz, pixels.device) if fast is None else fast
    # CPU: spike trains by geometric skipping (both paths, so they see the same spikes)
    skip = pixels.device.type == "cpu" and kernels.HAVE_NUMBA
    encode = skip_trains if skip else poisson_trains

    def present(x: Tensor, scale: float) -> Tensor:
        if use_fast and skip:  # the kernel draws the trains itself, as skip_trains would
            counts, n_in = _infer_drawn(net, x, scale, cfg, qz, generator, meter)
        else:
            trains = encode(x, enc.steps, scale, generator)
            sim = _infer_fast if use_fast else _infer_reference
            counts = sim(net, trains, cfg, qz, generator, meter)
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
