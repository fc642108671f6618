"""Trained checkpoints the export tests share (trained once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.runner import RunSettings, save, train_and_evaluate


@pytest.fixture(scope="session")
def checkpoints(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tinySNN network (100 neurons, 1,000 MNIST images) and a baseline one (100
    neurons, 300 images), FP32-trained, saved as `tinysnn train` saves them."""
    out: dict[str, Path] = {}
    for model, n_train in (("tinysnn", 1000), ("baseline", 300)):
        cfg = preset(model, 784, 100, "mnist")
        s = RunSettings(dataset="mnist", train_samples=n_train, test_samples=100, seed=1,
                        threads=2).validate()  # fmt: skip
        trained, ev = train_and_evaluate(cfg, QuantSpec(), s, str(data_dir))
        d = tmp_path_factory.mktemp(model)
        out[model] = save(d, trained, ev)[0]
    return out
