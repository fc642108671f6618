"""End to end on real MNIST (../shared/data or $TINYSNN_DATA_DIR) on a small budget.

tinySNN, 100 excitatory neurons, default parameters, the first 1,000 training images
(one pass, labels assigned on them), tested on the first 1,000 test images. Chance is
10 %. Measured on the reference machine with the current defaults (theta_plus 2 mV,
proportion readout): seeds 0-3 gave 65.2 %, 65.7 %, 66.4 %, 65.4 % (with the all-activity
readout: 63.8 %, 64.3 %, 61.8 %, 61.2 %). The floor, 50 %, is five times chance and 15
points under the worst seed: it fails a broken learner, not an unlucky seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinysnn_dse.cli import main

FLOOR = 0.50


@pytest.mark.slow
def test_mnist_small_budget_clears_floor(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--dataset", "mnist", "--data-dir", str(data_dir), "--neurons", "100",
            "--train-samples", "1000", "--test-samples", "1000", "--seed", "0",
            "--device", "cpu", "--out", str(tmp_path / "m"), "--json"]  # fmt: skip
    with pytest.raises(SystemExit) as e:
        main(args)
    out, err = capsys.readouterr()
    assert e.value.code == 0, err
    rec = json.loads(out)
    assert rec["eval_set"] == "test[0:1000]" and rec["test_samples"] == 1000
    assert rec["config"]["run"]["data_source"].endswith("mnist")
    assert rec["accuracy"] >= FLOOR, rec["accuracy"]
