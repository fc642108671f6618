"""The gradient-trained family (method.md section 4c; DIET-SNN): deep LIF networks trained
by backpropagation through time with a surrogate gradient, inferring in a few steps.

Per hidden layer l and step t, the neuron step of :mod:`step` with rest 0::

    u_l[t] = leak(u_l[t-1], 0, lambda_l, 0) + W_l x_l[t] - theta_l * s_l[t-1]
    s_l[t] = H(u_l[t] / theta_l - 1)                     (x_{l+1}[t] = s_l[t])

reset by subtraction of the threshold (un-leaked, as DIET-SNN's code), ``lambda_l`` in
[0, 1] (IF: 1) and ``theta_l`` > 0 one value per layer, trainable by the
:class:`Trainable` axis. The output layer integrates without leak or spike,
``u_out[t] = u_out[t-1] + W_out x[t]``, and its membrane after the last step is the
logits: cross-entropy on it (the sum over the T steps of the output's input).

The input ``x_1[t]`` is the pixel itself at every step (direct encoding: the first
layer's current ``W_1 x`` is the same at every step and is computed once), a Bernoulli
spike with the pixel's probability (Poisson), drawn from the run's generator, or, on an
event data set, the step's binary frame (``events``: :func:`frames_at`).

Backward: H has the surrogate derivative ``gamma * max(0, 1 - |z|)`` in ``z = u / theta -
1`` (piecewise linear, gamma 0.3: Rathi's code), so the gradient reaches ``u`` as
``gamma * max(0, 1 - |z|) / theta`` and ``theta`` through ``z``. Every random draw (the
initial weights, the order of the training images, Poisson spikes) takes an explicit
``torch.Generator``: the same seed gives the same network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tinysnn_dse.core import energy, step
from tinysnn_dse.core.modes import Mode, RoundMode
from tinysnn_dse.core.params import validate_bits
from tinysnn_dse.core.quant import FixedPoint, quantize
from tinysnn_dse.errors import ConfigError

#: the largest number of steps a presentation may have (the axis' range)
MAX_TIMESTEPS = 256
#: the depths (hidden layers) the family builds
DEPTHS = (1, 2)


class Encoding(Mode):
    """How a pixel enters the first layer."""

    DIRECT = "direct"  # its intensity as the input current at every step
    POISSON = "poisson"  # a spike with the intensity's probability at every step
    EVENTS = "events"  # an event data set's frame of the step: its input spikes


class Surrogate(Mode):
    """The derivative the backward pass takes for the spike's step function, in ``z = u
    / theta - 1``, with height ``gamma`` at the threshold."""

    LINEAR = "linear"  # gamma * max(0, 1 - |z|): piecewise linear (Rathi's code)
    FAST_SIGMOID = "fast-sigmoid"  # gamma / (1 + 10 |z|)**2 (SuperSpike, slope 10)
    #: STDB (Rathi et al. 2020): gamma * exp(-stdb_beta * dt_spike), dt_spike the steps
    #: since the neuron's last spike (t + 1 before its first: as if it spiked at step -1)
    STDB = "stdb"


#: the fast sigmoid's slope in z (Zenke & Ganguli 2018, SuperSpike)
FAST_SIGMOID_SLOPE = 10.0


class Trainable(Mode):
    """Which per-layer neuron parameters learn beside the weights."""

    NONE = "none"
    LEAK = "leak"
    THRESHOLD = "threshold"
    BOTH = "both"

    @property
    def leak(self) -> bool:
        return self in (Trainable.LEAK, Trainable.BOTH)

    @property
    def threshold(self) -> bool:
        return self in (Trainable.THRESHOLD, Trainable.BOTH)


@dataclass(frozen=True)
class DietConfig:
    """A network of the family: sizes, steps, encoding and the neurons' initial values;
    the modes are given as their spellings and held as members (parsed here, once)."""

    n_in: int = 784
    hidden: tuple[int, ...] = (400,)
    n_out: int = 10
    timesteps: int = 4
    encoding: Encoding = Encoding.DIRECT
    trainable: Trainable = Trainable.BOTH
    leak: float = 1.0  # the initial lambda of every hidden layer (1: IF)
    threshold: float = 1.0  # the initial theta of every hidden layer
    gamma: float = 0.3  # the surrogate's height
    surrogate: Surrogate = Surrogate.LINEAR
    stdb_beta: float = 0.01  # STDB's decay per step since the last spike (Rathi's code)

    def __post_init__(self) -> None:
        object.__setattr__(self, "encoding", Encoding.of(self.encoding))
        object.__setattr__(self, "trainable", Trainable.of(self.trainable))
        object.__setattr__(self, "surrogate", Surrogate.of(self.surrogate))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if len(self.hidden) not in DEPTHS:
            raise ConfigError(f"depth must be one of {DEPTHS}, got {len(self.hidden)}")
        if min(self.n_in, self.n_out, *self.hidden) < 1:
            raise ConfigError(f"layer sizes must be positive, got {self.sizes}")
        if not 1 <= self.timesteps <= MAX_TIMESTEPS:
            raise ConfigError(f"timesteps must be in 1..{MAX_TIMESTEPS}, got {self.timesteps}")
        if not 0.0 <= self.leak <= 1.0:
            raise ConfigError(f"leak must be in [0, 1], got {self.leak}")
        if not (self.threshold > 0 and math.isfinite(self.threshold)):
            raise ConfigError(f"threshold must be positive, got {self.threshold}")
        if not self.gamma > 0:
            raise ConfigError(f"gamma must be positive, got {self.gamma}")
        if not self.stdb_beta >= 0:
            raise ConfigError(f"stdb_beta must be >= 0, got {self.stdb_beta}")

    @property
    def sizes(self) -> tuple[int, ...]:
        """Every layer's width, input first."""
        return (self.n_in, *self.hidden, self.n_out)


@dataclass(frozen=True)
class TrainConfig:
    """How the family trains: Adam over shuffled mini-batches for ``epochs`` passes, the
    learning rate annealed from ``lr`` to 0 along a half cosine over all of them (without
    it the holdout accuracy swung by half a point from epoch to epoch, measured)."""

    epochs: int = 1
    batch_size: int = 100
    lr: float = 1e-3
    anneal: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0:
            raise ConfigError("training needs epochs >= 0, batch_size >= 1 and lr > 0")


@dataclass(frozen=True)
class Ranges:
    """What a trained network's values span, per layer (hidden layers first, the output
    last): the largest |w| of each weight matrix, the largest |u| each membrane reached on
    the observed images (the output's: its final membrane) and each hidden threshold."""

    w: tuple[float, ...]
    vmem: tuple[float, ...]
    vth: tuple[float, ...]


@dataclass(frozen=True)
class Formats:
    """The fixed-point formats of a network of the family (method.md section 4 applied to
    W, u and theta of every layer, :func:`formats_for`): per weight matrix and per membrane
    (hidden layers, then the output), per hidden threshold; one rounding for all. A None
    format is FP32."""

    weight: tuple[FixedPoint | None, ...]
    vmem: tuple[FixedPoint | None, ...]
    vth: tuple[FixedPoint | None, ...]
    rounding: RoundMode = RoundMode.NEAREST

    def __post_init__(self) -> None:
        object.__setattr__(self, "rounding", RoundMode.of(self.rounding))


def int_bits_covering(max_abs: float) -> int:
    """The integer bits of a signed format whose range holds ``max_abs``: the smallest i
    with 2**i > max_abs, negative for values below 1/2 (0.3 -> -1: a range of +-0.5)."""
    if not max_abs > 0:
        return 0
    return math.floor(math.log2(max_abs)) + 1


def formats_for(
    r: Ranges,
    weight_bits: int | None,
    vmem_bits: int | None,
    vth_bits: int | None,
    rounding: RoundMode | str = RoundMode.NEAREST,
) -> Formats:
    """Each quantity's format from its observed range: ``bits`` wide, signed, with the
    integer bits that hold its largest magnitude (:func:`int_bits_covering`; a threshold's
    format is unsigned). FP32 where ``bits`` is None."""

    def fmt(bits: int | None, m: float, signed: bool) -> FixedPoint | None:
        if bits is None:
            return None
        validate_bits("bits", bits)
        ib = int_bits_covering(m)
        return FixedPoint(bits=bits, int_bits=ib, signed=signed)

    return Formats(
        weight=tuple(fmt(weight_bits, m, True) for m in r.w),
        vmem=tuple(fmt(vmem_bits, m, True) for m in r.vmem),
        vth=tuple(fmt(vth_bits, m, False) for m in r.vth),
        rounding=RoundMode.of(rounding),
    )


def _q(x: Tensor, f: FixedPoint | None, rounding: RoundMode, g: torch.Generator | None) -> Tensor:
    """``x`` on format ``f`` (identity for None); the gradient passes straight through."""
    if f is None:
        return x
    y = quantize(x.detach(), f, rounding, g)
    return x + (y - x).detach() if x.requires_grad else y


class _Spike(torch.autograd.Function):
    """H(z) forward (a spike where ``z`` >= 0), the surrogate's derivative backward;
    ``since`` (STDB) the steps since each neuron's last spike."""

    @staticmethod
    def forward(ctx, z: Tensor, gamma: float, kind: Surrogate, since: Tensor | None,  # type: ignore[override]
                beta: float) -> Tensor:  # fmt: skip
        ctx.save_for_backward(z if since is None else since)
        ctx.gamma = gamma
        ctx.kind = kind
        ctx.beta = beta
        return (z >= 0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None, None]:  # type: ignore[override]
        (z,) = ctx.saved_tensors
        if ctx.kind == Surrogate.STDB:
            d = ctx.gamma * torch.exp(-ctx.beta * z)  # z: the steps since the last spike
        elif ctx.kind == Surrogate.FAST_SIGMOID:
            d = ctx.gamma / (1.0 + FAST_SIGMOID_SLOPE * z.abs()) ** 2
        else:
            d = ctx.gamma * torch.clamp(1.0 - z.abs(), min=0.0)
        return grad * d, None, None, None, None


def spike(
    z: Tensor,
    gamma: float,
    kind: Surrogate = Surrogate.LINEAR,
    since: Tensor | None = None,
    beta: float = 0.01,
) -> Tensor:
    """A spike where ``z`` = u / theta - 1 >= 0, with the surrogate ``kind``'s gradient
    (STDB: ``since``, the steps since each neuron's last spike, and its decay ``beta``)."""
    if kind == Surrogate.STDB and since is None:
        raise ValueError("the STDB surrogate needs the steps since each neuron's last spike")
    out: Tensor = _Spike.apply(z, gamma, kind, since if kind == Surrogate.STDB else None, beta)
    return out


@dataclass
class DietNet:
    """The parameters: weights ``w[l]`` [in, out] of every layer (the output layer's
    last), and per hidden layer its leak ``leak[l]`` and threshold ``theta[l]`` (0-d)."""

    w: list[Tensor]
    leak: list[Tensor]
    theta: list[Tensor]
    cfg: DietConfig = field(repr=False, default_factory=DietConfig)

    def parameters(self) -> list[Tensor]:
        """What the optimiser updates: the weights, and the leaks and thresholds the
        config makes trainable."""
        out = list(self.w)
        if self.cfg.trainable.leak:
            out += self.leak
        if self.cfg.trainable.threshold:
            out += self.theta
        return out

    def to(self, device: torch.device | str) -> DietNet:
        """A copy on ``device`` (never sharing storage with this one, so that training
        the copy leaves this network as it is)."""

        def mv(xs: list[Tensor]) -> list[Tensor]:
            return [x.detach().to(device, copy=True).requires_grad_(x.requires_grad)
                    for x in xs]  # fmt: skip

        return DietNet(mv(self.w), mv(self.leak), mv(self.theta), self.cfg)


def init_net(
    cfg: DietConfig, generator: torch.Generator, device: torch.device | str = "cpu"
) -> DietNet:
    """Weights uniform in +-1/sqrt(fan_in) (torch's ``nn.Linear`` default), drawn from
    ``generator``; every hidden layer's leak and threshold at the config's values."""
    w = []
    for n_a, n_b in zip(cfg.sizes[:-1], cfg.sizes[1:], strict=True):
        bound = 1.0 / math.sqrt(n_a)
        u = torch.rand(n_a, n_b, generator=generator, device=generator.device)
        w.append((u * 2.0 - 1.0).mul_(bound).to(device).requires_grad_(True))
    depth = len(cfg.hidden)
    leak = [torch.tensor(cfg.leak, device=device, requires_grad=cfg.trainable.leak)
            for _ in range(depth)]  # fmt: skip
    theta = [torch.tensor(cfg.threshold, device=device, requires_grad=cfg.trainable.threshold)
             for _ in range(depth)]  # fmt: skip
    return DietNet(w, leak, theta, cfg)


def frames_at(x: Tensor, timesteps: int) -> Tensor:
    """An event data set's frames ``x`` [B, bins, n_in] (0/1) as the inputs of
    ``timesteps`` steps [B, T, n_in]: with bins a multiple of T, a step covers
    ``bins / T`` consecutive bins and has a spike where any of them has one; with T a
    multiple of bins, each bin is held for ``T / bins`` steps."""
    b, bins, n = x.shape
    if bins == timesteps:
        return x
    if bins % timesteps == 0:
        return x.reshape(b, timesteps, bins // timesteps, n).amax(dim=2)
    if timesteps % bins == 0:
        return x.repeat_interleave(timesteps // bins, dim=1)
    raise ConfigError(f"{timesteps} timesteps cannot take {bins} time bins of events: one "
                      "must be a multiple of the other")  # fmt: skip


def check_bins(timesteps: int, bins: int | None, encoding: Encoding) -> None:
    """A one-line ConfigError unless the encoding fits the data (``bins``: an event data
    set's time bins, else None) and the steps fit its bins."""
    if bins is None and encoding == Encoding.EVENTS:
        raise ConfigError("encoding events needs an event data set (N-MNIST, DVS Gesture, "
                          "SHD); this one is images")  # fmt: skip
    if bins is not None and encoding != Encoding.EVENTS:
        raise ConfigError(f"encoding {encoding.value} draws spikes from images; an event "
                          "data set enters as its frames (encoding: direct)")  # fmt: skip
    if bins is not None and bins % timesteps and timesteps % bins:
        raise ConfigError(f"timesteps {timesteps} cannot take the data's {bins} time bins: "
                          "one must be a multiple of the other")  # fmt: skip


def encode(x: Tensor, cfg: DietConfig, t: int, generator: torch.Generator | None) -> Tensor:
    """The first layer's input at step ``t`` of images ``x`` [B, n_in] in [0, 1]: the
    pixels (direct) or Bernoulli spikes of probability x (Poisson). (Event frames:
    :func:`frames_at`, which :func:`forward` applies to every step at once.)"""
    if cfg.encoding == Encoding.DIRECT:
        return x
    if generator is None:
        raise ValueError("Poisson encoding needs an explicit torch.Generator")
    s = (torch.rand(x.shape, generator=generator, device=x.device) < x).to(x.dtype)
    # an input that asks for its gradient (an attack) gets it straight through the
    # encoder, d spikes / d x = 1 (Sharmin et al. 2020); training's pixels do not ask
    return s + (x - x.detach()) if x.requires_grad else s


def forward(
    net: DietNet,
    x: Tensor,
    generator: torch.Generator | None = None,
    formats: Formats | None = None,
    peaks: list[Tensor] | None = None,
) -> tuple[Tensor, list[Tensor]]:
    """The network over ``cfg.timesteps`` steps on images ``x`` [B, n_in] (an event
    design, ``Encoding.EVENTS``: frames [B, bins, n_in], :func:`frames_at`): the output
    membrane after the last step [B, n_out] (the logits) and each hidden layer's spike
    count [B, width].

    With ``formats``, the weights and thresholds are taken on their grids once and every
    membrane is rounded onto its grid after each step's update, with the formats'
    rounding (stochastic: uniforms from ``generator``); gradients pass straight through
    (quantization-aware training). ``peaks`` (a list) receives each membrane's largest
    magnitude (hidden layers, then the output), for :func:`observe`."""
    cfg = net.cfg
    b = x.shape[0]
    depth = len(cfg.hidden)
    events = None
    if cfg.encoding == Encoding.EVENTS:  # frames [B, bins, n_in]: every step's input at once
        events = frames_at(x, cfg.timesteps).to(torch.float32)
        x = events[:, 0]
    rnd = formats.rounding if formats is not None else RoundMode.NEAREST
    wq, thq = list(net.w), list(net.theta)
    vq: list[FixedPoint | None] = [None] * (depth + 1)
    if formats is not None:
        wq = [_q(w, f, rnd, generator) for w, f in zip(net.w, formats.weight, strict=True)]
        thq = [_q(th, f, rnd, generator) for th, f in zip(net.theta, formats.vth, strict=True)]
        vq = list(formats.vmem)
    u = [x.new_zeros(b, n) for n in cfg.hidden]
    s = [x.new_zeros(b, n) for n in cfg.hidden]
    counts = [x.new_zeros(b, n) for n in cfg.hidden]
    out = x.new_zeros(b, cfg.n_out)
    peak = [x.new_zeros(()) for _ in range(depth + 1)]
    current0 = x @ wq[0] if cfg.encoding == Encoding.DIRECT else None  # the same each step
    current_t = events @ wq[0] if events is not None else None  # [B, T, width]
    stdb = cfg.surrogate == Surrogate.STDB
    last = [x.new_full((b, n), -1.0) for n in cfg.hidden] if stdb else []  # last spike step
    for t in range(cfg.timesteps):
        inp = None
        for k in range(depth):
            if k == 0:
                if current0 is not None:
                    cur = current0
                elif current_t is not None:
                    cur = current_t[:, t]
                else:
                    cur = encode(x, cfg, t, generator) @ wq[0]
            else:
                cur = inp @ wq[k]  # type: ignore[operator]
            theta = thq[k]
            u[k] = _q(step.leak(u[k], 0.0, net.leak[k], 0.0) + cur - theta * s[k], vq[k], rnd,
                      generator)  # fmt: skip
            since = (t - last[k]) if stdb else None
            s[k] = spike(u[k] / theta - 1.0, cfg.gamma, cfg.surrogate, since, cfg.stdb_beta)
            if stdb:
                last[k] = torch.where(s[k].detach() > 0, float(t), last[k])
            counts[k] = counts[k] + s[k]
            inp = s[k]
            if peaks is not None:
                peak[k] = torch.maximum(peak[k], u[k].detach().abs().max())
        out = _q(out + inp @ wq[-1], vq[-1], rnd, generator)  # type: ignore[operator]
    if peaks is not None:
        peak[-1] = out.detach().abs().max()
        peaks.extend(peak)
    return out, counts


def loss_of(
    net: DietNet,
    x: Tensor,
    y: Tensor,
    generator: torch.Generator | None = None,
    formats: Formats | None = None,
) -> Tensor:
    """Cross-entropy of the output membrane against labels ``y``."""
    logits, _ = forward(net, x, generator, formats)
    return torch.nn.functional.cross_entropy(logits, y)


@torch.no_grad()
def observe(
    net: DietNet, x: Tensor, batch_size: int = 1000, generator: torch.Generator | None = None
) -> Ranges:
    """The ranges of a (FP32) network's values on images ``x``, for :func:`formats_for`."""
    depth = len(net.cfg.hidden)
    vmem = [0.0] * (depth + 1)
    for a in range(0, x.shape[0], batch_size):
        peaks: list[Tensor] = []
        forward(net, x[a : a + batch_size], generator, peaks=peaks)
        vmem = [max(m, float(p)) for m, p in zip(vmem, peaks, strict=True)]
    return Ranges(
        w=tuple(float(w.detach().abs().max()) for w in net.w),
        vmem=tuple(vmem),
        vth=tuple(float(th.detach()) for th in net.theta),
    )


def clamp_(net: DietNet) -> None:
    """Hold the learned neuron parameters in range: leak in [0, 1], threshold above a
    small positive floor (a threshold of 0 would divide by zero)."""
    with torch.no_grad():
        for lam in net.leak:
            lam.clamp_(0.0, 1.0)
        for th in net.theta:
            th.clamp_(min=1e-3)


def train(
    net: DietNet,
    x: Tensor,
    y: Tensor,
    tc: TrainConfig,
    generator: torch.Generator,
    on_epoch: Callable[[int, float], None] | None = None,
    formats: Formats | None = None,
) -> list[float]:
    """Adam on shuffled mini-batches of ``x`` [S, n_in] / ``y`` [S] for ``tc.epochs``
    passes (the order and any Poisson spikes from ``generator``); returns each epoch's
    mean loss, and calls ``on_epoch(epoch, loss)`` after each. ``net`` learns in place;
    with ``formats`` it learns quantization-aware (:func:`forward`)."""
    opt = torch.optim.Adam(net.parameters(), lr=tc.lr)
    n = x.shape[0]
    per_epoch = max(1, math.ceil(n / tc.batch_size))
    total_steps = max(1, tc.epochs * per_epoch)
    losses = []
    k = 0
    for ep in range(tc.epochs):
        order = torch.randperm(n, generator=generator, device=generator.device).to(x.device)
        total = 0.0
        for a in range(0, n, tc.batch_size):
            if tc.anneal:
                for group in opt.param_groups:
                    group["lr"] = tc.lr * 0.5 * (1.0 + math.cos(math.pi * k / total_steps))
            idx = order[a : a + tc.batch_size]
            loss = loss_of(net, x[idx], y[idx], generator, formats)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            clamp_(net)
            total += float(loss.detach()) * len(idx)
            k += 1
        losses.append(total / max(n, 1))
        if on_epoch is not None:
            on_epoch(ep, losses[-1])
    return losses


@torch.no_grad()
def predict(
    net: DietNet,
    x: Tensor,
    batch_size: int = 1000,
    generator: torch.Generator | None = None,
    formats: Formats | None = None,
) -> Tensor:
    """The predicted class of every image of ``x`` [S, n_in]: the largest output membrane
    (with ``formats``: of the fixed-point network)."""
    out = []
    for a in range(0, x.shape[0], batch_size):
        logits, _ = forward(net, x[a : a + batch_size], generator, formats)
        out.append(logits.argmax(dim=1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64, device=x.device)


# ------------------------------------------------------------------ ANN-to-SNN conversion


def ann_forward(w: list[Tensor], x: Tensor, pre: list[Tensor] | None = None) -> Tensor:
    """The ANN of the same topology (method.md 4c, conversion): ReLU hidden layers, a
    linear output, no biases; ``pre`` receives each hidden layer's pre-activations."""
    a = x
    for wk in w[:-1]:
        z = a @ wk
        if pre is not None:
            pre.append(z.detach())
        a = torch.relu(z)
    return a @ w[-1]  # type: ignore[no-any-return]


def train_ann(
    cfg: DietConfig, x: Tensor, y: Tensor, tc: TrainConfig, generator: torch.Generator
) -> list[Tensor]:
    """Train the ANN of ``cfg``'s topology from weights drawn as :func:`init_net` draws
    them (from ``generator``), by Adam on cross-entropy with ``tc``'s schedule, the batch
    order from ``generator``; returns its weights."""
    w = init_net(cfg, generator, x.device).w
    opt = torch.optim.Adam(w, lr=tc.lr)
    n = x.shape[0]
    total_steps = max(1, tc.epochs * max(1, math.ceil(n / tc.batch_size)))
    k = 0
    for _ in range(tc.epochs):
        order = torch.randperm(n, generator=generator, device=generator.device).to(x.device)
        for a in range(0, n, tc.batch_size):
            if tc.anneal:
                for group in opt.param_groups:
                    group["lr"] = tc.lr * 0.5 * (1.0 + math.cos(math.pi * k / total_steps))
            idx = order[a : a + tc.batch_size]
            loss = torch.nn.functional.cross_entropy(ann_forward(w, x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            k += 1
    return [t.detach() for t in w]


@torch.no_grad()
def conversion_thresholds(
    w: list[Tensor], x: Tensor, percentile: float, scale: float
) -> list[float]:
    """Each hidden layer's threshold from the ANN's pre-activations on images ``x``
    (Rathi et al. 2020; rate normalization, Rueckauer et al. 2017): with ``lambda_l`` the
    ``percentile`` of layer l's pre-activations (all neurons, all images), ``theta_0 =
    scale * lambda_0`` (the pixels are the first layer's current) and ``theta_l = scale *
    lambda_l / lambda_(l-1)`` (a spike of layer l - 1 stands for ``lambda_(l-1)``)."""
    pre: list[Tensor] = []
    ann_forward(w, x, pre)
    lam = [float(np.percentile(z.flatten().cpu().double().numpy(), percentile)) for z in pre]
    out = []
    for k, v in enumerate(lam):
        if not v > 0:
            raise ConfigError(f"conversion: layer {k}'s pre-activations have no positive "
                              f"{percentile} percentile")  # fmt: skip
        out.append(scale * v / (lam[k - 1] if k else 1.0))
    return out


def converted(cfg: DietConfig, w: list[Tensor], thresholds: list[float],
              device: torch.device | str = "cpu") -> DietNet:  # fmt: skip
    """The SNN that starts from the ANN's weights and the conversion's thresholds (each
    hidden layer's leak at the config's value)."""
    ws = [t.detach().clone().to(device).requires_grad_(True) for t in w]
    leak = [torch.tensor(cfg.leak, device=device, requires_grad=cfg.trainable.leak)
            for _ in cfg.hidden]  # fmt: skip
    theta = [torch.tensor(th, device=device, requires_grad=cfg.trainable.threshold)
             for th in thresholds]  # fmt: skip
    return DietNet(ws, leak, theta, cfg)


# ------------------------------------------------------------------------ accounting

#: fractional bits of a fixed-point leak factor (as the STDP family's integer datapath)
LEAK_BITS = 16


def _width(f: FixedPoint | None) -> int:
    return 32 if f is None else f.bits


def memory_bits(cfg: DietConfig, formats: Formats | None = None) -> int:
    """Paper Eq. 4 for the family: every weight at its matrix's width, a membrane per
    neuron (hidden and output) at its layer's Vmem width, and per hidden layer one
    threshold (Vth width) and one leak (:data:`LEAK_BITS` in a fixed-point design, 32 in
    FP32). FP32 quantities count 32 bits."""
    depth = len(cfg.hidden)
    if formats is None:
        formats = Formats((None,) * (depth + 1), (None,) * (depth + 1), (None,) * depth)
    sizes = cfg.sizes
    bits = 0
    for k in range(depth + 1):
        bits += sizes[k] * sizes[k + 1] * _width(formats.weight[k])  # W_k
        bits += sizes[k + 1] * _width(formats.vmem[k])  # one membrane per neuron
    fixed = all(f is not None for f in (*formats.weight, *formats.vmem, *formats.vth))
    for k in range(depth):
        bits += _width(formats.vth[k]) + (LEAK_BITS if fixed else 32)
    return bits


@dataclass(frozen=True)
class Ops:
    """What inference of one image costs, averaged over the images counted, in
    NeuroBench's terms (neurobench.readthedocs.io, "Metrics") as this implementation
    computes them: ``effective_macs`` multiply-accumulates with a non-binary, non-zero
    input (the first layer under direct encoding: each non-zero pixel times its row,
    once per image, as ``forward`` computes ``W x`` once), ``effective_acs`` accumulates of
    a spike (each spike times its fan-out, every layer fed by spikes), ``dense_ops`` every
    connection at every step it is evaluated (the first layer once under direct encoding),
    ``neuron_updates`` every hidden and output neuron at every step, ``spikes`` per
    layer, and ``activation_sparsity`` the share of (neuron, step) pairs without a spike
    over the hidden layers."""

    effective_macs: float
    effective_acs: float
    dense_ops: float
    neuron_updates: float
    spikes: tuple[float, ...]
    activation_sparsity: float


@torch.no_grad()
def op_counts(
    net: DietNet,
    x: Tensor,
    generator: torch.Generator | None = None,
    formats: Formats | None = None,
    batch_size: int = 1000,
) -> Ops:
    """:class:`Ops` of inference over images ``x`` [S, n_in], per image."""
    depth = len(net.cfg.hidden)
    spikes = [0.0] * depth
    for a in range(0, x.shape[0], batch_size):
        _, counts = forward(net, x[a : a + batch_size], generator, formats)
        spikes = [s + float(c.sum()) for s, c in zip(spikes, counts, strict=True)]
    return ops_of(net.cfg, x, spikes)


def ops_of(cfg: DietConfig, x: Tensor, spikes: list[float]) -> Ops:
    """:class:`Ops` per image of inference over images ``x`` [S, n_in] whose hidden layers
    spiked ``spikes[l]`` times in all (:func:`forward`'s counts, summed)."""
    n_img = max(x.shape[0], 1)
    depth = len(cfg.hidden)
    spikes = [s / n_img for s in spikes]
    sizes, t = cfg.sizes, cfg.timesteps
    fan_out = sizes[2:]  # of each hidden layer: the next layer's width
    acs = sum(s * f for s, f in zip(spikes, fan_out, strict=True))
    if cfg.encoding == Encoding.DIRECT:
        macs = float((x != 0).sum()) / n_img * sizes[1]
        dense = float(sizes[0] * sizes[1])
    elif cfg.encoding == Encoding.EVENTS:  # the frames' spikes: accumulates, as counted
        macs = 0.0
        acs += float(frames_at(x, t).sum(dtype=torch.float64)) / n_img * sizes[1]
        dense = float(sizes[0] * sizes[1] * t)
    else:  # Poisson input spikes: accumulates, expected count = pixel sum per step
        macs = 0.0
        acs += float(x.sum()) / n_img * t * sizes[1]
        dense = float(sizes[0] * sizes[1] * t)
    dense += sum(sizes[k] * sizes[k + 1] * t for k in range(1, depth + 1))
    hidden_slots = sum(cfg.hidden) * t
    return Ops(
        effective_macs=macs,
        effective_acs=acs,
        dense_ops=dense,
        neuron_updates=float((sum(cfg.hidden) + cfg.n_out) * t),
        spikes=tuple(spikes),
        activation_sparsity=1.0 - sum(spikes) / hidden_slots,
    )


def deployed(
    net: DietNet, formats: Formats, generator: torch.Generator | None
) -> tuple[DietNet, Formats]:
    """The network as a fixed-point design runs it: weights and thresholds on their grids
    once (stochastic rounding draws from ``generator``), and the formats its membranes
    are still rounded to at every step (:func:`forward` with the result's formats)."""
    rnd = formats.rounding
    with torch.no_grad():
        w = [_q(w.detach(), f, rnd, generator) for w, f in zip(net.w, formats.weight, strict=True)]
        th = [_q(t.detach(), f, rnd, generator)
              for t, f in zip(net.theta, formats.vth, strict=True)]  # fmt: skip
    depth = len(net.cfg.hidden)
    steps = Formats((None,) * (depth + 1), formats.vmem, (None,) * depth, rnd)
    return DietNet(w, [lam.detach() for lam in net.leak], th, net.cfg), steps


# ------------------------------------------------------------------- a design point's model


@dataclass(frozen=True)
class DietModel:
    """A design point of the family as the runner trains it: the network (:class:`DietConfig`),
    how it trains (:class:`TrainConfig`, and QAT's fine-tuning), and the length of a step.
    ``model`` is its name in the axis table, as :class:`params.ModelConfig`'s is."""

    net: DietConfig = field(default_factory=DietConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10))
    #: quantization-aware training: epochs of fine-tuning from the FP32 training, at
    #: ``qat_lr`` (docs/model.md, "The gradient-trained family")
    qat_epochs: int = 2
    qat_lr: float = 1e-4
    dt_ms: float = 1.0  # one step's length: latency = timesteps x dt_ms
    leak: str = "lif"  # the axis: "if" holds every lambda at 1 (model_for)
    #: how the network reaches its timesteps: "direct" (trained at them) or "iir"
    #: (IIR-SNN: trained at ``iir_start`` steps, then retrained at each smaller number of
    #: steps down to ``timesteps``, each stage from the previous stage's W, theta and
    #: lambda, for ``iir_epochs`` epochs; 0: ``train.epochs``)
    schedule: str = "direct"
    iir_start: int = 5
    iir_epochs: int = 0
    #: where training starts: "random" (the seed's initial weights) or "ann" (hybrid
    #: conversion: an ANN of the same topology trained for ``ann_epochs`` (0: ``epochs``),
    #: its weights, thresholds from its pre-activations' ``conv_percentile`` times
    #: ``conv_scale``, then ``epochs`` of SNN training)
    init: str = "random"
    ann_epochs: int = 0
    conv_percentile: float = 99.7
    conv_scale: float = 0.7
    model: str = "diet"

    def __post_init__(self) -> None:
        if self.leak not in ("lif", "if"):
            raise ConfigError(f"leak: unknown value {self.leak!r}; allowed: lif, if")
        if self.init not in INITS:
            raise ConfigError(f"init: unknown value {self.init!r}; allowed: {', '.join(INITS)}")
        if not (0 < self.conv_percentile <= 100 and self.conv_scale > 0 and self.ann_epochs >= 0):
            raise ConfigError("conversion needs conv_percentile in (0, 100], conv_scale > 0 "
                              "and ann_epochs >= 0")  # fmt: skip
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule: unknown value {self.schedule!r}; allowed: "
                              f"{', '.join(SCHEDULES)}")  # fmt: skip
        if self.iir_epochs < 0 or not 2 <= self.iir_start <= MAX_TIMESTEPS:
            raise ConfigError(f"IIR needs iir_start in 2..{MAX_TIMESTEPS} and iir_epochs >= 0")
        if self.schedule == "iir" and self.net.timesteps >= self.iir_start:
            raise ConfigError(
                f"an IIR schedule descends from iir_start = {self.iir_start} steps: timesteps "
                f"must be below it, got {self.net.timesteps}"
            )
        if self.qat_epochs < 0 or not self.qat_lr > 0:
            raise ConfigError("qat_epochs must be >= 0 and qat_lr > 0")
        if not (self.dt_ms > 0 and math.isfinite(self.dt_ms)):
            raise ConfigError(f"dt_ms must be a positive number of ms, got {self.dt_ms}")

    @property
    def n_in(self) -> int:
        return self.net.n_in

    @property
    def latency_ms(self) -> float:
        return self.net.timesteps * self.dt_ms

    @property
    def stages(self) -> tuple[int, ...]:
        """The timesteps of each training stage, in order (IIR: ``iir_start`` down to
        ``timesteps``; direct: ``timesteps`` alone)."""
        if self.schedule != "iir":
            return (self.net.timesteps,)
        return tuple(range(self.iir_start, self.net.timesteps - 1, -1))

    @property
    def stage_epochs(self) -> int:
        """Epochs of every IIR stage after the first (the first is ``train.epochs``)."""
        return self.iir_epochs or self.train.epochs

    @property
    def ann_key(self) -> str:
        """What fixes the ANN a converted model starts from (with the data and the seed):
        its topology and training."""
        e = self.ann_epochs or self.train.epochs
        t = self.train
        return f"ann:{list(self.net.sizes)}:{e}:{t.lr}:{t.batch_size}:{t.anneal}"

    def stage_before(self) -> DietModel | None:
        """The model whose training this one's starts from: IIR at ``timesteps`` + 1
        (direct where that is ``iir_start``); None for a direct schedule."""
        if self.schedule != "iir":
            return None
        t = self.net.timesteps + 1
        return replace(self, net=replace(self.net, timesteps=t),
                       schedule="iir" if t < self.iir_start else "direct")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["net"]["hidden"] = list(self.net.hidden)
        d["net"]["encoding"] = self.net.encoding.value
        d["net"]["trainable"] = self.net.trainable.value
        d["net"]["surrogate"] = self.net.surrogate.value
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> DietModel:
        d = dict(d)
        return DietModel(net=DietConfig(**d.pop("net")), train=TrainConfig(**d.pop("train")),
                         **d)  # fmt: skip


#: the family's model parameters (``--param`` / a space's ``params``, and the axes that set
#: them): name -> (type, where it goes, its field there)
PARAMS: dict[str, tuple[type, str, str]] = {
    "depth": (int, "net", "hidden"),  # hidden layers of ``neurons`` each
    "timesteps": (int, "net", "timesteps"),
    "encoding": (str, "net", "encoding"),
    "trainable": (str, "net", "trainable"),
    "leak": (str, "", ""),  # lif, or if: lambda held at 1 (not learned)
    "leak_init": (float, "net", "leak"),
    "threshold": (float, "net", "threshold"),
    "gamma": (float, "net", "gamma"),
    "surrogate": (str, "net", "surrogate"),
    "stdb_beta": (float, "net", "stdb_beta"),
    "epochs": (int, "train", "epochs"),
    "batch_size": (int, "train", "batch_size"),
    "lr": (float, "train", "lr"),
    "anneal": (bool, "train", "anneal"),
    "qat_epochs": (int, "", "qat_epochs"),
    "qat_lr": (float, "", "qat_lr"),
    "dt_ms": (float, "", "dt_ms"),
    "schedule": (str, "", "schedule"),
    "iir_start": (int, "", "iir_start"),
    "iir_epochs": (int, "", "iir_epochs"),
    "init": (str, "", "init"),
    "ann_epochs": (int, "", "ann_epochs"),
    "conv_percentile": (float, "", "conv_percentile"),
    "conv_scale": (float, "", "conv_scale"),
}
#: how a network reaches its timesteps (DietModel.schedule)
SCHEDULES = ("direct", "iir")
#: where its training starts (DietModel.init)
INITS = ("random", "ann")
#: a data set's defaults that differ from the ones above, each chosen on that data set's
#: training holdout (docs/results.md): 1,437 digits make 15 batches an epoch
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"epochs": 30, "lr": 3e-3},
    # 784-400-400-10 at T = 8 on a 10,000-image holdout: 15 epochs 90.16 %, 15 at lr 2e-3
    # 89.49 %, 25 epochs 90.43 % (docs/results.md)
    "fashion-mnist": {"epochs": 25},
}


def _coerce(name: str, v: Any, kind: type) -> Any:
    """A parameter value of ``kind``, or a one-line ConfigError (strings from ``--param``
    become numbers and booleans)."""
    if kind is bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.strip().lower() in ("true", "false", "1", "0"):
            return v.strip().lower() in ("true", "1")
    elif kind is int:
        if isinstance(v, str):
            try:
                return int(v.strip())
            except ValueError:
                pass
        elif isinstance(v, int) and not isinstance(v, bool):
            return v
    elif kind is float:
        if isinstance(v, str):
            try:
                return float(v.strip())
            except ValueError:
                pass
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    elif isinstance(v, str):
        return v
    raise ConfigError(f"parameter {name}: {v!r} is not a {kind.__name__}")


def model_for(
    n_in: int, neurons: int, n_out: int, dataset: str | None, params: Mapping[str, Any]
) -> DietModel:
    """The family's model of ``neurons`` hidden neurons a layer for a data set: the
    defaults, the data set's :data:`DATASET_DEFAULTS`, then ``params`` (names of
    :data:`PARAMS`; an unknown name or a bad value is a one-line ConfigError)."""
    merged = {**DATASET_DEFAULTS.get(dataset or "", {}), **params}
    parts: dict[str, dict[str, Any]] = {"net": {}, "train": {}, "": {}}
    depth = 1
    leak = "lif"
    for name, v in merged.items():
        if name not in PARAMS:
            raise ConfigError(
                f"unknown parameter {name!r} of the diet family; known: {', '.join(PARAMS)}"
            )
        kind, where, fld = PARAMS[name]
        v = _coerce(name, v, kind)
        if name == "depth":
            if v not in DEPTHS:
                raise ConfigError(f"depth must be one of {DEPTHS}, got {v}")
            depth = v
        elif name == "leak":
            if v not in ("lif", "if"):
                raise ConfigError(f"leak: unknown value {v!r}; allowed: lif, if")
            leak = v
        else:
            parts[where][fld] = v
    try:
        net = DietConfig(n_in=n_in, hidden=(neurons,) * depth, n_out=n_out, **parts["net"])
        if leak == "if":  # integrate-and-fire: lambda 1, held
            held = {Trainable.BOTH: Trainable.THRESHOLD, Trainable.LEAK: Trainable.NONE}
            net = replace(net, leak=1.0, trainable=held.get(net.trainable, net.trainable))
        train = TrainConfig(**{"epochs": 10, **parts["train"]})
    except TypeError as e:
        raise ConfigError(f"diet parameters: {e}") from None
    return DietModel(net=net, train=train, leak=leak, **parts[""])


# ------------------------------------------------------------------------------ energy

#: the width of an input pixel in a fixed-point design (direct encoding: 0..255 as an
#: integer; FP32 designs take the float intensity)
PIXEL_BITS = 8


def inference_energy(ops: Ops, cfg: DietConfig, weight_bits: int | None,
                     vmem_bits: int | None, vth_bits: int | None, images: int,
                     leaky: bool = True) -> energy.EnergyEstimate:  # fmt: skip
    """The modelled energy of inferring ``images`` images with :class:`Ops` per image, by
    the per-operation table of :mod:`energy` at the design's widths (FP32: floating
    point):

    - a multiply-accumulate (a non-zero pixel into a first-layer neuron, direct encoding):
      one weight read, a multiply at the wider of weight and pixel, an add into the
      membrane's width;
    - an accumulate (a spike into a neuron of the next layer): one weight read and an add;
    - a hidden neuron's step: read and write its membrane, its leak (a multiply and an add;
      none for IF), its compare with the layer's threshold (held in a register, one per
      layer), and per spike the reset's subtraction;
    - an output neuron's step: read and write its membrane (its adds are the accumulates).
    """
    bw, bv, bt = weight_bits, vmem_bits, vth_bits
    bx = None if bw is None else PIXEL_BITS
    wide = energy._wider
    t = cfg.timesteps
    hidden_steps = sum(cfg.hidden) * t
    pj = {
        "mac": ops.effective_macs
        * (energy.mem_pj(bw) + energy.mul_pj(wide(bw, bx)) + energy.add_pj(wide(bw, bv))),
        "ac": ops.effective_acs * (energy.mem_pj(bw) + energy.add_pj(wide(bw, bv))),
        "neuron": hidden_steps * (energy.mem_pj(bv, 2) + energy.add_pj(wide(bv, bt)))
        + (hidden_steps * (energy.mul_pj(bv) + energy.add_pj(bv)) if leaky else 0.0)
        + sum(ops.spikes) * energy.add_pj(wide(bv, bt))
        + cfg.n_out * t * energy.mem_pj(bv, 2),
    }
    per = sum(pj.values()) * 1e-12
    counted = {
        "samples": images,
        "effective_macs": round(ops.effective_macs * images),
        "effective_acs": round(ops.effective_acs * images),
        "dense_ops": round(ops.dense_ops * images),
        "neuron_updates": round(ops.neuron_updates * images),
        "spikes": round(sum(ops.spikes) * images),
    }
    return energy.EnergyEstimate(
        total_j=per * images,
        per_sample_j=per if images else math.nan,
        breakdown_j={k: v * 1e-12 * images for k, v in pj.items()},
        ops=counted,
    )


def training_energy(cfg: DietConfig, images: int) -> energy.EnergyEstimate:
    """The modelled energy of training on ``images`` image presentations (epochs x
    images): each costs three times its forward pass's dense operations (the forward
    pass, the gradient with respect to each layer's input and the one with respect to
    its weights), every one a multiply and an add at FP32 with a weight read, plus the
    neurons' steps at FP32. Upper bounds of a dense accelerator: backpropagation does not
    skip the silent neurons that inference does; QAT's quantizers are not priced."""
    sizes, t = cfg.sizes, cfg.timesteps
    first = sizes[0] * sizes[1] * (1 if cfg.encoding == Encoding.DIRECT else t)
    dense = first + sum(sizes[k] * sizes[k + 1] * t for k in range(1, len(sizes) - 1))
    neurons = (sum(cfg.hidden) + cfg.n_out) * t
    mac = energy.mem_pj(None) + energy.mul_pj(None) + energy.add_pj(None)
    step_pj = energy.mem_pj(None, 2) + energy.mul_pj(None) + 2 * energy.add_pj(None)
    pj = {"backprop": 3 * dense * mac * images, "neuron": 3 * neurons * step_pj * images}
    total = sum(pj.values()) * 1e-12
    return energy.EnergyEstimate(
        total_j=total,
        per_sample_j=total / images if images else math.nan,
        breakdown_j={k: v * 1e-12 for k, v in pj.items()},
        ops={"samples": images, "dense_ops": 3 * dense * images},
    )
