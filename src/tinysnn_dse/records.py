"""The one record type: what a design point is and what it measured, written by `train`,
by every explore trial and read by `select`, `report` and `export` alike.

Frozen types, standard library only, so every layer may use them (the report has no
torch): :class:`DesignPoint` (what was run), :class:`Outcome` (accuracy and what the
quantizers did), :class:`Memory` (paper Eq. 4), :class:`PhaseEnergy` (one phase,
measured and modelled), and :class:`Record`, which holds them with the resolved
configuration, the backends, the environment and, in a study, the trial's own fields.
``Record.to_dict`` is the JSON every command writes (``train --json``, ``record.json``,
trial attributes, ``select --json`` rows' ``design_point``); ``Record.from_dict`` reads it
back, and reads the flat records written before ``schema_version`` existed (tinysnn
0.1.0 up to commit 027c933) as well. One spelling per field: ``neurons``, never ``n_exc``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from tinysnn_dse.axes import AXES, BITS, FAMILY_OF
from tinysnn_dse.errors import ConfigError, TinySNNError

SCHEMA_VERSION = 2
PHASES = ("train", "infer")
#: NeuroBench's metrics an outcome may hold (:attr:`Outcome.neurobench`), per image, as
#: NeuroBench defines them (neurobench.readthedocs.io, "Metrics")
NEUROBENCH = ("footprint_bytes", "connection_sparsity", "activation_sparsity",
              "effective_macs", "effective_acs", "dense_ops")  # fmt: skip

#: the adversarial attacks and threat models an outcome's robustness names
#: (runner.robustness): ``THREAT-ATTACK-EPSILON`` keys such as ``transfer-pgd-0.1``
ATTACKS = ("fgsm", "pgd")
THREATS = ("white", "transfer")


def robust_key(threat: str, attack: str, eps: float) -> str:
    """The name of one adversarial accuracy in an outcome: ``transfer-pgd-0.1``."""
    return f"{threat}-{attack}-{eps:g}"


def check_robust_key(key: str) -> str:
    """``key`` as an outcome names it (``transfer-pgd-0.10`` -> ``transfer-pgd-0.1``) if it
    names an adversarial accuracy, else a one-line ConfigError."""
    parts = key.split("-")
    eps = math.nan
    if len(parts) == 3 and parts[0] in THREATS and parts[1] in ATTACKS:
        with contextlib.suppress(ValueError):
            eps = float(parts[2])
    if not 0 <= eps <= 1:
        raise ConfigError(
            f"robust key {key!r}: expected THREAT-ATTACK-EPSILON with THREAT one of "
            f"{', '.join(THREATS)}, ATTACK one of {', '.join(ATTACKS)} and EPSILON in [0, 1], "
            "e.g. transfer-pgd-0.1"
        )
    return robust_key(parts[0], parts[1], eps)


class RecordError(TinySNNError):
    """A stored record that this version cannot read."""


def bits_label(b: int | None) -> str:
    return "fp32" if b is None else str(b)


def quant_label(
    scheme: str, rounding: str, weight: int | None, vmem: int | None, vth: int | None
) -> str:
    """``fp32``, or ``scheme-rounding-wW-vV-tT`` (the label inside design keys)."""
    if weight is None and vmem is None and vth is None:
        return "fp32"
    return f"{scheme}-{rounding}-w{bits_label(weight)}-v{bits_label(vmem)}-t{bits_label(vth)}"


def _bits(x: Any) -> int | None:
    return None if x in (None, "fp32") else int(x)


@dataclass(frozen=True)
class DesignPoint:
    """One network, precision and quantization scheme: the unit of a trial. Its fields
    are the axes of :data:`tinysnn_dse.axes.AXES`, in that order, then ``params``
    (tests/test_axes.py holds the two equal)."""

    model: str
    neurons: int
    scheme: str = "ptq"
    rounding: str = "nearest"
    weight_bits: int | None = None
    vmem_bits: int | None = None
    vth_bits: int | None = None
    t_present_ms: int = 250
    leak: str = "lif"
    t_present_infer_ms: int = 0
    vmem_floor: int = 0
    prune: float = 0.0
    prune_method: str = "stdp"
    depth: int = 1
    timesteps: int = 4
    encoding: str = "direct"
    trainable: str = "both"
    schedule: str = "direct"
    init: str = "random"
    params: tuple[tuple[str, Any], ...] = ()  # model parameter overrides, sorted

    @property
    def is_fp32(self) -> bool:
        return all(getattr(self, b) is None for b in BITS)

    @property
    def family(self) -> str:
        """The model family (:data:`tinysnn_dse.axes.FAMILIES`)."""
        return FAMILY_OF[self.model]

    @property
    def is_pruned(self) -> bool:
        return bool(self.prune)

    @property
    def post_training(self) -> tuple[str, ...]:
        """The axes applied after training: the inference-only ones and, for magnitude
        pruning, the pruning axes (it prunes a trained network, as PTQ quantizes one)."""
        out = tuple(a.name for a in AXES if a.infer_only and a.applies_to(self.model))
        if self.is_pruned and self.prune_method == "magnitude":
            out += tuple(a.name for a in AXES if a.name == "prune" or a.pruned)
        return out

    @property
    def axes(self) -> dict[str, Any]:
        """The point's axis values, by axis name."""
        return {a.name: getattr(self, a.name) for a in AXES}

    @property
    def model_params(self) -> dict[str, Any]:
        """The model parameters the point sets (``apply_overrides`` on its model's preset):
        the axes that are model parameters, then its ``params``."""
        out = {a.param: getattr(self, a.name) for a in AXES
               if a.param and a.applies_to(self.model)}  # fmt: skip
        out.update(self.params)
        return out

    @property
    def inference_params(self) -> dict[str, Any]:
        """The model parameters of the axes applied after training (set on a shared
        training before it is tested): :attr:`post_training`."""
        post = self.post_training
        return {a.param: getattr(self, a.name) for a in AXES if a.param and a.name in post}

    @property
    def quant_label(self) -> str:
        return quant_label(self.scheme, self.rounding, self.weight_bits, self.vmem_bits,
                           self.vth_bits)  # fmt: skip

    @property
    def key(self) -> str:
        """A stable, readable identity: equal keys are the same experiment."""
        k = f"{self.model}-n{self.neurons}-{self.quant_label}"
        for a in AXES:  # axes added after the paper's, where a point leaves the default
            v = getattr(self, a.name)
            if a.tag and v != a.default and not (a.pruned and not self.is_pruned):
                k += f"-{a.tag}{a.label(v)}"
        if self.params:
            h = hashlib.sha256(json.dumps([list(p) for p in self.params]).encode()).hexdigest()
            k += f"-p{h[:8]}"
        return k

    @property
    def fp32(self) -> DesignPoint:
        """The FP32 point of the same network: every quantization axis at its default."""
        return replace(self, **{a.name: a.default for a in AXES if a.quant})

    @property
    def canonical(self) -> DesignPoint:
        """The point's one identity: an unpruned point names no pruning method, an FP32
        point no scheme or rounding (both at their defaults)."""
        p = self
        if not p.is_pruned:
            p = replace(p, **{a.name: a.default for a in AXES if a.pruned})
        return p.fp32 if p.is_fp32 else p

    @property
    def trained(self) -> DesignPoint:
        """The point as its training sees it: the axes applied after training
        (:attr:`post_training`) at their defaults."""
        post = self.post_training
        return replace(self, **{a.name: a.default for a in AXES if a.name in post})

    @property
    def training_key(self) -> str:
        """Points with equal training keys share one training (PTQ and FP32 train in FP32;
        the inference-only axes do not count)."""
        p = self.trained
        if p.scheme == "itq" and not p.is_fp32:
            return p.key
        return p.fp32.key

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["params"] = dict(self.params)
        d["key"] = self.key
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> DesignPoint:
        vals = {a.name: a.from_json(d[a.name]) if a.name in d else a.default for a in AXES}
        if vals["model"] is None:
            raise KeyError("model")
        return DesignPoint(**vals, params=tuple(sorted(dict(d.get("params") or {}).items())))

    @staticmethod
    def from_label(model: str, neurons: int, label: str) -> DesignPoint:
        """Inverse of :func:`quant_label` (``fp32`` or ``ptq-nearest-w8-v16-t16``)."""
        if label == "fp32":
            return DesignPoint(model, neurons)
        scheme, rounding, w, v, t = label.split("-")
        return DesignPoint(model, neurons, scheme, rounding, _bits(w[1:]), _bits(v[1:]),
                           _bits(t[1:]))  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What the test pass measured, and what the quantizers did."""

    accuracy: float
    readout: str | None = None
    accuracy_by_readout: Mapping[str, float] = field(default_factory=dict)
    eval_set: str = ""
    test_samples: int = 0
    silent_fraction: float = 0.0
    unassigned_neurons: int = 0
    vth_saturated_fraction: float = 0.0
    vmem_saturated_fraction: float | None = None
    train_vmem_saturated_fraction: float | None = None
    train_vth_clipped_fraction: float | None = None
    ranges_source: str | None = None
    train_seconds: float = 0.0
    train_images: int = 0
    train_images_per_s: float = 0.0
    assign_seconds: float = 0.0
    infer_seconds: float = 0.0
    infer_images_per_s: float = 0.0
    latency_ms: float = 0.0  # mean presentation time per test image, boosts included
    #: NeuroBench's metrics of the test pass, as NeuroBench defines them (footprint_bytes,
    #: connection_sparsity, activation_sparsity, effective_macs, effective_acs, dense_ops;
    #: per image), where the family counts them
    neurobench: Mapping[str, float] = field(default_factory=dict)
    #: adversarial accuracy on the first images of the evaluation set (runner.robustness):
    #: ``clean`` and one ``THREAT-ATTACK-EPSILON`` entry (``transfer-pgd-0.1``) per set,
    #: where the run measured it; and the seconds that took
    robustness: Mapping[str, float] = field(default_factory=dict)
    robust_seconds: float = 0.0


@dataclass(frozen=True)
class Memory:
    """Paper Eq. 4 of the deployed model (``bits``), against FP32 references, and the
    state training holds (``train_bits``: an ITQ threshold's accumulator included)."""

    bits: int
    normalized: float
    reference: str
    vs_baseline_fp32: float
    train_bits: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)  # core.memory.MemoryReport

    @property
    def bytes(self) -> float:
        return self.bits / 8

    @property
    def kib(self) -> float:
        return self.bits / 8 / 1024

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bytes": self.bytes}


@dataclass(frozen=True)
class PhaseEnergy:
    """One phase's energy (docs/energy.md): measured over the run by ``measured_method``
    and modelled from event counts (``ops``) with per-operation energies."""

    samples: int
    measured_j: float
    measured_j_per_sample: float
    measured_method: str
    measured_power_w: float | None
    measured_seconds: float
    modelled_j: float
    modelled_j_per_sample: float
    modelled_source: str = ""
    modelled_breakdown_j: Mapping[str, float] = field(default_factory=dict)
    ops: Mapping[str, int] = field(default_factory=dict)
    measured_shared_by: int = 1  # > 1: one point's even share of a batched training

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> PhaseEnergy:
        names = {f.name for f in fields(PhaseEnergy)}
        return PhaseEnergy(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Record:
    """A design point and everything measured of it (see the module docstring)."""

    design_point: DesignPoint
    outcome: Outcome
    memory: Memory
    energy: Mapping[str, PhaseEnergy]
    formats: Mapping[str, str] = field(default_factory=dict)
    backend: Mapping[str, str | None] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)
    # in a study: trial_number, checkpoint_artifact, shared_training, train_batch_points
    study: Mapping[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def accuracy(self) -> float:
        return self.outcome.accuracy

    @property
    def key(self) -> str:
        return self.design_point.key

    def with_study(self, design_point: DesignPoint, **study: Any) -> Record:
        return replace(self, design_point=design_point, study={**self.study, **study})

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "design_point": self.design_point.to_dict(),
            "outcome": asdict(self.outcome),
            "memory": self.memory.to_dict(),
            "energy": {k: asdict(v) for k, v in self.energy.items()},
            "formats": dict(self.formats),
            "backend": dict(self.backend),
            "config": dict(self.config),
            "environment": dict(self.environment),
            "study": dict(self.study),
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Record:
        """Read a record of this schema, or one written before ``schema_version`` existed;
        a :class:`RecordError` (one line) otherwise."""
        try:
            version = int(d.get("schema_version", 1))
            if version == 1:
                return _from_v1(d)
            if version != SCHEMA_VERSION:
                raise RecordError(
                    f"record schema {version} is newer than this tinysnn reads "
                    f"({SCHEMA_VERSION}); upgrade tinysnn"
                )
            mem = dict(d["memory"])
            mem.pop("bytes", None)
            return Record(
                design_point=DesignPoint.from_dict(d["design_point"]),
                outcome=Outcome(**d["outcome"]),
                memory=Memory(**mem),
                energy={k: PhaseEnergy.from_dict(v) for k, v in d.get("energy", {}).items()},
                formats=dict(d.get("formats", {})),
                backend=dict(d.get("backend", {})),
                config=dict(d.get("config", {})),
                environment=dict(d.get("environment", {})),
                study=dict(d.get("study", {})),
            )
        except RecordError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise RecordError(f"not a tinysnn record ({type(e).__name__}: {e})") from None


_STUDY_V1 = ("trial_number", "checkpoint_artifact", "shared_training", "train_batch_points")


def _from_v1(d: Mapping[str, Any]) -> Record:
    """A flat record of tinysnn 0.1.0 (design point as ``model``, ``n_exc``, ``quant`` label,
    explore's fields beside them; memory fields at the top level)."""
    dp_in = d["design_point"]
    if "neurons" in dp_in and "scheme" in dp_in:
        dp = DesignPoint.from_dict(dp_in)
    else:
        dp = DesignPoint.from_label(dp_in["model"], int(dp_in["n_exc"]), dp_in["quant"])
    names = {f.name for f in fields(Outcome)}
    outcome = Outcome(**{k: d[k] for k in names if k in d})
    detail = dict(d.get("memory", {}))
    memory = Memory(
        bits=int(d["memory_bits"]),
        normalized=float(d["normalized_memory"]),
        reference=str(d.get("normalized_memory_reference", "")),
        vs_baseline_fp32=float(d["memory_vs_baseline_fp32"]),
        train_bits=detail.get("train_memory_bits"),
        detail=detail,
    )
    energy = {k: PhaseEnergy.from_dict(v) for k, v in d.get("energy", {}).items() if v}
    return Record(
        design_point=dp,
        outcome=outcome,
        memory=memory,
        energy=energy,
        formats=dict(d.get("formats", {})),
        config=dict(d.get("config", {})),
        environment=dict(d.get("environment", {})),
        study={k: d[k] for k in _STUDY_V1 if k in d},
    )
