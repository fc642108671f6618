"""Model selection (method.md section 7, paper Eq. 3) over plain trial records.

    R = A - mu * M      A: accuracy in [0, 1]; M: normalized memory; mu >= 0

Ranking is by reward, highest first; ties go to the smaller memory, then the higher
accuracy, then the lower trial number, so that the order never depends on storage order.
No Optuna and no torch here: records are :class:`records.Record` (what a trial stored).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from tinysnn_dse.axes import FAMILY_OF
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.records import NEUROBENCH, PHASES, Record, check_robust_key

MemoryReference = Literal["same-topology", "baseline-fp32"]
MEMORY_REFERENCES = ("same-topology", "baseline-fp32")
ENERGY_SOURCES = ("modelled", "measured")
#: the adversarial accuracy a robustness constraint reads unless told: the transfer
#: attack from the ANN, which every family's records hold (runner.robustness)
DEFAULT_ROBUST_KEY = "transfer-pgd-0.1"


def robust_accuracy(r: dict[str, Any], key: str) -> float:
    """A row's adversarial accuracy at ``key`` (NaN where its record did not measure it)."""
    v = (r.get("robustness") or {}).get(check_robust_key(key))
    return math.nan if v is None else float(v)


@dataclass(frozen=True)
class Constraints:
    """Optional limits on a selected model; ``None`` means no limit."""

    min_accuracy: float | None = None
    max_memory_kb: float | None = None
    max_energy_mj: float | None = None
    energy_phase: str = "infer"  # which phase max_energy_mj limits
    energy_source: str = "modelled"  # which energy figure
    max_latency_ms: float | None = None  # mean presentation time per test image
    #: the least adversarial accuracy (a fraction) at ``robust_key``; a record that did
    #: not measure that key is not admissible
    min_robust_accuracy: float | None = None
    #: which adversarial accuracy (``THREAT-ATTACK-EPSILON``) the constraint and, where
    #: set, the Pareto set (a fourth objective) read; None: the constraint reads
    #: :data:`DEFAULT_ROBUST_KEY` and the Pareto set has three objectives
    robust_key: str | None = None

    @property
    def robust(self) -> str:
        """The adversarial accuracy the constraint reads."""
        return self.robust_key or DEFAULT_ROBUST_KEY

    def validate(self) -> Constraints:
        if self.energy_phase not in PHASES:
            raise ConfigError(f"energy phase {self.energy_phase!r}; choose train or infer")
        if self.energy_source not in ENERGY_SOURCES:
            raise ConfigError(
                f"energy source {self.energy_source!r}; choose {' or '.join(ENERGY_SOURCES)}"
            )
        if self.min_accuracy is not None and not 0 <= self.min_accuracy <= 1:
            raise ConfigError(f"min accuracy {self.min_accuracy} is not a fraction in [0, 1]")
        r = self.min_robust_accuracy
        if r is not None and not 0 <= r <= 1:
            raise ConfigError(f"min robust accuracy {r} is not a fraction in [0, 1]")
        if self.robust_key is not None:
            check_robust_key(self.robust_key)
        for name in ("max_memory_kb", "max_energy_mj", "max_latency_ms"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ConfigError(f"{name} must be positive, got {v}")
        return self


def memory_fraction(rec: Record, reference: str = "same-topology") -> float:
    """M of a record against ``reference`` (FP32, same size; same topology or the baseline)."""
    if reference == "same-topology":
        return float(rec.memory.normalized)
    if reference == "baseline-fp32":
        return float(rec.memory.vs_baseline_fp32)
    raise ConfigError(f"memory reference {reference!r}; choose {' or '.join(MEMORY_REFERENCES)}")


def reference_text(reference: str) -> str:
    return {
        "same-topology": "M = memory / (same topology and size at FP32)",
        "baseline-fp32": "M = memory / (DC15 baseline topology, same size, FP32)",
    }[reference]


def energy_j(rec: Record, phase: str, source: str, per_sample: bool = False) -> float:
    """A record's energy of ``phase`` from ``source``, total or per sample (NaN if absent)."""
    e = rec.energy.get(phase)
    if e is None:
        return math.nan
    v = getattr(e, f"{source}_j" + ("_per_sample" if per_sample else ""))
    return float(v) if v is not None else math.nan


def reward(accuracy: float, m: float, mu: float) -> float:
    """Paper Eq. 3."""
    return accuracy - mu * m


def row(rec: Record, mu: float, reference: str) -> dict[str, Any]:
    """The flat selection row of a record (the ``select --json`` schema)."""
    m = memory_fraction(rec, reference)
    out: dict[str, Any] = {
        # the record's schema and what computed its numbers (train and infer backends,
        # the inference datapath), spelled as in the record
        "schema_version": rec.schema_version,
        "backend": dict(rec.backend),
        "trial": rec.study.get("trial_number"),
        "design_key": rec.key,
        "design_point": rec.design_point.to_dict(),
        "accuracy": rec.accuracy,
        "memory_bits": rec.memory.bits,
        "memory_kb": rec.memory.kib,
        "normalized_memory": m,
        "memory_reference": reference_text(reference),
        "reward": reward(rec.accuracy, m, mu),
        "mu": mu,
        # None: a record written before latency was recorded (a 0 there means unknown)
        "latency_ms": rec.outcome.latency_ms or None,
        # pruned share of the input synapses and how the input matrix is stored
        "sparsity": float(rec.memory.detail.get("sparsity", 0.0)),
        "memory_format": rec.memory.detail.get("memory_format", "dense"),
        "family": FAMILY_OF.get(rec.design_point.model, ""),
        # NeuroBench's metrics, as NeuroBench defines them, where the record has them
        **{f"nb_{k}": rec.outcome.neurobench.get(k) for k in NEUROBENCH},
        # adversarial accuracies ("clean", "transfer-pgd-0.1", ...) where it measured them
        "robustness": dict(rec.outcome.robustness),
    }
    for phase in PHASES:
        for source in ENERGY_SOURCES:
            out[f"{phase}_energy_{source}_mj"] = energy_j(rec, phase, source) * 1e3
            out[f"{phase}_energy_{source}_uj_per_sample"] = (
                energy_j(rec, phase, source, per_sample=True) * 1e6
            )
        e = rec.energy.get(phase)
        out[f"{phase}_energy_measured_method"] = e.measured_method if e else None
    return out


def _order(r: dict[str, Any]) -> tuple[float, float, float, float]:
    t = r["trial"] if r["trial"] is not None else math.inf
    return (-r["reward"], r["memory_bits"], -r["accuracy"], t)


def admissible(r: dict[str, Any], c: Constraints) -> bool:
    if c.min_accuracy is not None and r["accuracy"] < c.min_accuracy:
        return False
    if c.max_memory_kb is not None and r["memory_kb"] > c.max_memory_kb:
        return False
    if c.max_latency_ms is not None and not (r["latency_ms"] or math.inf) <= c.max_latency_ms:
        return False
    if c.min_robust_accuracy is not None:
        a = robust_accuracy(r, c.robust)
        if math.isnan(a) or a < c.min_robust_accuracy:
            return False
    if c.max_energy_mj is not None:
        e = r[f"{c.energy_phase}_energy_{c.energy_source}_mj"]
        if math.isnan(e) or e > c.max_energy_mj:
            return False
    return True


def rank(
    records: list[Record],
    mu: float,
    constraints: Constraints | None = None,
    reference: str = "same-topology",
) -> list[dict[str, Any]]:
    """Rows of the records that meet ``constraints``, best reward first (see module doc)."""
    if not (mu >= 0 and math.isfinite(mu)):
        raise ConfigError(f"mu must be a non-negative number, got {mu}")
    c = (constraints or Constraints()).validate()
    rows = [row(r, mu, reference) for r in records]
    return sorted((r for r in rows if admissible(r, c)), key=_order)


def pareto(
    rows: list[dict[str, Any]], energy_key: str, robust_key: str | None = None
) -> list[dict[str, Any]]:
    """Rows no other row dominates in (accuracy up, memory down, ``energy_key`` down) and,
    with ``robust_key``, that adversarial accuracy up.

    A row without that energy (NaN) is compared on the others alone, as is one without
    that adversarial accuracy (as the worst).
    """

    def objs(r: dict[str, Any]) -> tuple[float, ...]:
        e = r[energy_key]
        out = (-r["accuracy"], r["memory_bits"], math.inf if math.isnan(e) else e)
        if robust_key is None:
            return out
        a = robust_accuracy(r, robust_key)
        return (*out, math.inf if math.isnan(a) else -a)

    pts = [objs(r) for r in rows]
    front = []
    for i, r in enumerate(rows):
        a = pts[i]
        dominated = any(
            all(x <= y for x, y in zip(b, a, strict=True))
            and any(x < y for x, y in zip(b, a, strict=True))
            for j, b in enumerate(pts)
            if j != i
        )
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: (r["memory_bits"], -r["accuracy"]))


def selections(
    records: list[Record],
    mus: list[float],
    constraints: Constraints | None = None,
    reference: str = "same-topology",
) -> list[tuple[float, dict[str, Any] | None]]:
    """The selected row (or None if nothing is admissible) for each mu."""
    out: list[tuple[float, dict[str, Any] | None]] = []
    for mu in mus:
        ranked = rank(records, mu, constraints, reference)
        out.append((mu, ranked[0] if ranked else None))
    return out
