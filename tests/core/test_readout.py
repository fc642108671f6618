from __future__ import annotations

import torch

from tinysnn_dse.core.readout import accuracy, assign_labels, predict


def test_assignment_and_all_activity_prediction() -> None:
    # 4 neurons, 3 classes; neuron 3 never fires -> unassigned
    counts = torch.tensor(
        [[5, 0, 1, 0], [4, 1, 0, 0], [0, 6, 0, 0], [1, 0, 3, 0], [0, 0, 4, 0]], dtype=torch.float32
    )
    labels = torch.tensor([0, 0, 1, 2, 2])
    a = assign_labels(counts, labels, 3)
    assert a.labels.tolist() == [0, 1, 2, -1]
    test = torch.tensor(
        [[3, 0, 0, 9], [0, 0, 2, 0], [0, 0, 0, 5], [1, 1, 0, 0]], dtype=torch.float32
    )
    pred = predict(test, a, 3, "all")
    # sample 3: no assigned neuron fired -> -1 (an error); sample 4: a tie -> lowest class
    assert pred.tolist() == [0, 2, -1, 0]
    assert accuracy(pred, torch.tensor([0, 2, 1, 1])) == 0.5
    prop = predict(test, a, 3, "proportion")
    assert prop[:3].tolist() == [0, 2, -1]


def test_accuracy_empty() -> None:
    assert accuracy(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)) == 0.0


def test_proportion_weighting_is_bindsnet_formula_by_hand() -> None:
    """BindsNET's proportion weighting (bindsnet/evaluation/evaluation.py): the score of
    class k sums, over the neurons assigned to k only, count x proportion for k, divided
    by their number. A case worked by hand where it, all-activity and soft-vote (every
    neuron voting for every class) disagree.

    Assignment set: neuron 0 fires 6 for class 0 and 4 for class 1 (proportions 0.6,
    0.4: assigned 0); neuron 1 fires 0 and 10 (0, 1: assigned 1); neuron 2 fires 9 and 1
    (0.9, 0.1: assigned 0). Test counts c = (10, 4, 0):
      all:        class 0 (10 + 0) / 2 = 5,            class 1 4 / 1 = 4           -> 0
      proportion: class 0 (0.6*10 + 0.9*0) / 2 = 3,    class 1 (1.0*4) / 1 = 4     -> 1
      soft-vote:  class 0 0.6*10 + 0*4 + 0.9*0 = 6,    class 1 0.4*10 + 1*4 + 0 = 8 -> 1
    and for c = (10, 3, 0): proportion 3 vs 3 (a tie: the lower class, 0), soft-vote 6 vs 7.
    """
    counts = torch.tensor([[6.0, 0.0, 9.0], [4.0, 10.0, 1.0]])  # one sample per class
    a = assign_labels(counts, torch.tensor([0, 1]), 2)
    assert a.labels.tolist() == [0, 1, 0]
    torch.testing.assert_close(
        a.proportions, torch.tensor([[0.6, 0.4], [0.0, 1.0], [0.9, 0.1]], dtype=torch.float64)
    )
    test = torch.tensor([[10.0, 4.0, 0.0], [10.0, 3.0, 0.0]])
    assert predict(test, a, 2, "all").tolist() == [0, 0]
    assert predict(test, a, 2, "proportion").tolist() == [1, 0]
    assert predict(test, a, 2, "soft-vote").tolist() == [1, 1]
