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
layer's current ``W_1 x`` is the same at every step and is computed once) or a Bernoulli
spike with the pixel's probability (Poisson), drawn from the run's generator.

Backward: H has the surrogate derivative ``gamma * max(0, 1 - |z|)`` in ``z = u / theta -
1`` (piecewise linear, gamma 0.3: Rathi's code), so the gradient reaches ``u`` as
``gamma * max(0, 1 - |z|) / theta`` and ``theta`` through ``z``. Every random draw (the
initial weights, the order of the training images, Poisson spikes) takes an explicit
``torch.Generator``: the same seed gives the same network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from tinysnn_dse.core import step
from tinysnn_dse.core.modes import Mode
from tinysnn_dse.errors import ConfigError

#: the largest number of steps a presentation may have (the axis' range)
MAX_TIMESTEPS = 256
#: the depths (hidden layers) the family builds
DEPTHS = (1, 2)


class Encoding(Mode):
    """How a pixel enters the first layer."""

    DIRECT = "direct"  # its intensity as the input current at every step
    POISSON = "poisson"  # a spike with the intensity's probability at every step


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "encoding", Encoding.of(self.encoding))
        object.__setattr__(self, "trainable", Trainable.of(self.trainable))
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

    @property
    def sizes(self) -> tuple[int, ...]:
        """Every layer's width, input first."""
        return (self.n_in, *self.hidden, self.n_out)


@dataclass(frozen=True)
class TrainConfig:
    """How the family trains: Adam over shuffled mini-batches for ``epochs`` passes."""

    epochs: int = 1
    batch_size: int = 100
    lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0:
            raise ConfigError("training needs epochs >= 0, batch_size >= 1 and lr > 0")


class _Spike(torch.autograd.Function):
    """H(z) forward (a spike where ``z`` >= 0), ``gamma * max(0, 1 - |z|)`` backward."""

    @staticmethod
    def forward(ctx, z: Tensor, gamma: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(z)
        ctx.gamma = gamma
        return (z >= 0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (z,) = ctx.saved_tensors
        return grad * ctx.gamma * torch.clamp(1.0 - z.abs(), min=0.0), None


def spike(z: Tensor, gamma: float) -> Tensor:
    """A spike where ``z`` = u / theta - 1 >= 0, with the piecewise-linear surrogate."""
    out: Tensor = _Spike.apply(z, gamma)
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
        def mv(xs: list[Tensor]) -> list[Tensor]:
            return [x.detach().to(device).requires_grad_(x.requires_grad) for x in xs]

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


def encode(x: Tensor, cfg: DietConfig, t: int, generator: torch.Generator | None) -> Tensor:
    """The first layer's input at step ``t`` of images ``x`` [B, n_in] in [0, 1]."""
    if cfg.encoding == Encoding.DIRECT:
        return x
    if generator is None:
        raise ValueError("Poisson encoding needs an explicit torch.Generator")
    return (torch.rand(x.shape, generator=generator, device=x.device) < x).to(x.dtype)


def forward(
    net: DietNet, x: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, list[Tensor]]:
    """The network over ``cfg.timesteps`` steps on images ``x`` [B, n_in]: the output
    membrane after the last step [B, n_out] (the logits) and each hidden layer's spike
    count [B, width]."""
    cfg = net.cfg
    b = x.shape[0]
    depth = len(cfg.hidden)
    u = [x.new_zeros(b, n) for n in cfg.hidden]
    s = [x.new_zeros(b, n) for n in cfg.hidden]
    counts = [x.new_zeros(b, n) for n in cfg.hidden]
    out = x.new_zeros(b, cfg.n_out)
    current0 = x @ net.w[0] if cfg.encoding == Encoding.DIRECT else None  # the same each step
    for t in range(cfg.timesteps):
        inp = None
        for k in range(depth):
            if k == 0:
                cur = current0 if current0 is not None else encode(x, cfg, t, generator) @ net.w[0]
            else:
                cur = inp @ net.w[k]  # type: ignore[operator]
            theta = net.theta[k]
            u[k] = step.leak(u[k], 0.0, net.leak[k], 0.0) + cur - theta * s[k]
            s[k] = spike(u[k] / theta - 1.0, cfg.gamma)
            counts[k] = counts[k] + s[k]
            inp = s[k]
        out = out + inp @ net.w[-1]  # type: ignore[operator]
    return out, counts


def loss_of(net: DietNet, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Cross-entropy of the output membrane against labels ``y``."""
    logits, _ = forward(net, x, generator)
    return torch.nn.functional.cross_entropy(logits, y)


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
    optimizer: torch.optim.Optimizer | None = None,
) -> list[float]:
    """Adam on shuffled mini-batches of ``x`` [S, n_in] / ``y`` [S] for ``tc.epochs``
    passes (the order and any Poisson spikes from ``generator``); returns each epoch's
    mean loss. ``net`` learns in place; ``optimizer`` (Adam over ``net.parameters()``)
    continues an earlier call's."""
    opt = optimizer or torch.optim.Adam(net.parameters(), lr=tc.lr)
    losses = []
    n = x.shape[0]
    for _ in range(tc.epochs):
        order = torch.randperm(n, generator=generator, device=generator.device).to(x.device)
        total = 0.0
        for a in range(0, n, tc.batch_size):
            idx = order[a : a + tc.batch_size]
            loss = loss_of(net, x[idx], y[idx], generator)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            clamp_(net)
            total += float(loss.detach()) * len(idx)
        losses.append(total / max(n, 1))
    return losses


@torch.no_grad()
def predict(
    net: DietNet, x: Tensor, batch_size: int = 1000, generator: torch.Generator | None = None
) -> Tensor:
    """The predicted class of every image of ``x`` [S, n_in]: the largest output membrane."""
    out = []
    for a in range(0, x.shape[0], batch_size):
        logits, _ = forward(net, x[a : a + batch_size], generator)
        out.append(logits.argmax(dim=1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64, device=x.device)
