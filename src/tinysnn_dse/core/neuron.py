"""Network state and the neuron model (method.md 1.2-1.3): the learned parameters, LIF
state and steps, the one-spike rule, lateral inhibition, per-presentation constants, and
the thresholds' update under ITQ (docs/model.md, "Thresholds"); quantized networks and
the meter of what the quantizers did.

Governing equations, per step of ``dt`` (all potentials in mV)::

    v   <- v_rest + (v - v_rest) * exp(-dt / tau_m) + [not refractory] * (I_in + I_rec)
    s    = v >= Vth,   Vth = v_th + theta            (per neuron, learned)
    on s: v <- v_reset, refractory for t_ref, theta <- theta + theta_plus   (learning only)

and, once per presentation of T steps (learning only), ``theta <- theta * exp(-T dt /
tau_theta)``. Under ITQ a quantized threshold learns in an accumulator with
:data:`quant.VTH_GUARD_BITS` more fractional bits (``Net.vth_acc``); the neuron compares
against the accumulator rounded to the threshold's format.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import torch

from tinysnn_dse.core import kernels, step
from tinysnn_dse.core import layout as L
from tinysnn_dse.core.modes import RoundMode, Topology
from tinysnn_dse.core.params import ExcParams, InhParams, ModelConfig
from tinysnn_dse.core.quant import FixedPoint, Quantizers, quantize, quantize_counted
from tinysnn_dse.core.rules import normalize

Tensor = torch.Tensor
K = kernels


class Net(NamedTuple):
    """The learned parameters: input weights ``w`` [n_in, n_exc] and thresholds ``theta``
    [n_exc] (``v_th + theta`` is on the Vth grid when Vth is quantized). ``vth_acc``
    [n_exc] (float64, mV): while thresholds learn under ITQ, the accumulator each one is
    read from (None: start it from ``v_th + theta``). ``keep`` [n_in, n_exc] (bool): the
    synapses a pruned network retains (None: all; :mod:`prune`); W is 0 elsewhere."""

    w: Tensor
    theta: Tensor
    vth_acc: Tensor | None = None
    keep: Tensor | None = None


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
    keep: float  # the share of the overshoot a spike keeps (step.reset_to)


def lif_consts(p: ExcParams | InhParams, dt_ms: float) -> LIFConsts:
    """The per-step constants of a layer; an IF layer (``leak`` "if", excitatory neurons
    only) keeps its potential between inputs: decay 1, ``(v - v_rest) * 1 + v_rest``."""
    leaky, keep = True, 0.0  # the inhibitory layer leaks and resets to its value
    if isinstance(p, ExcParams):
        leaky, keep = p.leak == "lif", float(p.reset.keep)
    return LIFConsts(
        v_rest=p.v_rest_mv,
        v_reset=p.v_reset_mv,
        decay=math.exp(-dt_ms / p.tau_m_ms) if leaky else 1.0,
        ref_steps=float(round(p.t_ref_ms / dt_ms)),
        keep=keep,
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


#: the membrane floor's value where there is none (``ExcParams.vmem_floor_mv``)
FLOOR_OFF = -1e30


def floor_mv(cfg: ModelConfig) -> float:
    """The excitatory membrane floor in mV, ``v_rest_mv - vmem_floor_mv``; FLOOR_OFF
    where ``vmem_floor_mv`` is 0 (none)."""
    below = cfg.exc.vmem_floor_mv
    return cfg.exc.v_rest_mv - below if below > 0 else FLOOR_OFF


def vmem_floor(cfg: ModelConfig, qz: Quantizers) -> float:
    """The excitatory membrane floor as every path applies it: :func:`floor_mv`, or with
    a Vmem format the lowest grid value at or above it (held to the format's range), so
    that a floored potential stays on the grid. FLOOR_OFF where there is none."""
    f = floor_mv(cfg)
    if f <= FLOOR_OFF or qz.vmem is None:
        return float(np.float32(f)) if f > FLOOR_OFF else FLOOR_OFF
    return floor_code(f, qz.vmem) * qz.vmem.eps


def floor_code(floor_mv: float, fmt: FixedPoint) -> int:
    """The Vmem code of a floor: ceil(floor / eps), held to the format's codes."""
    c = math.ceil(Fraction(floor_mv) / Fraction(fmt.eps)) if floor_mv > FLOOR_OFF else fmt.lo_code
    return min(max(c, fmt.lo_code), fmt.hi_code)


def lif_integrate(
    st: LIFState, i_total: Tensor, c: LIFConsts, qv: Callable[[Tensor], Tensor]
) -> Tensor:
    """Leak, then integrate ``i_total`` where not refractory; returns the new (quantized) v."""
    v = step.leak(st.v, c.v_rest, c.decay, c.v_rest)
    v = torch.addcmul(v, (st.refr <= 0).to(v.dtype), i_total)
    return qv(v)


def lif_fire(v: Tensor, refr: Tensor, s: Tensor, c: LIFConsts, thr: Tensor | float) -> LIFState:
    """Reset the neurons in ``s`` (bool; at or above their threshold ``thr``) and start
    their refractory period."""
    v = torch.where(s, step.reset_to(v, thr, c.v_reset, c.keep), v)
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


class Consts(NamedTuple):
    exc: LIFConsts
    inh: LIFConsts
    theta_decay: float  # per presentation: exp(-steps * dt / tau_theta)
    trace_decay: float
    steps: int
    window: int
    rate_scale: float


@functools.lru_cache(maxsize=64)
def consts(cfg: ModelConfig) -> Consts:
    """The derived constants of ``cfg`` (immutable; computed once per configuration,
    since every presentation asks for them)."""
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
    if net.keep is not None:  # 0 is on every grid; kept exact whatever the rounding
        w = w * net.keep.to(w.dtype)
    v_th = cfg.exc.v_th_mv
    theta = qz.th(net.theta + v_th, g) - v_th
    return Net(w=w, theta=theta, keep=net.keep)


def inference_thresholds(theta: Tensor, cfg: ModelConfig, qz: Quantizers) -> Tensor:
    """``theta`` [N] with ``v_th + theta`` on the Vth grid (round-to-nearest: a no-op for
    thresholds already quantized by :func:`quantize_net`, and no random draw)."""
    if qz.vth is None:
        return theta
    v_th = cfg.exc.v_th_mv
    x = theta.to(torch.float64) + v_th
    return store32(quantize(x, qz.vth, RoundMode.NEAREST), qz.vth) - v_th


def store32(v: Tensor, fmt: FixedPoint) -> Tensor:
    """A float64 grid value as the float32 state holds it (:func:`kernels.store32`)."""
    return torch.clamp(v.to(torch.float32), max=fmt.hi32)


def vth_uniforms(key: int, t: int, j: Tensor) -> tuple[Tensor, Tensor]:
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
    if qz.stochastic:
        u1, u2 = vth_uniforms(key, t, j)
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
    return quantize(x, qz.vth_acc, RoundMode.NEAREST)


def acc_on(net: Net, cfg: ModelConfig, qz: Quantizers) -> Tensor:
    return start_acc(net, cfg, qz).to(net.theta.device)


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
        self.add(roundings, m[L.M_SAT], m[L.M_LO], m[L.M_HI])
        self.vth_updates += int(m[L.M_TUPD])
        self.vth_clipped += int(m[L.M_TCLIP])

    @property
    def saturated_fraction(self) -> float:
        return self.saturated / self.roundings if self.roundings else 0.0

    @property
    def vth_clipped_fraction(self) -> float:
        return self.vth_clipped / self.vth_updates if self.vth_updates else 0.0


def new_meter(track: bool = False) -> np.ndarray:
    """A kernel meter array (``kernels.M_*``), empty; ``track``: record the range of the
    potentials too (costs a pass per step)."""
    m = np.zeros(L.M_LEN, dtype=np.float64)
    m[L.M_LO], m[L.M_HI] = np.inf, -np.inf
    m[L.M_TRACK] = 1.0 if track else 0.0
    return m


def roundings(cfg: ModelConfig, qz: Quantizers, presentations: int, steps: int) -> int:
    """Vmem roundings of ``presentations`` presentations of ``steps`` steps."""
    if qz.vmem is None:
        return 0
    layers = 2 if cfg.topology == Topology.INHIBITORY else 1
    return presentations * steps * cfg.n_exc * layers


def grid(value: float, fmt: FixedPoint | None, n: int) -> np.ndarray:
    """``value`` put on ``fmt``'s grid by round-to-nearest, as a float32 [n] array."""
    x = torch.full((n,), value)
    return quantize(x, fmt, RoundMode.NEAREST).numpy().astype(np.float32)


def uniform_rows(cfg: ModelConfig, qz: Quantizers) -> list[int]:
    """Which stochastic Vmem roundings each step draws uniforms for, in the reference's
    order: 0 = excitatory, 1 = inhibitory; empty if Vmem rounding draws nothing."""
    if not qz.stochastic or qz.vmem is None:
        return []
    return [0, 1] if cfg.topology == Topology.INHIBITORY else [0]
