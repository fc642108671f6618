"""Label assignment and classification from spike counts (method.md section 3).

BindsNET's vocabulary and formulas (``bindsnet/evaluation/evaluation.py``): after
training, each excitatory neuron is *assigned* the class for which its mean spike count is
highest, and its *proportions* are its mean counts per class over their sum. A sample with
spike counts ``c_j`` is classified by the class ``k`` of the highest score:

- ``all`` (all activity): ``sum_{j assigned k} c_j / n_k``, the mean count of the
  ``n_k`` neurons assigned class k;
- ``proportion`` (proportion weighting): ``sum_{j assigned k} p_jk c_j / n_k``, the same
  mean with each count weighted by the neuron's proportion for k;
- ``soft-vote`` (ours, not BindsNET's): ``sum_j p_jk c_j``, every neuron votes for every
  class with its count times its proportion for that class, assigned or not.

Two honest deviations from BindsNET's readout: a neuron that never fired on the
assignment set is left unassigned (-1) instead of being given class 0, and a test sample
with no evidence at all (no spike in any assigned neuron) is predicted as -1, which
counts as an error, instead of defaulting to class 0.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

Tensor = torch.Tensor


class Assignment(NamedTuple):
    """``labels`` [N] (long, -1 = unassigned), ``proportions`` [N, C], ``rates`` [N, C]."""

    labels: Tensor
    proportions: Tensor
    rates: Tensor


def assign_labels(counts: Tensor, labels: Tensor, n_classes: int) -> Assignment:
    """Assign each neuron its class of highest mean count over ``counts`` [S, N]."""
    counts = counts.to(torch.float64)
    onehot = torch.nn.functional.one_hot(labels.long(), n_classes).to(counts.dtype)  # [S, C]
    per_class = onehot.sum(0).clamp_min(1.0)  # samples of each class
    rates = (counts.T @ onehot) / per_class  # [N, C]
    best, assigned = rates.max(dim=1)
    assigned = torch.where(best > 0, assigned, torch.full_like(assigned, -1))
    total = rates.sum(dim=1, keepdim=True)
    proportions = torch.where(total > 0, rates / total.clamp_min(1e-30), torch.zeros_like(rates))
    return Assignment(labels=assigned, proportions=proportions, rates=rates)


def predict(counts: Tensor, assignment: Assignment, n_classes: int, mode: str = "all") -> Tensor:
    """Predicted class [S] (long) for ``counts`` [S, N]; -1 where there is no evidence
    (a zero score for every class). Ties go to the lowest class."""
    counts = counts.to(torch.float64)
    if mode in ("all", "proportion"):
        onehot = torch.zeros(assignment.labels.shape[0], n_classes, dtype=counts.dtype)
        valid = assignment.labels >= 0
        onehot[valid.nonzero().flatten(), assignment.labels[valid]] = 1.0
        n_assigned = onehot.sum(0)  # [C]
        weights = onehot if mode == "all" else onehot * assignment.proportions
        score = (counts @ weights) / n_assigned.clamp_min(1.0)
        score = torch.where(n_assigned > 0, score, torch.zeros_like(score))
    elif mode == "soft-vote":
        score = counts @ assignment.proportions
    else:
        raise ValueError(f"unknown readout {mode!r}")
    best, pred = score.max(dim=1)
    return torch.where(best > 0, pred, torch.full_like(pred, -1))


def accuracy(pred: Tensor, labels: Tensor) -> float:
    """Fraction of ``pred`` equal to ``labels`` (0.0 for an empty set)."""
    if labels.numel() == 0:
        return 0.0
    return float((pred == labels.long()).to(torch.float64).mean())
