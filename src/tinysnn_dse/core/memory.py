"""Memory footprint (method.md section 5, paper Eq. 4).

    mem = N_w * b_w + sum_k N_pk * b_pk

Stored weights: input -> excitatory (n_in x n_exc); the baseline topology also stores its
two inhibitory connection matrices as full n_exc x n_exc matrices (exc -> inh, one to one,
and inh -> exc, all to all but self), as BindsNET does. Stored neuron parameters: Vmem
and Vth of every neuron of every layer (for the baseline, of the inhibitory layer too).
Weights are held at the weight precision, Vmem and Vth at theirs; FP32 counts 32 bits.
Training under ITQ holds each excitatory threshold in an accumulator
``quant.VTH_GUARD_BITS`` bits wider (``train_memory_bits``; docs/model.md).
The inhibitory matrices and the inhibitory neurons of the baseline are held at the same
precisions as their excitatory counterparts. A pruned input matrix stores its retained
weights only, in the cheapest of dense, CSR and bitmap form (:func:`sparse_storage`,
whose index bits count in the weight memory; ``memory_format`` says which).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from tinysnn_dse.core.modes import Topology

FP32_BITS = 32


@dataclass(frozen=True)
class MemoryReport:
    topology: str
    n_weights: int
    n_neurons: int
    weight_bits: int
    vmem_bits: int
    vth_bits: int
    weight_memory_bits: int
    neuron_memory_bits: int
    memory_bits: int
    reference_bits: int  # same topology and size at FP32
    baseline_fp32_bits: int  # baseline (inhibitory-layer) topology, same size, FP32
    # while training under ITQ, each learning threshold sits in a wider accumulator
    # (quant.VTH_GUARD_BITS more bits): the state training must hold
    train_memory_bits: int
    # a pruned input matrix (core/prune.py) is stored in the cheapest of "dense" (zeros
    # kept), "csr" and "bitmap" (sparse_storage); its index bits are in weight_memory_bits
    memory_format: str = "dense"
    index_bits: int = 0
    sparsity: float = 0.0  # pruned share of the input synapses

    @property
    def memory_bytes(self) -> float:
        return self.memory_bits / 8

    @property
    def normalized_memory(self) -> float:
        return self.memory_bits / self.reference_bits

    @property
    def vs_baseline_fp32(self) -> float:
        return self.memory_bits / self.baseline_fp32_bits

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            memory_bytes=self.memory_bytes,
            normalized_memory=self.normalized_memory,
            normalized_memory_reference=f"{self.topology} topology, same size, FP32",
            vs_baseline_fp32=self.vs_baseline_fp32,
        )
        return d


def _bits(b: int | None) -> int:
    return FP32_BITS if b is None else int(b)


def counts(n_in: int, n_exc: int, topology: Topology) -> tuple[int, int]:
    """(stored weights, neurons with a Vmem and a Vth) for a topology."""
    if topology == Topology.INHIBITORY:
        return n_in * n_exc + 2 * n_exc * n_exc, 2 * n_exc
    if topology == Topology.LATERAL:
        return n_in * n_exc, n_exc
    raise ValueError(f"unknown topology {topology!r}")


def _total(n_in: int, n_exc: int, topology: Topology, wb: int, vb: int, tb: int) -> tuple[int, int]:
    n_w, n_n = counts(n_in, n_exc, topology)
    return n_w * wb, n_n * (vb + tb)


def sparse_storage(n_in: int, n_exc: int, retained: int, wb: int) -> tuple[str, int, int]:
    """How a pruned input matrix with ``retained`` of its ``n_in x n_exc`` synapses is
    stored at ``wb`` bits a weight: (format, total bits, index bits of it), the cheapest of

    - ``dense``: every position, ``n_in n_exc wb`` (no index);
    - ``csr``: one row per excitatory neuron, each retained weight with its input's index
      (``ceil(log2 n_in)`` bits), plus ``n_exc + 1`` row pointers of
      ``ceil(log2(retained + 1))`` bits;
    - ``bitmap``: one bit per position, plus the retained weights.

    Ties go to the earlier of dense, csr, bitmap."""
    dense = n_in * n_exc * wb
    if retained >= n_in * n_exc:
        return "dense", dense, 0
    csr_idx = retained * max(1, math.ceil(math.log2(n_in))) + (n_exc + 1) * max(
        1, math.ceil(math.log2(retained + 1))
    )
    bitmap_idx = n_in * n_exc
    options = (
        ("dense", dense, 0),
        ("csr", retained * wb + csr_idx, csr_idx),
        ("bitmap", retained * wb + bitmap_idx, bitmap_idx),
    )
    return min(options, key=lambda o: o[1])


def memory_report(
    n_in: int,
    n_exc: int,
    topology: Topology,
    weight_bits: int | None,
    vmem_bits: int | None,
    vth_bits: int | None,
    vth_guard_bits: int = 0,
    retained: int | None = None,
) -> MemoryReport:
    """Eq. 4 for a network and its precisions; ``vth_guard_bits``: the extra bits of each
    excitatory threshold's accumulator while it learns (ITQ with a quantized Vth), counted
    in ``train_memory_bits`` only (the deployed model stores the threshold).
    ``retained``: input synapses a pruned network keeps (None: all), stored as
    :func:`sparse_storage` says (Eq. 4 over the stored weights, plus index bits)."""
    wb, vb, tb = _bits(weight_bits), _bits(vmem_bits), _bits(vth_bits)
    n_w, n_n = counts(n_in, n_exc, topology)
    w_mem, n_mem = _total(n_in, n_exc, topology, wb, vb, tb)
    full = n_in * n_exc
    kept = full if retained is None else int(retained)
    fmt, in_bits, idx_bits = sparse_storage(n_in, n_exc, kept, wb)
    if fmt != "dense":  # the inhibitory matrices of the baseline stay dense
        w_mem += in_bits - full * wb
        n_w -= full - kept
    ref = sum(_total(n_in, n_exc, topology, FP32_BITS, FP32_BITS, FP32_BITS))
    base = sum(_total(n_in, n_exc, Topology.INHIBITORY, FP32_BITS, FP32_BITS, FP32_BITS))
    return MemoryReport(
        topology=topology,
        n_weights=n_w,
        n_neurons=n_n,
        weight_bits=wb,
        vmem_bits=vb,
        vth_bits=tb,
        weight_memory_bits=w_mem,
        neuron_memory_bits=n_mem,
        memory_bits=w_mem + n_mem,
        reference_bits=ref,
        baseline_fp32_bits=base,
        train_memory_bits=w_mem + n_mem + n_exc * vth_guard_bits,
        memory_format=fmt,
        index_bits=idx_bits,
        sparsity=1.0 - kept / full,
    )
