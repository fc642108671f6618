"""Which implementation runs a phase: one decision, made here, from the phase, the model,
its quantization and the device (docs/architecture.md, "Backends").

- ``reference``: the plain torch loop (:func:`reference.simulate_reference`), step by step,
  on any device; what every other backend is held equal to.
- ``numba``: the compiled CPU kernels (:mod:`kernels`).
- ``triton``: the fused CUDA kernels (:mod:`gpu_kernels`), for tinySNN-rule learning; a
  single point runs as a design batch of one.

:func:`supported` lists a phase's backends, fastest first; :func:`choose` takes the first,
or checks a requested one and says in one line why it cannot run. Every record names
the backends that produced it.
"""

from __future__ import annotations

import enum
from typing import Literal

import torch

from tinysnn_dse.core import gpu_kernels, kernels
from tinysnn_dse.core.modes import Rule
from tinysnn_dse.core.params import ModelConfig
from tinysnn_dse.core.quant import Quantizers
from tinysnn_dse.errors import ConfigError

Phase = Literal["learn", "batch", "infer"]


class Backend(str, enum.Enum):
    REFERENCE = "reference"
    NUMBA = "numba"
    TRITON = "triton"


def supported(
    phase: Phase, cfg: ModelConfig, qz: Quantizers, device: torch.device
) -> list[Backend]:
    """The backends that run ``phase`` (``learn``: one point's presentations; ``batch``:
    a design batch; ``infer``) of ``cfg`` under ``qz`` on ``device``, fastest first."""
    cpu = device.type == "cpu"
    numba = cpu and kernels.HAVE_NUMBA
    triton = gpu_kernels.available(device)
    if phase == "batch":
        if cfg.rule != Rule.TINYSNN:
            return []
        return [Backend.NUMBA] if numba else [Backend.TRITON] if triton else []
    if phase == "learn":
        out = []
        # the per-step rules round W stochastically only in the reference loop
        stochastic_w = qz.weight is not None and qz.stochastic
        compiled = cfg.rule == Rule.TINYSNN or cfg.rule in kernels.STEP_RULES and not stochastic_w
        if numba and compiled:
            out.append(Backend.NUMBA)
        if triton and cfg.rule == Rule.TINYSNN:
            out.append(Backend.TRITON)
        return [*out, Backend.REFERENCE]
    if phase == "infer":
        return [Backend.NUMBA, Backend.REFERENCE] if numba else [Backend.REFERENCE]
    raise ValueError(f"unknown phase {phase!r}")


def choose(
    phase: Phase,
    cfg: ModelConfig,
    qz: Quantizers,
    device: torch.device,
    want: Backend | str | None = None,
) -> Backend:
    """The backend for ``phase``: the fastest supported one, or ``want`` if it is supported
    (a :class:`ConfigError` naming the alternatives if not)."""
    ok = supported(phase, cfg, qz, device)
    if want is None:
        if not ok:
            raise ConfigError(
                f"no backend runs {phase} of the {cfg.model} model on {device} "
                "(design batches need the tinysnn rule, with numba on the CPU or Triton on CUDA)"
            )
        return ok[0]
    try:
        b = Backend(want)
    except ValueError:
        names = ", ".join(x.value for x in Backend)
        raise ConfigError(f"unknown backend {want!r}; choose one of {names}") from None
    if b not in ok:
        alts = ", ".join(x.value for x in ok) or "none"
        raise ConfigError(
            f"the {b.value} backend cannot run {phase} of the {cfg.model} model "
            f"({qz.rounding} rounding, W {qz.describe()['weight']}) on {device}; "
            f"supported here: {alts}"
        )
    return b
