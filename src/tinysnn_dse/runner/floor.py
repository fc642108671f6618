"""Choosing the STDP family's membrane floor on the training holdout (issue 28,
``vmem_floor: auto``; docs/model.md, "Membrane floor").

The rule: train the network at FP32 without a floor and with each candidate floor
(:data:`CANDIDATES_MV` below rest) on the first training images, test each on a holdout
of the last training images (never the test set), and take the candidate closest to rest
whose holdout accuracy is within :data:`TOLERANCE` of the unfloored network's; none (0)
where no candidate is. A floor close to rest leaves the Vmem format the fewest integer
bits to cover (its range is [floor, the highest potential]), which is what the floor is
for. The choice is made on a reduced budget (:data:`AUTO_TRAIN` training images, a
holdout of at most :data:`AUTO_HOLDOUT`), and the point then trains with the chosen floor
on its own, whole budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tinysnn_dse.core.params import ModelConfig, QuantSpec
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.runner import evaluation, training
from tinysnn_dse.runner.settings import Progress, RunSettings, Split, no_progress

#: the candidate floors, mV below rest, nearest to rest first
CANDIDATES_MV = (4, 8, 16, 32, 64, 128)
#: how much holdout accuracy (a fraction) a floor may cost against none: 0.1 points
TOLERANCE = 0.001
#: training images of each candidate's training (the first ones; at most)
AUTO_TRAIN = 10_000
#: holdout images (the last training images; at most, and at most a fifth of them)
AUTO_HOLDOUT = 5_000


@dataclass(frozen=True)
class FloorChoice:
    """The chosen floor (mV below rest; 0: none) and every candidate's holdout accuracy."""

    chosen: int
    accuracy: Mapping[int, float]  # candidate (0: no floor) -> holdout accuracy
    train_images: int
    holdout: str  # which training images were held out
    tolerance: float = TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen_mv": self.chosen,
            "rule": f"the candidate nearest rest within {self.tolerance * 100:g} points of "
            "the unfloored network's holdout accuracy",
            "holdout_accuracy": {str(k): v for k, v in self.accuracy.items()},
            "train_images": self.train_images,
            "holdout": self.holdout,
        }

    def tensors(self) -> dict[str, torch.Tensor]:
        """The choice as tensors (explore's shared-tensors cache)."""
        keys = sorted(self.accuracy)
        return {
            "chosen": torch.tensor(self.chosen),
            "candidates": torch.tensor(keys),
            "accuracy": torch.tensor([self.accuracy[k] for k in keys], dtype=torch.float64),
            "train_images": torch.tensor(self.train_images),
            "holdout": torch.tensor(list(self.holdout.encode())),
            "tolerance": torch.tensor(self.tolerance, dtype=torch.float64),
        }

    @staticmethod
    def from_tensors(t: Mapping[str, torch.Tensor]) -> FloorChoice:
        return FloorChoice(
            chosen=int(t["chosen"]),
            accuracy={
                int(k): float(a) for k, a in zip(t["candidates"], t["accuracy"], strict=True)
            },  # fmt: skip
            train_images=int(t["train_images"]),
            holdout=bytes(t["holdout"].tolist()).decode(),
            tolerance=float(t["tolerance"]),
        )


def holdout_split(split: Split) -> tuple[Split, str]:
    """The candidates' split: the first (at most :data:`AUTO_TRAIN`) training images to
    train and assign labels on, the last (at most :data:`AUTO_HOLDOUT`, at most a fifth)
    to test on; disjoint."""
    n = int(split.train_x.shape[0])
    n_hold = min(AUTO_HOLDOUT, n // 5)
    if n_hold < 1:
        raise ConfigError(f"vmem_floor auto needs at least 5 training images, got {n}")
    n_train = min(AUTO_TRAIN, n - n_hold)
    where = f"train[{n - n_hold}:{n}] (holdout)"
    tx, ty = split.train_x[:n_train], split.train_y[:n_train]
    sub = Split(tx, ty, tx, ty, split.train_x[n - n_hold :], split.train_y[n - n_hold :], where,
                split.n_classes)  # fmt: skip
    return sub, where


def choose(
    model: ModelConfig,
    settings: RunSettings,
    split: Split,
    candidates: Sequence[int] = CANDIDATES_MV,
    tolerance: float = TOLERANCE,
    progress: Progress = no_progress,
) -> FloorChoice:
    """The floor of ``model`` (its own floor ignored) by the rule of this module."""
    if not candidates or any(int(c) < 1 for c in candidates):
        raise ConfigError("floor candidates must be positive mV below rest")
    sub, where = holdout_split(split)
    acc: dict[int, float] = {}
    for k, f in enumerate((0, *sorted(int(c) for c in candidates))):
        m = dataclasses.replace(model, exc=dataclasses.replace(model.exc, vmem_floor_mv=float(f)))
        t = training.train(m, QuantSpec(), settings, sub)
        acc[f] = evaluation.evaluate(t, QuantSpec(), sub).record.accuracy
        progress("floor", k + 1, len(candidates) + 1)
    return FloorChoice(pick(acc, tolerance), acc, int(sub.train_x.shape[0]), where, tolerance)


def pick(accuracy: Mapping[int, float], tolerance: float = TOLERANCE) -> int:
    """The rule: of the candidates (mV below rest, 0: none) the one nearest rest whose
    accuracy is at least the unfloored one's less ``tolerance``; 0 where none is."""
    base = accuracy[0]
    ok = [f for f in sorted(accuracy) if f > 0 and accuracy[f] >= base - tolerance - 1e-12]
    return ok[0] if ok else 0
