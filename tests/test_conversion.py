"""Hybrid ANN-to-SNN conversion for the gradient-trained family (issue 25 item 1): an ANN
of the same topology, its weights copied, each layer's threshold from the stated
percentile of its recorded pre-activations times a scale, then SNN training (STDB's
surrogate, or any other); the ANN shared by every point that converts the same
topology."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse import runner
from tinysnn_dse.core import diet
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.explore.policy import Trainings
from tinysnn_dse.explore.space import parse_space

SETTINGS = runner.RunSettings(dataset="digits", train_samples=600, test_samples=200,
                              device="cpu").validate()  # fmt: skip


@pytest.fixture(scope="module")
def split() -> runner.Split:
    return runner.make_split(data_mod.load("digits"), SETTINGS, torch.device("cpu"))


def test_thresholds_are_the_stated_percentile_of_the_pre_activations() -> None:
    """Two hidden layers: theta_0 = s * P(z_0), theta_1 = s * P(z_1) / P(z_0), with P the
    percentile over every neuron and image (numpy's, by hand here)."""
    g = torch.Generator().manual_seed(0)
    cfg = diet.DietConfig(n_in=6, hidden=(5, 4), n_out=3)
    w = diet.init_net(cfg, g).w
    x = torch.rand(50, 6, generator=g)
    z0 = (x @ w[0]).detach()
    z1 = (torch.relu(z0) @ w[1]).detach()
    for pct, scale in ((99.7, 0.7), (90.0, 1.0), (100.0, 0.5)):
        p0 = np.percentile(z0.double().numpy().ravel(), pct)
        p1 = np.percentile(z1.double().numpy().ravel(), pct)
        th = diet.conversion_thresholds([t.detach() for t in w], x, pct, scale)
        assert th == pytest.approx([scale * p0, scale * p1 / p0], rel=1e-12)
    assert diet.conversion_thresholds([t.detach() for t in w], x, 100.0, 1.0)[0] == \
        pytest.approx(float(z0.max()))  # fmt: skip


def test_a_converted_network_starts_from_the_anns_weights_and_spikes_like_it(split) -> None:
    """Converted and not trained further (``epochs`` 0): the SNN holds the ANN's weights
    exactly and, at 32 steps, classifies most digits as the ANN does."""
    params = {"init": "ann", "epochs": 0, "ann_epochs": 30, "lr": 3e-3, "timesteps": 32}
    m = runner.family_of("diet").model("diet", 64, 32, 10, "digits", params)
    t = runner.train(m, QuantSpec(), SETTINGS, split)
    w = runner.diet.ann_weights(m, SETTINGS, split)
    assert all(torch.equal(a.detach(), b) for a, b in zip(t.net.w, w, strict=True))
    ann = diet.ann_forward(w, split.eval_x).argmax(dim=1)
    snn = diet.predict(t.net, split.eval_x)
    assert float((ann == split.eval_y).double().mean()) > 0.75
    assert float((snn == ann).double().mean()) > 0.8
    rec = runner.evaluate(t, QuantSpec(), split).record
    assert rec.key == "diet-n32-fp32-T32-init-ann" and rec.design_point.init == "ann"


def test_every_point_converting_one_topology_shares_the_ann(tmp_path: Path, monkeypatch) -> None:
    made = []
    real = diet.train_ann

    def spy(*a, **k):  # type: ignore[no-untyped-def]
        made.append(1)
        return real(*a, **k)

    monkeypatch.setattr(diet, "train_ann", spy)
    sp = parse_space({"study": "t", "data": {"train_samples": 600, "test_samples": 200},
                      "params": {"epochs": 2, "ann_epochs": 3, "surrogate": "stdb"},
                      "designs": [{"model": "diet", "neurons": 16, "timesteps": [2, 4],
                                   "init": "ann"}]}, "t.yaml")  # fmt: skip
    tr = Trainings(sp, SETTINGS, tmp_path)
    for p in sp.points:
        tr.train_point(p)
    assert len(made) == 1  # one ANN for both points
    assert len(list(tmp_path.joinpath("trainings").glob("*.tensors.pt"))) == 1


@pytest.mark.parametrize(
    ("params", "needle"),
    [({"init": "bert"}, "init: unknown value 'bert'"),
     ({"init": "ann", "conv_percentile": 0}, "conv_percentile in \\(0, 100\\]"),
     ({"init": "ann", "conv_scale": -1}, "conv_scale > 0")],
)  # fmt: skip
def test_bad_conversion_parameters_are_one_line(params: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as e:
        diet.model_for(64, 8, 10, None, params)
    assert "\n" not in str(e.value)


def test_a_damaged_shared_ann_is_moved_aside_and_made_again(tmp_path: Path) -> None:
    sp = parse_space({"study": "t", "designs": [{"model": "diet", "neurons": 4}]}, "t.yaml")
    notes: list[str] = []
    tr = Trainings(sp, SETTINGS, tmp_path, on_note=notes.append)
    calls = []

    def make() -> dict[str, torch.Tensor]:
        calls.append(1)
        return {"w0": torch.ones(2, 2)}

    assert torch.equal(tr.tensors("k", make)["w0"], torch.ones(2, 2))
    assert torch.equal(tr.tensors("k", make)["w0"], torch.ones(2, 2)) and len(calls) == 1
    (f,) = tmp_path.joinpath("trainings").glob("*.tensors.pt")
    f.write_bytes(b"not a torch file")
    assert torch.equal(tr.tensors("k", make)["w0"], torch.ones(2, 2)) and len(calls) == 2
    assert len(notes) == 1 and "moved it aside" in notes[0]
    assert len(list(tmp_path.joinpath("trainings").glob("*.tensors.pt.corrupt-*"))) == 1
