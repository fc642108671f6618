"""``vmem_floor: auto`` (issue 28 item 2): the membrane floor chosen on the training
holdout, before the study runs, by a stated rule; the chosen value in the key and the
record; the choice made once per network and found again by a resumed study."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse import runner
from tinysnn_dse.axes import BY_NAME
from tinysnn_dse.cli import main
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.explore.space import parse_space
from tinysnn_dse.records import DesignPoint
from tinysnn_dse.runner import floor


def test_the_rule_by_hand() -> None:
    """The candidate nearest rest within 0.1 points of no floor; none where none is."""
    assert floor.pick({0: 0.90, 4: 0.80, 8: 0.8991, 16: 0.95}) == 8
    assert floor.pick({0: 0.90, 4: 0.90, 8: 0.95}) == 4  # a tie counts as within
    assert floor.pick({0: 0.90, 4: 0.8989, 8: 0.85}) == 0  # 0.11 points is too much
    assert floor.pick({0: 0.90, 4: 0.89, 8: 0.895}, tolerance=0.01) == 4
    assert floor.pick({0: 0.5}) == 0


def test_the_holdout_is_the_last_training_images_and_disjoint() -> None:
    s = runner.RunSettings(dataset="digits", train_samples=300, test_samples=10).validate()
    split = runner.make_split(data_mod.load("digits"), s, torch.device("cpu"))
    sub, where = floor.holdout_split(split)
    assert where == "train[240:300] (holdout)"
    assert torch.equal(sub.train_x, split.train_x[:240])
    assert torch.equal(sub.eval_x, split.train_x[240:]) and torch.equal(sub.assign_x, sub.train_x)


def test_choice_round_trips_through_tensors() -> None:
    c = floor.FloorChoice(8, {0: 0.9, 4: 0.8, 8: 0.9}, 240, "train[240:300] (holdout)")
    assert floor.FloorChoice.from_tensors(c.tensors()) == c
    d = c.to_dict()
    assert d["chosen_mv"] == 8 and list(d["holdout_accuracy"]) == ["0", "4", "8"]


def test_auto_is_an_axis_value_of_the_stdp_family_only() -> None:
    ax = BY_NAME["vmem_floor"]
    assert ax.parse("auto", "x") == "auto" and ax.parse("AUTO", "x") == "auto"
    assert ax.parse(8, "x") == 8
    with pytest.raises(ConfigError, match="expected an integer >= 0 or auto"):
        ax.parse("sometimes", "x")
    assert DesignPoint("tinysnn", 100, vmem_floor="auto").key == "tinysnn-n100-fp32-floorauto"
    with pytest.raises(ConfigError, match="vmem_floor means nothing for model diet"):
        parse_space({"designs": [{"model": "diet", "vmem_floor": "auto"}]}, "t.yaml")


def test_explore_chooses_the_floor_once_and_records_it(capsys, tmp_path: Path) -> None:
    space = tmp_path / "fl.yaml"
    space.write_text(
        "study: fl\n"
        "data: {dataset: digits, train_samples: 300, test_samples: 100}\n"
        "designs:\n"
        "  - {model: tinysnn, neurons: 20, vmem_floor: auto, weight_bits: [fp32, 8], "
        "neuron_bits: [fp32, 8]}\n"
    )
    db = f"sqlite:///{tmp_path / 's.db'}"
    art = tmp_path / "art"
    args = ["explore", str(space), "--storage", db, "--artifacts", str(art)]
    with pytest.raises(SystemExit) as e:
        main(args)
    out, err = capsys.readouterr()
    assert e.value.code == 0, err
    assert "choosing the membrane floor of tinysnn-n20-fp32" in out + err
    study = optuna.load_study(study_name="fl", storage=db)
    recs = [t.user_attrs["record"] for t in study.trials if "record" in t.user_attrs]
    assert len(recs) == 4
    chosen = {r["config"]["vmem_floor_auto"]["chosen_mv"] for r in recs}
    assert len(chosen) == 1
    (f,) = chosen
    acc = recs[0]["config"]["vmem_floor_auto"]["holdout_accuracy"]
    assert set(acc) == {"0", *(str(c) for c in floor.CANDIDATES_MV)}
    assert f == floor.pick({int(k): v for k, v in acc.items()})
    for r in recs:  # the point is at the chosen floor: key, axis and model
        assert r["design_point"]["vmem_floor"] == f
        assert r["config"]["model"]["exc"]["vmem_floor_mv"] == f
        assert r["config"]["vmem_floor_auto"]["holdout"] == "train[240:300] (holdout)"
    # resumed: the choice is found again (no new trainings), nothing re-runs
    with pytest.raises(SystemExit) as e:
        main(args)
    out, err = capsys.readouterr()
    assert e.value.code == 0, err
    assert "choosing the membrane floor" not in out + err
    assert len(optuna.load_study(study_name="fl", storage=db).trials) == 4
    assert json.dumps(acc)  # the holdout accuracies are plain numbers
