"""Label assignment and classification from spike counts (method.md section 3).

BindsNET's vocabulary: after training, each excitatory neuron is *assigned* the class for
which its mean spike count is highest; a sample is classified by *all activity* (the class
whose assigned neurons fire most on average) or by *proportion weighting*.

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
    """Predicted class [S] (long) for ``counts`` [S, N]; -1 where there is no evidence."""
    counts = counts.to(torch.float64)
    if mode == "all":
        onehot = torch.zeros(assignment.labels.shape[0], n_classes, dtype=counts.dtype)
        valid = assignment.labels >= 0
        onehot[valid.nonzero().flatten(), assignment.labels[valid]] = 1.0
        n_assigned = onehot.sum(0)  # [C]
        score = (counts @ onehot) / n_assigned.clamp_min(1.0)
        score = torch.where(n_assigned > 0, score, torch.zeros_like(score))
    elif mode == "proportion":
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
