"""Training policy: which trainings a search space's design points share, batch, cache
and lock, and making them (docs/architecture.md, "Exploration"). Plain: no Optuna, so it
runs and is tested without a study (tests/explore/test_policy.py).

- PTQ and FP32 points of one network share one FP32 training (``DesignPoint.training_key``);
  ITQ points with quantized Vmem or Vth take their ranges from it, so it comes first.
- ITQ points of one tinySNN-rule network train together in groups of at most the space's
  ``itq_batch`` (``SearchSpace.itq_group``: a design batch).
- Every training is cached in ``<artifacts>/trainings/<hash of key and budget>.pt`` and
  made under a file lock (``fcntl``) by the first process that needs it; the others wait
  and load it, on this machine or any that shares the folder. A cached training that no
  longer loads is renamed ``<name>.pt.corrupt-<time>`` and made again under the same lock,
  so the next run heals it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse import runner
from tinysnn_dse.core.params import QuantSpec, apply_overrides
from tinysnn_dse.errors import CheckpointError
from tinysnn_dse.explore.space import (
    DesignPoint,
    SearchSpace,
    canonical,
    needs_reference,
    quant_of,
    stage_before,
)
from tinysnn_dse.files import atomic_write
from tinysnn_dse.runner import floor


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Trainings:
    """The trainings of one space's points under one budget, made once and shared through
    the artifact folder; data and splits are loaded once."""

    def __init__(
        self,
        space: SearchSpace,
        settings: runner.RunSettings,
        artifacts: Path,
        data_dir: str | None = None,
        on_note: Callable[[str], None] | None = None,
    ) -> None:
        self.space, self.settings, self.artifacts, self.data_dir = (
            space, settings, Path(artifacts), data_dir
        )  # fmt: skip
        self.on_note = on_note  # told when a corrupt cached training is moved aside
        self._split: runner.Split | None = None
        self.data_source: str | None = None
        self._n_in = 0

    # -- data
    def split(self) -> tuple[runner.Split, int]:
        if self._split is None:
            ds = data_mod.load(self.settings.dataset, self.data_dir)
            self.data_source = ds.source
            self._split = runner.make_split(
                ds, self.settings, runner.resolve_device(self.settings.device)
            )
            self._n_in = ds.n_in
        return self._split, self._n_in

    # -- one design point
    def model_of(self, p: DesignPoint, n_in: int) -> Any:
        """``p``'s network: its family's model for this study's data set, then its params
        (:meth:`runner.Family.model`)."""
        split, _n = self.split()
        return runner.family_of(p.model).model(
            p.model, n_in, p.neurons, split.n_classes, self.settings.dataset, p.trained.model_params
        )

    def fp32_training(self, p: DesignPoint) -> tuple[runner.Trained, bool]:
        """The FP32 training of ``p``'s network, trained once per study and shared through
        the artifact folder; returns (trained, loaded from the cache)."""
        fp32_key = p.fp32.training_key  # == PTQ training_key
        return self._cached(fp32_key, lambda: self._train(p, QuantSpec(), self._stage_of(p)))

    def _stage_of(self, p: DesignPoint) -> runner.Trained | None:
        """The FP32 training ``p``'s starts from where it is a stage of a schedule (IIR),
        made or loaded first (:func:`space.stage_before`), else None."""
        before = stage_before(p.fp32)
        return None if before is None else self.fp32_training(before)[0]

    def _train(self, p: DesignPoint, quant: QuantSpec,
               reference: runner.Trained | None = None) -> runner.Trained:  # fmt: skip
        split, n_in = self.split()
        return runner.train(self.model_of(p, n_in), quant, self.settings, split,
                            reference=reference, cache=self.tensors)  # fmt: skip

    def tensors(self, key: str, make: Callable[[], dict[str, torch.Tensor]]
                ) -> dict[str, torch.Tensor]:  # fmt: skip
        """Tensors a family makes on the way and points share (a converted model's ANN),
        ``<artifacts>/trainings/<hash>.tensors.pt``: made once under its file lock by the
        first process that needs them, loaded (tensors only) by the others; a file that
        no longer loads is moved aside (as a training that no longer loads) and made again."""
        cache = self.training_file(key).with_suffix(".tensors.pt")
        with file_lock(cache.with_suffix(".lock")):
            if cache.is_file():
                try:
                    got = torch.load(cache, map_location="cpu", weights_only=True)
                    if isinstance(got, dict):
                        return got  # type: ignore[no-any-return]
                    why = "not a mapping of tensors"
                except Exception as e:  # torch raises many types for a damaged file
                    why = (
                        str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
                    )
                self._move_aside(cache, f"{cache}: not readable shared tensors ({why})")
            made = make()
            buf = io.BytesIO()
            torch.save(made, buf)
            with runner.write_guard(f"the shared tensors {cache}"):
                atomic_write(cache, buf.getvalue())
        return made

    def _cached(self, key: str, make: Callable[[], runner.Trained]) -> tuple[runner.Trained, bool]:
        """The training of ``key`` from the artifact folder, or made by ``make`` under its
        file lock and saved there; (trained, loaded from the cache)."""
        cache = self.training_file(key)
        with file_lock(cache.with_suffix(".lock")):
            t = self._load_cached(cache)
            if t is not None:
                return replace(t, settings=self.settings), True
            trained = make()
            runner.save_trained(cache, trained)
        return trained, False

    def train_point(self, p: DesignPoint) -> tuple[runner.Trained, QuantSpec, bool]:
        """Train ``p`` (or load the FP32 training it shares); (trained, quant, shared).

        ITQ points with quantized Vmem or Vth take their integer bits from the range the
        FP32 training of the same network reached (paper section 2.3), so the shared
        FP32 training is made (or loaded) first.
        """
        trained, quant, shared = self._training_of(p)
        if p.inference_params:  # inference-only axes: set on the training they share
            model = apply_overrides(trained.model, p.inference_params)
            trained = replace(trained, model=model)
        return trained, quant, shared

    def _training_of(self, p: DesignPoint) -> tuple[runner.Trained, QuantSpec, bool]:
        if p.scheme == "itq" and not p.is_fp32:
            group = self.space.itq_group(p)
            if len(group) > 1:
                return self.batched_training(p, group), self.itq_quant(p), False
            quant = quant_of(p)
            # the FP32 training of the same network, where the ITQ training starts from it
            # or takes its ranges from it (made or loaded first)
            ref = self.fp32_training(p)[0] if needs_reference(p) else None
            trained = self._cached(p.training_key, lambda: self._train(p, quant, ref))[0]
            return trained, trained.quant, False
        trained, shared = self.fp32_training(p)
        return trained, quant_of(p), shared

    def itq_quant(self, p: DesignPoint) -> QuantSpec:
        """``p``'s ITQ formats; quantized Vmem or Vth take their integer bits from the range
        the FP32 training of the same network reached (made or loaded first)."""
        quant = quant_of(p)
        if quant.needs_ranges:
            ref, _ = self.fp32_training(p)
            split, _n = self.split()
            what = f"the FP32 training of the same network ({ref.train_images} images)"
            quant = runner.observed_quant(
                quant, ref.net, ref.model, split, self.settings.seed, what
            )
        return quant

    def training_file(self, key: str) -> Path:
        budget = self.space.budget_dict()
        name = hashlib.sha256(json.dumps([key, budget]).encode()).hexdigest()[:16]
        return Path(self.artifacts) / "trainings" / f"{name}.pt"

    def batched_training(self, p: DesignPoint, group: tuple[DesignPoint, ...]) -> runner.Trained:
        """``p``'s ITQ training, made together with the rest of its group
        (:func:`runner.train_batch`) by the first worker that needs any of them, under the
        group's file lock, and shared through the artifact folder."""
        cache = self.training_file(p.key)
        group_lock = self.training_file("group:" + ",".join(q.key for q in group))
        with file_lock(group_lock.with_suffix(".lock")):
            t = self._load_cached(cache)
            if t is None:
                todo = [q for q in group if not self.training_file(q.key).is_file()]
                quants = [self.itq_quant(q) for q in todo]
                split, n_in = self.split()
                model = self.model_of(p, n_in)
                for q, t in zip(todo, runner.train_batch(model, quants, self.settings, split),
                                strict=True):  # fmt: skip
                    runner.save_trained(self.training_file(q.key), t)
                t = runner.load_checkpoint(cache, self.settings.device)
        return replace(t, settings=self.settings)

    def _load_cached(self, cache: Path) -> runner.Trained | None:
        """The cached training in ``cache`` (its lock held), or None where there is none or
        it no longer loads: then it is moved aside (``<name>.corrupt-<time>``, kept for a
        look) so that the caller makes it again, rather than failing every point that
        needs it on every run."""
        if not cache.is_file():
            return None
        try:
            return runner.load_checkpoint(cache, self.settings.device)
        except CheckpointError as e:
            self._move_aside(cache, str(e))
            return None

    def _move_aside(self, cache: Path, why: str) -> None:
        """Rename a cached file that no longer loads to ``<name>.corrupt-<time>`` (kept for
        a look) and say so, so that the caller makes it again."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = cache.with_name(f"{cache.name}.corrupt-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = cache.with_name(f"{cache.name}.corrupt-{stamp}-{n}")
        with runner.write_guard(f"the training cache {cache}"):
            os.replace(cache, aside)
        if self.on_note is not None:
            self.on_note(f"{why}; moved it aside to {aside.name} and making it again")


def resolve_floors(
    space: SearchSpace, trainings: Trainings, on_note: Callable[[str], None] | None = None
) -> SearchSpace:
    """``space`` with every ``vmem_floor: auto`` point at the floor chosen for its network
    on the training holdout (:func:`runner.floor.choose`), before the study is written, so
    that keys, the queue and the samplers see numbers; each network's choice is made once
    and kept in the artifact folder (a resumed study finds it), and the records of the
    points it set say how (``SearchSpace.floor_auto``). A point whose floor comes out as
    another point's is that point."""
    if not any(p.vmem_floor == "auto" for p in space.points):
        return space
    choices: dict[str, floor.FloorChoice] = {}
    points: dict[str, DesignPoint] = {}
    notes: dict[str, str] = {}
    for p in space.points:
        if p.vmem_floor != "auto":
            points.setdefault(p.key, p)
            continue
        net = canonical(replace(p.fp32, vmem_floor=0))  # the network whose floor is chosen
        key = f"floor-auto:{net.training_key}"
        if key not in choices:
            split, n_in = trainings.split()
            model = trainings.model_of(net, n_in)

            def make(m: Any = model, s: runner.Split = split, name: str = net.key
                     ) -> dict[str, torch.Tensor]:  # fmt: skip
                if on_note:  # only where it is not found in the artifact folder
                    on_note(f"choosing the membrane floor of {name} on the training holdout "
                            f"({len(floor.CANDIDATES_MV) + 1} short FP32 trainings)")  # fmt: skip
                return floor.choose(m, trainings.settings, s).tensors()

            got = trainings.tensors(key, make)
            choices[key] = c = floor.FloorChoice.from_tensors(got)
            if on_note:
                on_note(f"membrane floor of {net.key}: {c.chosen} mV below rest"
                        if c.chosen else f"membrane floor of {net.key}: none")  # fmt: skip
        q = canonical(replace(p, vmem_floor=choices[key].chosen))
        points.setdefault(q.key, q)
        notes[q.key] = json.dumps(choices[key].to_dict())
    return replace(space, points=tuple(points.values()), floor_auto=tuple(sorted(notes.items())))
