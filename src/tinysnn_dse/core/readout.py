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

Scores are computed in integers, with each proportion held as a Q1.15 code
(:data:`PROPORTION_BITS`), as a deployed classifier stores it: the exported C computes
the same predictions (:func:`predict`).

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


#: Fractional bits of a proportion in the readout table (Q1.15 in a 16-bit word: a
#: proportion of 1 is 2**15), as a deployed classifier stores it (``tinysnn export``).
PROPORTION_BITS = 15


def proportion_codes(proportions: Tensor) -> Tensor:
    """Proportions [N, C] in [0, 1] as Q1.15 codes (int64), rounded to nearest (a tie
    up), exactly: ``floor(p * 2**15 + 1/2)``."""
    y = proportions.to(torch.float64) * 2.0**PROPORTION_BITS  # exact: a power of two
    fl = torch.floor(y)
    return (fl + (y - fl >= 0.5).to(fl.dtype)).to(torch.int64)


def class_weights(assignment: Assignment, n_classes: int, mode: str) -> tuple[Tensor, Tensor]:
    """The integer readout table of ``mode``: weights [N, C] (int64) and the divisor of
    each class's score [C] (int64, 1 for none): ``all`` 1 for each neuron's assigned class
    over n_k, ``proportion`` its Q1.15 proportion for that class over n_k, ``soft-vote``
    every Q1.15 proportion. A class no neuron is assigned to scores 0."""
    labels = assignment.labels
    onehot = torch.zeros(labels.shape[0], n_classes, dtype=torch.int64)
    valid = labels >= 0
    onehot[valid.nonzero().flatten(), labels[valid]] = 1
    if mode == "soft-vote":
        return proportion_codes(assignment.proportions), torch.ones(n_classes, dtype=torch.int64)
    if mode not in ("all", "proportion"):
        raise ValueError(f"unknown readout {mode!r}")
    w = onehot if mode == "all" else onehot * proportion_codes(assignment.proportions)
    return w, onehot.sum(0).clamp_min(1)


def predict(counts: Tensor, assignment: Assignment, n_classes: int, mode: str = "all") -> Tensor:
    """Predicted class [S] (long) for ``counts`` [S, N]; -1 where there is no evidence
    (a zero score for every class). Ties go to the lowest class.

    Computed in integers, as a deployed classifier computes it (the exported C does the
    same): the scores ``sum_j w_jk c_j`` over the table of :func:`class_weights` (Q1.15
    proportions), compared as exact fractions ``num_k / d_k`` by cross multiplication."""
    w, d = class_weights(assignment, n_classes, mode)
    # spike counts times Q1.15 codes over a few thousand neurons: exact in float64
    num = (counts.to(torch.float64) @ w.to(torch.float64)).to(torch.int64)  # [S, C]
    best_n, best_d = num[:, 0].clone(), torch.full_like(num[:, 0], int(d[0]))
    pred = torch.zeros(num.shape[0], dtype=torch.long)
    for k in range(1, n_classes):
        better = num[:, k] * best_d > best_n * int(d[k])
        best_n = torch.where(better, num[:, k], best_n)
        best_d = torch.where(better, torch.full_like(best_d, int(d[k])), best_d)
        pred = torch.where(better, torch.full_like(pred, k), pred)
    return torch.where(best_n > 0, pred, torch.full_like(pred, -1))


def accuracy(pred: Tensor, labels: Tensor) -> float:
    """Fraction of ``pred`` equal to ``labels`` (0.0 for an empty set)."""
    if labels.numel() == 0:
        return 0.0
    return float((pred == labels.long()).to(torch.float64).mean())
