"""Train, assign, test and count one design point; save and reload checkpoints.

This layer joins the pure core to the data sets and files. It imports no CLI framework:
progress reaches it as a callback ``progress(phase, done, total)``.

Random streams: training draws from ``Generator(seed)``; evaluation (assignment pass and
test pass, including stochastic PTQ rounding) from ``Generator(seed + EVAL_SEED_OFFSET)``,
so that re-evaluating a checkpoint with the same settings reproduces its record exactly.

The package's face; its modules, one concern each:

- ``settings``: run settings and their checks, devices, the data split;
- ``training``: training one point or a design batch, ITQ's ranges, pruning;
- ``evaluation``: the formats, the quantized network, the assignment and test passes;
- ``record``: the record of a tested point (outcome, memory, energy, configuration);
- ``checkpoints``: saving and loading trained networks;
- ``point``: one design point from the data files (train and evaluate, or re-test);
- ``family``: the one seam for a model family (build, train, evaluate, checkpoint), with
  ``train`` and ``evaluate`` for a point of any family; ``diet``: the gradient-trained
  family behind it.
"""

from __future__ import annotations

# written by checkpoints and the CLI through the one file-writing module
from tinysnn_dse.files import prepare_out_dir, write_guard
from tinysnn_dse.runner.checkpoints import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    save,
    save_trained,
)
from tinysnn_dse.runner.evaluation import Deployed, Evaluation
from tinysnn_dse.runner.family import FAMILIES, Family, evaluate, family_of, robust_record, train
from tinysnn_dse.runner.point import evaluate_checkpoint, train_and_evaluate
from tinysnn_dse.runner.record import design_point_of, energy_fields
from tinysnn_dse.runner.settings import (
    EVAL_SEED_OFFSET,
    MAX_SEED,
    RANGE_SAMPLES,
    RANGES_SEED_OFFSET,
    Progress,
    RunSettings,
    Split,
    check_split,
    default_batch_size,
    make_split,
    no_progress,
    resolve_device,
)
from tinysnn_dse.runner.training import (
    Trained,
    itq_ranges,
    magnitude_pruned,
    observed_quant,
    train_batch,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "EVAL_SEED_OFFSET",
    "MAX_SEED",
    "RANGES_SEED_OFFSET",
    "RANGE_SAMPLES",
    "FAMILIES",
    "Deployed",
    "Family",
    "Evaluation",
    "Progress",
    "RunSettings",
    "Split",
    "Trained",
    "check_split",
    "default_batch_size",
    "design_point_of",
    "energy_fields",
    "evaluate",
    "evaluate_checkpoint",
    "family_of",
    "itq_ranges",
    "load_checkpoint",
    "magnitude_pruned",
    "make_split",
    "no_progress",
    "observed_quant",
    "prepare_out_dir",
    "resolve_device",
    "robust_record",
    "save",
    "save_trained",
    "train",
    "train_and_evaluate",
    "train_batch",
    "write_guard",
]
