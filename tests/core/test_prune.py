"""Pruning (issue 15; docs/model.md, "Pruning"): hand-worked masks, schedules, storage
and event counts, and the physics a pruned synapse must obey on every backend: it is
never moved and never read, so pruning an input for every neuron is the same network as
one whose input never spikes (an expectation independent of both backends)."""

from __future__ import annotations

import pytest
import torch

from tinysnn_dse.core import prune, sim
from tinysnn_dse.core.energy import OpCounts, add_pj, mem_pj, modelled_energy
from tinysnn_dse.core.memory import memory_report, sparse_storage
from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.core.quant import Quantizers
from tinysnn_dse.errors import ConfigError


def test_removed_per_neuron_by_hand() -> None:
    assert prune.n_removed(784, 0.5) == 392
    assert prune.n_removed(784, 0.9) == 706  # 705.6 rounds up
    assert prune.n_removed(64, 0.9) == 58  # 57.6
    assert prune.n_removed(784, 0.0) == 0
    assert prune.n_removed(4, 0.99) == 3  # every neuron keeps one input


def test_schedule_by_hand() -> None:
    cfg = preset("tinysnn", 16, 4, prune=0.6, prune_rounds=3, prune_until=0.5)
    # rounds after ceil(r * 0.5 * 1000 / 3) images: 167, 334, 500
    assert prune.schedule(1000, cfg) == {167: pytest.approx(0.2), 334: pytest.approx(0.4),
                                         500: pytest.approx(0.6)}  # fmt: skip
    assert prune.schedule(1000, preset("tinysnn", 16, 4)) == {}
    magnitude = preset("tinysnn", 16, 4, prune=0.5, prune_method="magnitude")
    assert prune.schedule(1000, magnitude) == {}  # pruned once, after training
    # fewer images than rounds: a later round at the same image supersedes
    assert prune.schedule(2, cfg) == {1: pytest.approx(0.6)}  # ceil(1/3), ceil(2/3), ceil(1)


def test_prune_to_by_hand() -> None:
    w = torch.tensor([[0.5, 0.1], [0.2, 0.1], [0.9, 0.3], [0.2, 0.0]])
    keep = prune.prune_to(w, None, 2)
    # column 0: 0.2 (row 1) and 0.2 (row 3) are the lowest, ties by index -> rows 1, 3
    # column 1: 0.0 (row 3), then 0.1 at rows 0 and 1 -> row 0 (the lower index)
    assert keep.tolist() == [[True, False], [False, True], [True, True], [False, False]]
    # a pruned synapse stays pruned whatever its weight; one more per column goes
    keep3 = prune.prune_to(w + 10 * (~keep), keep, 3)
    assert keep3.tolist() == [[False, False], [False, False], [True, True], [False, False]]


def test_magnitude_pruning_keeps_each_neurons_drive() -> None:
    cfg = preset("tinysnn", 64, 10, prune=0.75, prune_method="magnitude")
    net = sim.init_net(cfg, torch.Generator().manual_seed(0))
    w, keep = prune.prune_trained(net.w, cfg)
    assert int(keep.sum(0).unique()) == 16  # 64 - 48 per neuron
    assert torch.all(w[~keep] == 0)
    # the kept ones were the largest of each column
    for j in range(10):
        assert float(net.w[keep[:, j], j].min()) >= float(net.w[~keep[:, j], j].max())
    torch.testing.assert_close(w.sum(0), torch.full((10,), cfg.norm), rtol=1e-5, atol=0)


def test_sparse_storage_by_hand() -> None:
    # 784 x 400, 8-bit weights, 78 of 784 kept per neuron (prune 0.9): 31,200 weights
    kept = 78 * 400
    fmt, bits, idx = sparse_storage(784, 400, kept, 8)
    # CSR: 31,200 x 10 index bits + 401 pointers x ceil(log2 31,201) = 15 bits = 318,015;
    # bitmap: 313,600 bits; both plus 249,600 weight bits
    assert (fmt, bits, idx) == ("bitmap", 249_600 + 313_600, 313_600)
    # 4 of 784 kept per neuron, 2-bit weights: CSR 1,600 x 10 + 401 x 11 = 20,411
    assert sparse_storage(784, 400, 1_600, 2) == ("csr", 3_200 + 20_411, 20_411)
    # little pruned at 2 bits: a bitmap costs more than the zeros it saves
    assert sparse_storage(784, 400, 784 * 400 - 400, 2)[0] == "dense"
    assert sparse_storage(784, 400, 784 * 400, 8) == ("dense", 784 * 400 * 8, 0)


def test_memory_report_of_a_pruned_network() -> None:
    full = memory_report(784, 400, "lateral", 8, 16, 16)
    pr = memory_report(784, 400, "lateral", 8, 16, 16, retained=78 * 400)
    assert full.memory_format == "dense" and full.sparsity == 0.0
    assert pr.memory_format == "bitmap"
    assert pr.weight_memory_bits == 249_600 + 313_600
    assert pr.neuron_memory_bits == full.neuron_memory_bits == 400 * 32
    assert pr.sparsity == pytest.approx(1 - 78 / 784)
    # the baseline's inhibitory matrices stay dense
    base = memory_report(784, 400, "inhibitory", 8, 16, 16, retained=78 * 400)
    assert base.weight_memory_bits == 249_600 + 313_600 + 2 * 400 * 400 * 8


def test_modelled_energy_counts_retained_synapses_only() -> None:
    c = OpCounts(samples=1, presentations=1, steps=10, input_spikes=10, pruned_events=15)
    e = modelled_energy(c, 8, 4, "lateral", 8, 16, 16)
    assert e.ops["synaptic_events"] == 10 * 4 - 15
    assert e.breakdown_j["synaptic"] == pytest.approx(25 * (mem_pj(8) + add_pj(16)) * 1e-12)
    full = modelled_energy(OpCounts(samples=1, normalisations=2, synapse_updates=1), 8, 4,
                           "lateral", 8, 16, 16)  # fmt: skip
    c2 = OpCounts(samples=1, normalisations=2, synapse_updates=1, pruned_normalised=40)
    pruned = modelled_energy(c2, 8, 4, "lateral", 8, 16, 16)
    # 2 x 32 weights less 40 pruned: 24 of 64 normalised
    ratio = pruned.breakdown_j["normalisation"] / full.breakdown_j["normalisation"]
    assert ratio == pytest.approx(24 / 64)


def _row_pruned(cfg, qz, row: int):  # type: ignore[no-untyped-def]
    """(net with input ``row`` pruned for every neuron, the same net with that row 0 and
    no mask)."""
    g = torch.Generator().manual_seed(0)
    net = sim.init_net(cfg, g)
    if not qz.is_fp32:
        net = sim.quantize_net(net, cfg, qz, g)
    keep = torch.ones(cfg.n_in, cfg.n_exc, dtype=torch.bool)
    keep[row] = False
    return net._replace(w=net.w * keep, keep=keep), net._replace(w=net.w * keep)


RULES = [
    ("tinysnn", QuantSpec(), "numba"),
    ("tinysnn", QuantSpec(), "reference"),
    ("tinysnn", QuantSpec(scheme="itq", rounding="stochastic", weight_bits=8), "numba"),
    ("tinysnn", QuantSpec(scheme="itq", rounding="nearest", weight_bits=6), "reference"),
    ("baseline", QuantSpec(), "numba"),
    ("baseline", QuantSpec(), "reference"),
    ("sl-stdp", QuantSpec(), "numba"),
    ("sl-stdp", QuantSpec(scheme="itq", rounding="truncate", weight_bits=8), "reference"),
]


@pytest.mark.parametrize(("model", "q", "backend"), RULES)
def test_a_pruned_synapse_is_never_moved_nor_read(model: str, q: QuantSpec, backend: str) -> None:
    """Learning presentations of a network with input 5 pruned everywhere equal those of
    the unmasked network whose input 5 never spikes (its row 0): the same spike counts
    and weights to the last bit, on each backend. A rule that moved a pruned synapse
    within a presentation and re-zeroed it later would differ in the counts."""
    if backend == "numba" and not sim.kernels.HAVE_NUMBA:
        pytest.skip("numba not installed")
    cfg = preset(model, 36, 12)
    qz = Quantizers.from_spec(q) if q.scheme == "itq" else Quantizers.fp32()
    gs = torch.Generator().manual_seed(3)
    pix = torch.rand(36, generator=gs) * 0.6
    pix[5] = 0.6
    masked, silenced = _row_pruned(cfg, qz, 5)
    spikes = torch.rand(1, 250, 36, generator=gs) < pix * 0.5
    quiet = spikes.clone()
    quiet[:, :, 5] = False
    assert int(spikes[0, :, 5].sum()) > 10
    for _ in range(3):
        ga, gb = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
        masked, ca = sim.simulate(masked, spikes, cfg, qz, ga, True, backend)
        silenced, cb = sim.simulate(silenced, quiet, cfg, qz, gb, True, backend)
        assert ca.sum() > 0
        assert torch.equal(ca, cb)
        assert masked.keep is not None and torch.all(masked.w[~masked.keep] == 0)
        assert torch.equal(masked.w[5], torch.zeros(12))
    torch.testing.assert_close(masked.w, silenced.w, rtol=0, atol=0)


def test_inference_counts_pruned_events_by_hand() -> None:
    """The inference kernel and the reference count the input spikes that meet a pruned
    synapse as a hand count from the stored trains does: sum over spikes of the input's
    pruned synapses."""
    cfg = preset("tinysnn", 36, 12)
    qz = Quantizers.fp32()
    g = torch.Generator().manual_seed(0)
    net = sim.init_net(cfg, g)
    keep = prune.prune_to(net.w, None, 20)
    net = net._replace(w=net.w * keep, keep=keep)
    pix = torch.rand(6, 36, generator=torch.Generator().manual_seed(4))
    trains = sim.skip_trains(pix, 250, sim.rate_scale(cfg, 0), torch.Generator().manual_seed(5))
    per_input = trains.spikes.sum(dim=1)
    want = sum(int(per_input[m]) * int((~keep[trains.pix[m]]).sum())
               for m in range(len(trains.pix)))  # fmt: skip
    assert want > 0
    assert prune.pruned_events(trains, keep) == want
    if sim.kernels.HAVE_NUMBA:
        counts, (n_in, n_pr) = sim.infer_drawn(net, pix, sim.rate_scale(cfg, 0), cfg, qz,
                                               torch.Generator().manual_seed(5))  # fmt: skip
        assert n_in == int(per_input.sum())
        assert n_pr == want
    ops = OpCounts()
    sim.infer(net, pix, cfg, qz, torch.Generator().manual_seed(9), backend="reference", stats=ops)
    assert ops.pruned_events > 0
    assert ops.pruned_events <= ops.input_spikes * 12


def test_bad_prune_values_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match=r"prune must be a fraction in \[0, 1\)"):
        preset("tinysnn", 16, 4, prune=1.0)
    with pytest.raises(ConfigError, match="unknown prune_method 'random'"):
        preset("tinysnn", 16, 4, prune_method="random")
    with pytest.raises(ConfigError, match="prune_rounds must be an integer"):
        preset("tinysnn", 16, 4, prune_rounds=0)


def test_design_batches_prune_during_training() -> None:
    """STDP pruning runs in design batches (Numba on the CPU; Triton on CUDA, held to the
    Numba batch by tests/test_cuda.py): the batch backend is chosen as for an unpruned
    network (tests/core/test_design_batch.py holds a pruned batch to its single runs)."""
    cfg = preset("tinysnn", 16, 4, prune=0.5)
    qz = Quantizers.fp32()
    cpu = torch.device("cpu")
    assert sim.supported("batch", cfg, qz, cpu) == sim.supported(
        "batch", preset("tinysnn", 16, 4), qz, cpu
    )
    mag = preset("tinysnn", 16, 4, prune=0.5, prune_method="magnitude")
    assert sim.supported("batch", mag, qz, cpu) != [] or not sim.kernels.HAVE_NUMBA
