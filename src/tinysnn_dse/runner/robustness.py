"""Adversarial robustness of a tested design point (issue 25; Sharmin et al., ECCV 2020):
FGSM and PGD in the infinity norm at a list of epsilons, through torchattacks.

Two threat models:

- ``white``: the attack sees the design's own gradients, where its family has them (the
  gradient-trained family: backpropagation through time through the surrogate, straight
  through its Poisson encoder as Sharmin et al. do, and straight through its fixed-point
  rounding). The STDP family's learning rule is not a gradient, so it has no white box
  here and is attacked by transfer only.
- ``transfer`` (black box): the adversarial images are crafted on an ANN (ReLU,
  ``source_neurons`` hidden units: :func:`runner.diet.ann_weights`, the same ANN a
  converted model of that topology starts from, shared through the study's cache with the
  images crafted on it) and shown to **every** model, the STDP family included.

Every adversarial image is put back on the data set's 8-bit pixel grid inside the
epsilon ball (:func:`on_grid`): what an attacker can hand a deployed model, and what the
integer datapath and the exported C read. The accuracy on them is the deployed design's,
on the same datapath as its test (integers where the design runs in integers), on the
first ``samples`` evaluation images; every set is predicted with a fresh evaluation
generator (``seed + EVAL_SEED_OFFSET``), so an unchanged image gets an unchanged answer
(epsilon 0 leaves the accuracy exactly as it was).

Random streams: each (threat, attack, epsilon) crafts from its own generator,
``seed + ROBUST_SEED_OFFSET + crc32("threat:attack:epsilon")``, so that a result does not
depend on which other epsilons a space lists. torchattacks' PGD draws its random start
from torch's global generator: it runs inside ``torch.random.fork_rng`` seeded from that
generator, which leaves the process's own stream as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from tinysnn_dse.core import diet
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.records import ATTACKS, THREATS, Record
from tinysnn_dse.records import robust_key as key_of
from tinysnn_dse.runner.settings import Split

#: the generator stream of the attacks: ``seed + ROBUST_SEED_OFFSET + crc32(...)``
ROBUST_SEED_OFFSET = 4_000_037
#: images crafted at once (BPTT through T steps holds every step's activations)
CRAFT_BATCH = 500
#: how many torchattacks to install: the pinned version, without its dependencies (it
#: pins requests ~= 2.25 and asks for torchvision, neither of which it imports here)
INSTALL = "pip install --no-deps torchattacks==3.5.1 (make install does)"

#: ``predict(images)``: the deployed design's labels [S] of images [S, n_in]
Predict = Callable[[torch.Tensor], torch.Tensor]
#: ``logits(images)``: a differentiable forward pass, images [S, n_in] -> [S, classes]
Logits = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Robustness:
    """What a robustness evaluation runs: every attack at every epsilon under every
    threat model, on the first ``samples`` evaluation images. ``pgd_step`` 0 takes
    2.5 * epsilon / ``pgd_steps`` (Madry et al. 2018)."""

    attacks: tuple[str, ...] = ATTACKS
    epsilons: tuple[float, ...] = (0.1, 0.2, 0.3)
    threats: tuple[str, ...] = THREATS
    samples: int = 1000
    pgd_steps: int = 10
    pgd_step: float = 0.0
    source_neurons: int = 400

    def validate(self) -> Robustness:
        for name, got, known in (("attack", self.attacks, ATTACKS),
                                 ("threat", self.threats, THREATS)):  # fmt: skip
            if not got:
                raise ConfigError(f"robustness: name at least one {name}; known: "
                                  f"{', '.join(known)}")  # fmt: skip
            for a in got:
                if a not in known:
                    raise ConfigError(f"robustness: unknown {name} {a!r}; known: "
                                      f"{', '.join(known)}")  # fmt: skip
        if not self.epsilons:
            raise ConfigError("robustness: name at least one epsilon")
        for e in self.epsilons:
            if not (isinstance(e, int | float) and math.isfinite(e) and 0 <= e <= 1):
                raise ConfigError(f"robustness: epsilon {e!r} is not a number in [0, 1] "
                                  "(an infinity-norm bound on pixel intensities)")  # fmt: skip
        if self.samples < 1:
            raise ConfigError(f"robustness: samples must be at least 1, got {self.samples}")
        if self.pgd_steps < 1:
            raise ConfigError(f"robustness: pgd_steps must be at least 1, got {self.pgd_steps}")
        if not (math.isfinite(self.pgd_step) and self.pgd_step >= 0):
            raise ConfigError(f"robustness: pgd_step must be >= 0, got {self.pgd_step}")
        if self.source_neurons < 1:
            raise ConfigError("robustness: source_neurons must be at least 1")
        return self

    def step_of(self, eps: float) -> float:
        """PGD's step size at ``eps``."""
        return self.pgd_step or 2.5 * eps / self.pgd_steps

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @staticmethod
    def from_mapping(raw: Any, where: str = "robustness") -> Robustness:
        """A spec from a mapping (a space's ``robustness`` key); unknown keys and bad
        values are one-line ConfigErrors naming ``where``."""
        names = {f.name for f in dataclasses.fields(Robustness)}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected a mapping of {', '.join(sorted(names))}")
        kw: dict[str, Any] = {}
        for k, v in raw.items():
            if k not in names:
                raise ConfigError(f"{where}.{k}: unknown key; allowed: {', '.join(sorted(names))}")
            if k in ("attacks", "threats"):
                v = [v] if isinstance(v, str) else v
                if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
                    raise ConfigError(f"{where}.{k}: expected a list of names")
                v = tuple(a.lower() for a in v)
            elif k == "epsilons":
                v = [v] if not isinstance(v, list) else v
                if not all(isinstance(e, int | float) and not isinstance(e, bool) for e in v):
                    raise ConfigError(f"{where}.epsilons: expected numbers, got {v!r}")
                v = tuple(float(e) for e in v)
            elif k in ("samples", "pgd_steps", "source_neurons"):
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ConfigError(f"{where}.{k}: expected an integer, got {v!r}")
            elif not isinstance(v, int | float) or isinstance(v, bool):
                raise ConfigError(f"{where}.{k}: expected a number, got {v!r}")
            kw[k] = v
        try:
            return Robustness(**kw).validate()
        except ConfigError as e:
            raise ConfigError(f"{where}: {str(e).removeprefix('robustness: ')}") from None


def _torchattacks() -> Any:
    try:
        import torchattacks
    except ImportError:
        raise ConfigError(f"adversarial attacks need torchattacks: {INSTALL}") from None
    return torchattacks


def on_grid(x: torch.Tensor, adv: torch.Tensor, eps: float) -> torch.Tensor:
    """``adv`` on the 8-bit pixel grid (P / 255) inside the infinity-norm ball of radius
    ``eps`` around ``x`` and inside [0, 1]: each pixel rounded to the nearest code, then
    clipped to the codes within ``eps`` of the original (a pixel whose ball holds no code
    keeps its original value)."""
    if eps == 0:
        return x.clone()
    xs = x.detach().to(torch.float64)
    lo = torch.ceil((xs - eps) * 255.0 - 1e-9).clamp(min=0.0)
    hi = torch.floor((xs + eps) * 255.0 + 1e-9).clamp(max=255.0)
    a = torch.round(adv.detach().to(torch.float64) * 255.0)
    a = torch.minimum(torch.maximum(a, lo), hi).to(x.dtype) / 255.0  # as the data set's P / 255
    return torch.where(lo <= hi, a, x.detach())


class _Module(torch.nn.Module):
    """A forward pass as the ``nn.Module`` torchattacks expects (it finds the device by
    the module's parameters; the one here is a zero it never uses)."""

    def __init__(self, logits: Logits, device: torch.device) -> None:
        super().__init__()
        self.logits = logits
        self.anchor = torch.nn.Parameter(torch.zeros((), device=device), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)


@contextlib.contextmanager
def _seeded(generator: torch.Generator, device: torch.device) -> Iterator[None]:
    """torch's global generator seeded from ``generator`` for the duration, restored after."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def craft(
    logits: Logits,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: str,
    eps: float,
    spec: Robustness,
    generator: torch.Generator,
) -> torch.Tensor:
    """Adversarial images of ``x`` [S, n_in] (labels ``y``) against ``logits`` by
    ``attack`` at ``eps``, through torchattacks, on the pixel grid (:func:`on_grid`)."""
    ta = _torchattacks()
    model = _Module(logits, x.device)
    if attack == "fgsm":
        atk = ta.FGSM(model, eps=eps)
    elif attack == "pgd":
        atk = ta.PGD(model, eps=eps, alpha=spec.step_of(eps), steps=spec.pgd_steps,
                     random_start=True)  # fmt: skip
    else:
        raise ConfigError(f"unknown attack {attack!r}; known: {', '.join(ATTACKS)}")
    out = []
    with _seeded(generator, x.device), torch.enable_grad():
        for a in range(0, x.shape[0], CRAFT_BATCH):
            xb, yb = x[a : a + CRAFT_BATCH], y[a : a + CRAFT_BATCH]
            out.append(on_grid(xb, atk(xb, yb), eps))
    return torch.cat(out) if out else x.clone()


def _generator(seed: int, device: torch.device, *what: Any) -> torch.Generator:
    tag = zlib.crc32(":".join(str(w) for w in what).encode())
    return torch.Generator(device=device).manual_seed(seed + ROBUST_SEED_OFFSET + tag)


def _accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float((pred.cpu() == y.cpu()).to(torch.float64).mean()) if len(y) else 0.0


#: ``cache(key, make)``: tensors made once and shared (explore's artifact folder)
Cache = Callable[[str, Callable[[], dict[str, torch.Tensor]]], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Source:
    """The transfer attack's source: the ANN's weights and what fixes them."""

    w: list[torch.Tensor]
    key: str
    sizes: tuple[int, ...]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return diet.ann_forward(self.w, x)


def source_of(settings: Any, split: Split, spec: Robustness, cache: Cache | None) -> Source:
    """The ANN the transfer attack crafts on: ``source_neurons`` hidden ReLU units,
    trained as a converted model's ANN of that topology is (shared with it)."""
    from tinysnn_dse.runner.diet import ann_weights

    n_in = int(split.eval_x.shape[1])
    m = diet.model_for(n_in, spec.source_neurons, split.n_classes, settings.dataset, {})
    return Source(ann_weights(m, settings, split, cache), m.ann_key, m.net.sizes)


def _codes(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * 255.0).to(torch.uint8)


def evaluate(
    predict: Predict,
    white: Logits | None,
    settings: Any,
    split: Split,
    spec: Robustness,
    cache: Cache | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """The design's accuracy (``predict``) on the first ``spec.samples`` evaluation images,
    clean and under every (threat, attack, epsilon) of ``spec``: (``{"clean": a,
    "white-pgd-0.1": a, ...}``, the details a record keeps). ``white``: the design's
    differentiable forward pass, or None where its family has none (then no white-box
    entries); the transfer source is made (or taken from ``cache``) here."""
    spec = spec.validate()
    n = min(spec.samples, int(split.eval_x.shape[0]))
    x, y = split.eval_x[:n], split.eval_y[:n].long()
    dev, seed = x.device, int(settings.seed)
    t0 = time.perf_counter()
    acc: dict[str, float] = {"clean": _accuracy(predict(x), y)}
    detail: dict[str, Any] = {**spec.to_dict(), "samples": n, "pixel_grid": "8-bit (P / 255)"}
    if "white" in spec.threats:
        if white is None:
            detail["white"] = "none: the family's training is not a gradient"
        else:
            for attack in spec.attacks:
                for eps in spec.epsilons:
                    g = _generator(seed, dev, "white", attack, eps)
                    adv = craft(white, x, y, attack, eps, spec, g)
                    acc[key_of("white", attack, eps)] = _accuracy(predict(adv), y)
    if "transfer" in spec.threats:
        src = source_of(settings, split, spec, cache)
        src_acc = {"clean": _accuracy(src.logits(x).argmax(dim=1), y)}
        for attack in spec.attacks:
            for eps in spec.epsilons:
                step = spec.step_of(eps) if attack == "pgd" else 0.0
                key = f"adv:{src.key}:{attack}:{eps!r}:{n}:{spec.pgd_steps}:{step!r}"

                def make(attack: str = attack, eps: float = eps) -> dict[str, torch.Tensor]:
                    g = _generator(seed, dev, "transfer", attack, eps)
                    adv = craft(src.logits, x, y, attack, eps, spec, g)
                    return {"codes": _codes(adv).cpu()}

                got = make() if cache is None else cache(key, make)
                adv = got["codes"].to(dev).to(x.dtype) / 255.0
                acc[key_of("transfer", attack, eps)] = _accuracy(predict(adv), y)
                # the source's own (white-box) accuracy on the images crafted on it
                src_acc[key_of("white", attack, eps)] = _accuracy(src.logits(adv).argmax(1), y)
        detail["source"] = {"model": "ann " + "-".join(map(str, src.sizes)), "key": src.key,
                            "accuracy": src_acc}  # fmt: skip
    detail["seconds"] = time.perf_counter() - t0
    return acc, detail


def with_robustness(record: Record, acc: Mapping[str, float], detail: Mapping[str, Any]) -> Record:
    """``record`` with its adversarial accuracies (``outcome.robustness``), the time they
    took and what made them (``config["robustness"]``)."""
    outcome = dataclasses.replace(record.outcome, robustness=dict(acc),
                                  robust_seconds=float(detail.get("seconds", 0.0)))  # fmt: skip
    return dataclasses.replace(record, outcome=outcome,
                               config={**record.config, "robustness": dict(detail)})  # fmt: skip
