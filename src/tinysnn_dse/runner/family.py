"""The one seam for a model family (docs/architecture.md, "Model families"): what explore,
select, report, export and the CLI need of a family, behind one interface, so that they do
not branch on which family a design point belongs to.

A family provides:

- ``model``: the model of a design point (its name, input and hidden width, classes, data
  set and model parameters), checked, or a one-line ConfigError;
- ``train``: one training (FP32, or the design point's ITQ), given the FP32 training of the
  same network where the caller has it (ITQ takes its ranges, and the gradient-trained
  family its starting point, from it), and a cache of what a family makes on the way and
  points share (a converted model's ANN);
- ``evaluate``: the test of a trained point at a design point's quantization, with its
  record;
- ``predictor``: the tested design's labels of new images (an attack's), on the datapath
  it was tested on;
- ``attackable``: its differentiable forward pass for a white-box attack, or None where
  the family has no gradient (STDP);
- ``payload`` / ``restore``: its network in a checkpoint (tensors and JSON only);
- ``batchable``: whether ITQ points of one network may train together (a design batch);
- ``stage_before``: the axes of the FP32 training a training starts from where it is a
  stage of a schedule (IIR), so that explore shares every stage between the points that
  pass through it.

:func:`family_of` finds a model's family by its name (``axes.FAMILIES``). The STDP
family's pieces are the runner's modules (``training``, ``evaluation``); the
gradient-trained family's are ``runner.diet`` over ``core.diet``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse.axes import FAMILY_OF
from tinysnn_dse.core import diet as diet_core
from tinysnn_dse.core import readout
from tinysnn_dse.core.params import QuantSpec, apply_overrides, preset
from tinysnn_dse.core.sim import Net
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.runner import diet as diet_runner
from tinysnn_dse.runner import evaluation, training
from tinysnn_dse.runner.settings import (
    EVAL_SEED_OFFSET,
    Progress,
    RunSettings,
    Split,
    no_progress,
)
from tinysnn_dse.runner.training import Trained


class ShapeError(ValueError):
    """A checkpoint's tensors do not match its model's sizes."""


class Family(Protocol):
    name: str

    def model(self, model: str, n_in: int, neurons: int, n_classes: int,
              dataset: str | None, params: Mapping[str, Any]) -> Any: ...  # fmt: skip

    def train(self, model: Any, quant: QuantSpec, settings: RunSettings, split: Split,
              progress: Progress = no_progress, reference: Trained | None = None,
              cache: Any = None) -> Trained: ...  # fmt: skip

    def evaluate(self, trained: Trained, quant: QuantSpec, split: Split,
                 progress: Progress = no_progress,
                 capture: Any = None) -> evaluation.Evaluation: ...  # fmt: skip

    def predictor(self, trained: Trained, quant: QuantSpec, ev: evaluation.Evaluation,
                  split: Split) -> Callable[[torch.Tensor], torch.Tensor]: ...  # fmt: skip

    def attackable(self, trained: Trained, quant: QuantSpec, split: Split,
                   generator: torch.Generator
                   ) -> Callable[[torch.Tensor], torch.Tensor] | None: ...  # fmt: skip

    def payload(self, trained: Trained) -> dict[str, Any]: ...

    def restore(self, p: Mapping[str, Any], device: torch.device) -> tuple[Any, Any]: ...

    def batchable(self, model: Any) -> bool: ...

    def stage_before(self, model: Any) -> dict[str, Any] | None: ...


class STDP:
    """The STDP family: the Diehl & Cook baseline, SL-STDP and tinySNN (method.md 2-4b)."""

    name = "stdp"

    def model(self, model: str, n_in: int, neurons: int, n_classes: int,
              dataset: str | None, params: Mapping[str, Any]) -> Any:  # fmt: skip
        return apply_overrides(preset(model, n_in, neurons, dataset), dict(params))

    def train(self, model: Any, quant: QuantSpec, settings: RunSettings, split: Split,
              progress: Progress = no_progress, reference: Trained | None = None,
              cache: Any = None) -> Trained:  # fmt: skip
        if quant.scheme == "itq" and quant.needs_ranges and reference is not None:
            what = f"the FP32 training of the same network ({reference.train_images} images)"
            quant = training.observed_quant(quant, reference.net, model, split, settings.seed,
                                            what)  # fmt: skip
        return training.train(model, quant, settings, split, progress)

    def evaluate(self, trained: Trained, quant: QuantSpec, split: Split,
                 progress: Progress = no_progress,
                 capture: Any = None) -> evaluation.Evaluation:  # fmt: skip
        return evaluation.evaluate(trained, quant, split, progress, capture)

    def predictor(self, trained: Trained, quant: QuantSpec, ev: evaluation.Evaluation,
                  split: Split) -> Callable[[torch.Tensor], torch.Tensor]:  # fmt: skip
        """The tested network (as deployed, with the labels it was assigned) on new
        images, from a fresh evaluation generator."""
        dep, assignment, s = ev.deployed, ev.assignment, trained.settings
        if dep is None or assignment is None:
            raise ConfigError("the STDP family predicts from a tested network and its labels")

        def predict(x: torch.Tensor) -> torch.Tensor:
            gen = torch.Generator(device=x.device).manual_seed(s.seed + EVAL_SEED_OFFSET)
            run = evaluation.Inference(dep.net, dep.model, dep.qz, gen, s, no_progress)
            counts = run.run(x, "adversarial").counts
            return readout.predict(counts, assignment, split.n_classes, dep.model.readout)

        return predict

    def attackable(self, trained: Trained, quant: QuantSpec, split: Split,
                   generator: torch.Generator
                   ) -> Callable[[torch.Tensor], torch.Tensor] | None:  # fmt: skip
        """None: STDP is not a gradient, so there is no white box (transfer only)."""
        return None

    def payload(self, trained: Trained) -> dict[str, Any]:
        net = trained.net
        return {
            "w": net.w.detach().cpu(),
            "theta": net.theta.detach().cpu(),
            **({} if net.keep is None else {"keep": net.keep.detach().cpu()}),
        }

    def restore(self, p: Mapping[str, Any], device: torch.device) -> tuple[Any, Any]:
        from tinysnn_dse.core.params import model_from_dict

        model = model_from_dict(json.loads(p["model_json"]))
        keep = p.get("keep")
        if keep is not None and tuple(keep.shape) != tuple(p["w"].shape):
            raise ValueError("pruning mask shape differs from the weights'")
        net = Net(w=p["w"].to(device), theta=p["theta"].to(device),
                  keep=None if keep is None else keep.to(device).bool())  # fmt: skip
        if tuple(net.w.shape) != (model.n_in, model.n_exc):
            raise ShapeError(f"weight shape {tuple(net.w.shape)} does not match config")
        return net, model

    def batchable(self, model: Any) -> bool:
        return bool(model.rule == "tinysnn")

    def stage_before(self, model: Any) -> dict[str, Any] | None:
        return None


class Diet:
    """The gradient-trained family (method.md 4c; DIET-SNN): surrogate-gradient LIF/IF
    networks of one or two hidden layers, read out by the output layer's membrane."""

    name = "diet"

    def model(self, model: str, n_in: int, neurons: int, n_classes: int,
              dataset: str | None, params: Mapping[str, Any]) -> Any:  # fmt: skip
        """The family's model; on an event data set its input is the data's frames
        (``Encoding.EVENTS``: the axis' ``direct`` input, the data as it is at every
        step), its steps a multiple or divisor of the data's time bins, and it starts from
        random weights (a conversion's ANN takes images)."""
        bins = data_mod.time_bins_of(dataset)
        if bins is not None and params.get("encoding", "direct") == "direct":
            params = {**params, "encoding": diet_core.Encoding.EVENTS.value}
        m = diet_core.model_for(n_in, neurons, n_classes, dataset, params)
        if dataset is not None:
            for t in m.stages:  # an IIR schedule's every stage
                diet_core.check_bins(t, bins, m.net.encoding)
        if bins is not None and m.init == "ann":
            raise ConfigError("init ann (conversion) trains an ANN on images; an event data "
                              "set's designs start from random weights")  # fmt: skip
        return m

    def train(self, model: Any, quant: QuantSpec, settings: RunSettings, split: Split,
              progress: Progress = no_progress, reference: Trained | None = None,
              cache: Any = None) -> Trained:  # fmt: skip
        return diet_runner.train(model, quant, settings, split.frames(), progress, reference, cache)

    def evaluate(self, trained: Trained, quant: QuantSpec, split: Split,
                 progress: Progress = no_progress,
                 capture: Any = None) -> evaluation.Evaluation:  # fmt: skip
        return diet_runner.evaluate(trained, quant, split.frames(), progress, capture)

    def predictor(self, trained: Trained, quant: QuantSpec, ev: evaluation.Evaluation,
                  split: Split) -> Callable[[torch.Tensor], torch.Tensor]:  # fmt: skip
        return diet_runner.predictor(trained, quant, split.frames())

    def attackable(self, trained: Trained, quant: QuantSpec, split: Split,
                   generator: torch.Generator
                   ) -> Callable[[torch.Tensor], torch.Tensor] | None:  # fmt: skip
        return diet_runner.attackable(trained, quant, split.frames(), generator)

    def payload(self, trained: Trained) -> dict[str, Any]:
        net: diet_core.DietNet = trained.net  # type: ignore[assignment]
        out: dict[str, Any] = {f"w{k}": w.detach().cpu() for k, w in enumerate(net.w)}
        out["leak"] = torch.stack([x.detach().cpu() for x in net.leak])
        out["theta"] = torch.stack([x.detach().cpu() for x in net.theta])
        if trained.ranges is not None:
            r = trained.ranges
            out["ranges_json"] = json.dumps({"w": r.w, "vmem": r.vmem, "vth": r.vth})
        return out

    def restore(self, p: Mapping[str, Any], device: torch.device) -> tuple[Any, Any]:
        model = diet_core.DietModel.from_dict(json.loads(p["model_json"]))
        c = model.net
        depth = len(c.hidden)
        w = [p[f"w{k}"].to(device) for k in range(depth + 1)]
        for k, (a, b) in enumerate(zip(c.sizes[:-1], c.sizes[1:], strict=True)):
            if tuple(w[k].shape) != (a, b):
                raise ShapeError(f"weight {k} shape {tuple(w[k].shape)} does not match config")
        leak, theta = p["leak"].to(device), p["theta"].to(device)
        if tuple(leak.shape) != (depth,) or tuple(theta.shape) != (depth,):
            raise ShapeError("leak or threshold count does not match the depth")
        for x in w:
            x.requires_grad_(True)
        net = diet_core.DietNet(
            w,
            [leak[k].clone().requires_grad_(c.trainable.leak) for k in range(depth)],
            [theta[k].clone().requires_grad_(c.trainable.threshold) for k in range(depth)],
            c,
        )
        return net, model

    def batchable(self, model: Any) -> bool:
        return False

    def stage_before(self, model: Any) -> dict[str, Any] | None:
        """The axes of the training an IIR stage starts from (``DietModel.stage_before``)."""
        before = model.stage_before()
        if before is None:
            return None
        return {"timesteps": before.net.timesteps, "schedule": before.schedule}


FAMILIES: dict[str, Family] = {"stdp": STDP(), "diet": Diet()}


def family_of(model: Any) -> Family:
    """The family of a model name (``axes.MODELS``) or of a model object (its ``model``
    name); a one-line ConfigError for an unknown name."""
    name = model if isinstance(model, str) else model.model
    if name not in FAMILY_OF:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(FAMILY_OF)}")
    return FAMILIES[FAMILY_OF[name]]


def ranges_of(p: Mapping[str, Any]) -> Any:
    """The ranges a checkpoint of the gradient-trained family stores, or None."""
    raw = p.get("ranges_json")
    if not raw:
        return None
    d = json.loads(raw)
    return diet_core.Ranges(tuple(d["w"]), tuple(d["vmem"]), tuple(d["vth"]))


def train(
    model: Any,
    quant: QuantSpec,
    settings: RunSettings,
    split: Split,
    progress: Progress = no_progress,
    reference: Trained | None = None,
    cache: Any = None,
) -> Trained:
    """Train a design point of any family (:meth:`Family.train`); ``cache(key, make)``:
    where the caller shares tensors a family makes on the way (a converted model's
    ANN), else None."""
    return family_of(model).train(model, quant, settings, split, progress, reference, cache)


def evaluate(
    trained: Trained,
    quant: QuantSpec,
    split: Split,
    progress: Progress = no_progress,
    capture: Any = None,
) -> evaluation.Evaluation:
    """Test a trained point of any family (:meth:`Family.evaluate`)."""
    return family_of(trained.model).evaluate(trained, quant, split, progress, capture)


def robust_record(
    trained: Trained,
    quant: QuantSpec,
    ev: evaluation.Evaluation,
    split: Split,
    spec: Any,
    cache: Any = None,
) -> Any:
    """The tested point's record with its adversarial accuracies
    (:mod:`runner.robustness`), for a point of any family."""
    from tinysnn_dse.runner import robustness as rb

    if split.event_frames is not None:
        raise ConfigError("adversarial attacks perturb images; an event data set's samples "
                          "are events (robustness is not measured on them)")  # fmt: skip
    fam = family_of(trained.model)
    s = trained.settings
    g = torch.Generator(device=split.eval_x.device).manual_seed(s.seed + rb.ROBUST_SEED_OFFSET)
    white = fam.attackable(trained, quant, split, g) if "white" in spec.threats else None
    acc, detail = rb.evaluate(fam.predictor(trained, quant, ev, split), white, s, split, spec,
                              cache)  # fmt: skip
    return rb.with_robustness(ev.record, acc, detail)
