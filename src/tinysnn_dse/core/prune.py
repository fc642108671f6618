"""Pruning of the input synapses (docs/model.md, "Pruning").

A pruned network keeps a mask ``keep`` [n_in, n_exc] (bool) beside its weights
(:class:`~tinysnn_dse.core.neuron.Net`); a pruned synapse's weight is 0, no learning rule
moves it (every backend re-zeroes it right after each update, before anything reads it),
and the event counts and the memory leave it out.

Each excitatory neuron loses the same number of synapses, :func:`n_removed` of its
``n_in``: the ones whose learned weight is lowest, ties going to the lower input index
(:func:`prune_to`). With ``stdp`` (Rathi, Panda & Roy 2019) this happens during training
in :func:`schedule` rounds: the STDP-learned weight is the synapse's pre-post correlation
(potentiated when the input fires before the neuron, decayed by normalisation when it
does not), so the weakest synapses are the least correlated ones; the next normalisation
rescales the retained weights so each neuron keeps its total drive. With ``magnitude``
the trained network is pruned once the same way, then normalised (:func:`prune_trained`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tinysnn_dse.core.encoding import SpikeTrains
from tinysnn_dse.core.params import ModelConfig
from tinysnn_dse.core.rules import normalize

Tensor = torch.Tensor


def n_removed(n_in: int, fraction: float) -> int:
    """Synapses removed per excitatory neuron at ``fraction``: ``floor(fraction n_in +
    1/2)``, at most ``n_in - 1`` (every neuron keeps one input)."""
    return min(int(math.floor(fraction * n_in + 0.5)), n_in - 1)


def schedule(total: int, cfg: ModelConfig) -> dict[int, float]:
    """STDP pruning rounds of a training of ``total`` images: images done -> the fraction
    pruned after it. ``prune_rounds`` equal steps up to ``prune``, the last one after
    ``prune_until`` of the images (round r of R after ``ceil(r until total / R)``
    images); empty when nothing is pruned during training."""
    ln = cfg.learning
    if ln.prune <= 0 or ln.prune_method != "stdp" or total <= 0:
        return {}
    rounds = int(ln.prune_rounds)
    out: dict[int, float] = {}
    for r in range(1, rounds + 1):
        at = max(1, math.ceil(r * ln.prune_until * total / rounds))
        out[at] = ln.prune * r / rounds  # a later round at the same image supersedes
    return out


def prune_to(w: Tensor, keep: Tensor | None, removed: int) -> Tensor:
    """The mask after pruning each column of ``w`` [n_in, N] down to ``n_in - removed``
    retained synapses: already pruned ones stay pruned, then the retained synapses of
    lowest weight go, ties to the lower input index."""
    n_in = w.shape[0]
    score = w.detach().to(torch.float64).cpu()
    if keep is not None:
        score = torch.where(keep.cpu(), score, -math.inf)
    order = torch.argsort(score, dim=0, stable=True)  # ascending, ties by index
    out = torch.ones(n_in, w.shape[1], dtype=torch.bool)
    if removed > 0:
        out.scatter_(0, order[:removed], False)
    return out.to(w.device)


def apply_mask(w: Tensor, keep: Tensor) -> Tensor:
    return w * keep.to(w.dtype)


def prune_trained(w: Tensor, cfg: ModelConfig) -> tuple[Tensor, Tensor]:
    """Magnitude pruning of a trained network's ``w``: (pruned and normalised ``w``,
    ``keep``). The retained weights are rescaled so each column sums to the training's
    norm again (clipped at ``w_max``)."""
    keep = prune_to(w, None, n_removed(cfg.n_in, cfg.learning.prune))
    return normalize(apply_mask(w, keep), cfg.norm, cfg.learning.w_max), keep


def fan_in(keep: Tensor | None, n_in: int) -> int:
    """Retained synapses of each excitatory neuron (equal for all of them)."""
    return n_in if keep is None else int(keep[:, 0].sum())


def pruned_per_input(keep: Tensor | None) -> np.ndarray:
    """Pruned synapses of each input (int64 [n_in]; empty when nothing is pruned): an
    input spike reaches ``n_exc - pruned[i]`` neurons."""
    if keep is None:
        return np.zeros(0, dtype=np.int64)
    return (~keep).sum(dim=1).cpu().numpy().astype(np.int64)


def pruned_events(trains: SpikeTrains, keep: Tensor | None) -> int:
    """Synaptic events not performed: the spikes of ``trains`` that reach a pruned
    synapse (each spike of input i meets ``pruned_per_input(keep)[i]`` of them)."""
    if keep is None:
        return 0
    per_input = trains.spikes.sum(dim=1).cpu().numpy().astype(np.int64)
    rows = trains.pix.cpu().numpy().astype(np.int64)
    return int((per_input * pruned_per_input(keep)[rows]).sum())
