"""Modelled energy: event counts times per-operation energies (method.md section 6).

The simulator counts events as it runs (:class:`OpCounts`); :func:`modelled_energy` turns
them into operations of a fixed-point (or FP32) datapath and prices every operation with
the 45 nm figures of Horowitz, "Computing's energy problem", ISSCC 2014 (the table is in
``docs/energy.md``). The result describes an embedded accelerator running the design, not
the host that simulated it, so designs can be compared across precisions.

Operations per event (``b_w``, ``b_v``, ``b_t``: weight, Vmem and Vth word lengths; FP32 is
priced as floating point, any fixed-point width as integer arithmetic of that width):

- synaptic event (an input spike reaching one excitatory neuron through a retained
  synapse: a pruned one is neither read nor added): read one weight (``b_w`` bits) and
  add it to the neuron's input (an add at ``max(b_w, b_v)``);
- neuron update (every neuron of every layer, every step): read and write Vmem
  (``2 b_v`` bits), read Vth (``b_t``), leak (one multiply and one add at ``b_v``) and
  compare with the threshold (one add at ``max(b_v, b_t)``);
- recurrent inhibition: tinySNN's lateral inhibition adds a constant into the ``n - 1``
  other excitatory neurons per spike, with no weight read; the baseline reads one
  exc -> inh weight per excitatory spike and ``n - 1`` inh -> exc weights per inhibitory
  spike (each with an add). Inhibitory spikes are counted as excitatory spikes: with the
  default weights one excitatory spike (22.5 mV) lifts its partner over the 20 mV gap to
  threshold unless it is refractory, so this is an upper bound that is nearly exact;
- learning (training only): each synapse update reads and writes a weight (``2 b_w``) and
  costs two multiplies and one add at ``b_w``; each trace update one multiply at FP32;
  thresholds (docs/model.md, "Thresholds"): each excitatory spike one add and a read and
  write of its threshold, and each presentation's decay one multiply, one add, a read
  and a write per excitatory neuron, all at the width the threshold learns in (``b_t``,
  or its accumulator's ``b_t + 16`` under ITQ); the per-sample normalisation reads,
  sums, scales and writes every retained weight of the input matrix.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from tinysnn_dse.core.modes import Topology

#: Horowitz 2014, 45 nm, 0.9 V, in pJ. Integer widths between the listed points are
#: interpolated (linearly in bits for adds, quadratically for multiplies).
INT_ADD_PJ = {8: 0.03, 16: 0.05, 32: 0.1}
INT_MUL_PJ = {8: 0.2, 32: 3.1}
FP32_ADD_PJ = 0.9
FP32_MUL_PJ = 3.7
#: SRAM read of 64 bits from a 1 MB array: 100 pJ (8 KB: 10 pJ, 32 KB: 20 pJ). One array
#: size for every design, so that a weight bit costs the same whatever the model's size.
SRAM_PJ_PER_BIT = 100.0 / 64.0
ENERGY_SOURCE = "Horowitz, ISSCC 2014 (45 nm, 0.9 V); see docs/energy.md"


@dataclass
class OpCounts:
    """Events of a phase (training or inference), accumulated while it runs.

    A mutable accumulator: the simulation adds to it; everything else reads it.
    """

    samples: int = 0  # images
    presentations: int = 0  # images x presentations (boosted images count again)
    steps: int = 0  # simulated steps, summed over presentations
    input_spikes: int = 0
    exc_spikes: int = 0
    synapse_updates: int = 0  # individual weight updates by the learning rule
    trace_updates: int = 0
    normalisations: int = 0  # per-sample renormalisations of the whole input matrix
    # pruning (core/prune.py): input spikes onto a pruned synapse (synaptic events not
    # performed) and pruned weights the normalisations skipped
    pruned_events: int = 0
    pruned_normalised: int = 0

    def add(self, other: OpCounts) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)

    def to_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}


def _interp(table: dict[int, float], bits: int, power: float) -> float:
    """Interpolate ``table`` (bits -> pJ) in ``bits ** power``; extrapolate at the ends."""
    pts = sorted(table.items())
    x = bits**power
    for (b0, e0), (b1, e1) in zip(pts, pts[1:], strict=False):
        if bits <= b1 or (b1, e1) == pts[-1]:
            x0, x1 = b0**power, b1**power
            return max(e0 + (e1 - e0) * (x - x0) / (x1 - x0), 0.0)
    return pts[-1][1]  # pragma: no cover


def add_pj(bits: int | None) -> float:
    """Energy of one addition at ``bits`` (``None``: FP32)."""
    return FP32_ADD_PJ if bits is None else _interp(INT_ADD_PJ, bits, 1.0)


def mul_pj(bits: int | None) -> float:
    """Energy of one multiplication at ``bits`` (``None``: FP32)."""
    return FP32_MUL_PJ if bits is None else _interp(INT_MUL_PJ, bits, 2.0)


def mem_pj(bits: int | None, words: float = 1.0) -> float:
    """Energy of moving ``words`` words of ``bits`` bits to or from SRAM."""
    return words * (32 if bits is None else bits) * SRAM_PJ_PER_BIT


def _wider(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else max(a, b)


@dataclass(frozen=True)
class EnergyEstimate:
    """Modelled energy of one phase, in joules, split by kind of operation."""

    total_j: float
    per_sample_j: float
    breakdown_j: dict[str, float] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "modelled_j": self.total_j,
            "modelled_j_per_sample": self.per_sample_j,
            "modelled_breakdown_j": dict(self.breakdown_j),
            "ops": dict(self.ops),
            "modelled_source": ENERGY_SOURCE,
        }


def modelled_energy(
    counts: OpCounts,
    n_in: int,
    n_exc: int,
    topology: Topology,
    weight_bits: int | None,
    vmem_bits: int | None,
    vth_bits: int | None,
    vth_learn_bits: int | None = None,
    leak: str = "lif",
    floor: bool = False,
) -> EnergyEstimate:
    """Price the events in ``counts`` for a network and its precisions (see module doc);
    ``vth_learn_bits``: the width thresholds learn in, when it differs from ``vth_bits``
    (an ITQ threshold's accumulator); ``leak`` "if": the excitatory neurons integrate
    without a leak, so their updates drop its multiply and add (the baseline's
    inhibitory layer keeps them); ``floor``: a membrane floor, one more compare (an add at
    ``b_v``) per excitatory neuron update."""
    bw, bv, bt = weight_bits, vmem_bits, vth_bits
    bl = vth_learn_bits if vth_learn_bits is not None else bt
    inhibitory = topology == Topology.INHIBITORY
    layers = 2 if inhibitory else 1
    syn_events = counts.input_spikes * n_exc - counts.pruned_events  # retained synapses
    neuron_updates = counts.steps * n_exc * layers
    pj: dict[str, float] = {}
    pj["synaptic"] = syn_events * (mem_pj(bw) + add_pj(_wider(bw, bv)))
    update = mem_pj(bv, 2) + mem_pj(bt) + add_pj(_wider(bv, bt))  # read, write, compare
    leak_pj = mul_pj(bv) + add_pj(bv)
    leaky_updates = neuron_updates if leak == "lif" else neuron_updates - counts.steps * n_exc
    pj["neuron"] = neuron_updates * update + leaky_updates * leak_pj
    if floor:
        pj["neuron"] += counts.steps * n_exc * add_pj(bv)
    if inhibitory:  # exc -> inh (one weight each) and inh -> exc (n - 1 weights each)
        rec_reads = counts.exc_spikes * (1 + (n_exc - 1))
        pj["recurrent"] = rec_reads * (mem_pj(bw) + add_pj(_wider(bw, bv)))
    else:  # a constant, no weight memory
        pj["recurrent"] = counts.exc_spikes * (n_exc - 1) * add_pj(bv)
    if counts.synapse_updates or counts.normalisations:
        pj["learning"] = counts.synapse_updates * (mem_pj(bw, 2) + 2 * mul_pj(bw) + add_pj(bw))
        pj["traces"] = counts.trace_updates * mul_pj(None)
        pj["threshold"] = counts.exc_spikes * (add_pj(bl) + mem_pj(bl, 2)) + (
            counts.presentations * n_exc * (mul_pj(bl) + add_pj(bl) + mem_pj(bl, 2))
        )
        pj["normalisation"] = (counts.normalisations * n_in * n_exc - counts.pruned_normalised) * (
            mem_pj(bw, 2) + add_pj(bw) + mul_pj(bw)
        )
    total_j = sum(pj.values()) * 1e-12
    ops = counts.to_dict()
    ops.update(synaptic_events=syn_events, neuron_updates=neuron_updates)
    return EnergyEstimate(
        total_j=total_j,
        per_sample_j=total_j / counts.samples if counts.samples else math.nan,
        breakdown_j={k: v * 1e-12 for k, v in pj.items()},
        ops=ops,
    )
