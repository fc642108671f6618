"""One design point from the data files: train and evaluate it, or re-test a saved one."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse.core.params import QuantSpec, validate_quant
from tinysnn_dse.core.sim import Capture
from tinysnn_dse.runner.evaluation import Evaluation
from tinysnn_dse.runner.family import evaluate, robust_record, train
from tinysnn_dse.runner.settings import (
    Progress,
    RunSettings,
    make_split,
    no_progress,
    resolve_device,
)
from tinysnn_dse.runner.training import Trained


def train_and_evaluate(
    model: Any,
    quant: QuantSpec,
    settings: RunSettings,
    data_dir: str | None = None,
    progress: Progress = no_progress,
) -> tuple[Trained, Evaluation]:
    """The whole design point: load data, train, evaluate; returns (trained, evaluation)."""
    validate_quant(quant)
    settings.validate()
    device = resolve_device(settings.device)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    ds = data_mod.load(settings.dataset, data_dir)
    if ds.n_in != model.n_in:
        if hasattr(model, "n_exc"):
            model = dataclasses.replace(model, n_in=ds.n_in)
        else:  # the gradient-trained family's network holds its sizes
            net = dataclasses.replace(model.net, n_in=ds.n_in, n_out=ds.n_classes)
            model = dataclasses.replace(model, net=net)
    split = make_split(ds, settings, device)
    trained = dataclasses.replace(train(model, quant, settings, split, progress),
                                  data_source=ds.source)  # fmt: skip
    return trained, evaluate(trained, quant, split, progress)


def evaluate_checkpoint(
    trained: Trained,
    quant: QuantSpec | None,
    data_dir: str | None = None,
    test_samples: int | None = None,
    device: str = "cpu",
    progress: Progress = no_progress,
    capture: Capture | None = None,
    at_most: bool = False,
    robustness: Any = None,
) -> Evaluation:
    """Re-test a saved model, optionally under a PTQ setting, without retraining
    (``capture``: as :func:`evaluate`; ``at_most``: ``test_samples`` or as many as the
    evaluation set has, if fewer; ``robustness``: a :class:`runner.robustness.Robustness`
    whose adversarial accuracies the record gains)."""
    if quant is None:
        quant = trained.quant
    validate_quant(quant)  # PTQ on an ITQ-trained model re-applies the new formats
    s = trained.settings
    if data_dir is None and trained.data_source:  # where the model was trained from
        root = Path(trained.data_source).parent
        data_dir = str(root) if root.is_dir() else None
    ds = data_mod.load(s.dataset, data_dir)
    if test_samples is not None:
        if at_most:
            test_samples = min(test_samples, s.holdout or len(ds.test_images))
        s = dataclasses.replace(s, test_samples=test_samples)
    s = dataclasses.replace(s, device=device).validate()
    trained = dataclasses.replace(trained, settings=s)
    split = make_split(ds, s, resolve_device(device))
    ev = evaluate(trained, quant, split, progress, capture)
    if robustness is not None:  # adversarial accuracy (runner.robustness)
        ev = ev._replace(record=robust_record(trained, quant, ev, split, robustness))
    return ev
