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
