"""The second model family in the same studies (issue 24 items 1, 2, 4, 6, 7): the axes
scoped by family, design keys, the family seam (build, train, evaluate, checkpoint),
Eq. 4 memory and the modelled energy against hand counts, a study and report that hold
both families, and one-line errors for what means nothing to a family."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import optuna
import pytest
import torch

from tinysnn_dse import runner
from tinysnn_dse.axes import AXES, BY_NAME, check_family, nearest
from tinysnn_dse.cli import main
from tinysnn_dse.core import diet, energy
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.errors import CheckpointError, ConfigError
from tinysnn_dse.explore.distributions import (
    display_distributions,
    grid_params,
    suggest_axes,
)
from tinysnn_dse.explore.space import needs_reference, parse_space
from tinysnn_dse.records import DesignPoint, Record

# a small budget: digits, 300 training images, 20 epochs (~1 s a training)
SETTINGS = runner.RunSettings(dataset="digits", train_samples=300, test_samples=120,
                              device="cpu")  # fmt: skip
PARAMS = {"epochs": 20}


def space(designs: list, **top: object):
    return parse_space({"study": "t", "designs": designs, **top}, "t.yaml")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


# ---------------------------------------------------------------------- axes and keys


def test_keys_of_both_families() -> None:
    """The STDP family's keys are those stored studies hold; a diet point's key names
    only the family's axes that leave their defaults."""
    assert DesignPoint("tinysnn", 400, "ptq", "nearest", 8, 16, 16).key == (
        "tinysnn-n400-ptq-nearest-w8-v16-t16"
    )
    assert DesignPoint("diet", 400).key == "diet-n400-fp32"
    p = DesignPoint("diet", 400, "itq", "nearest", 4, 8, 8, depth=2, timesteps=1,
                    encoding="poisson", trainable="none")  # fmt: skip
    assert p.key == "diet-n400-itq-nearest-w4-v8-t8-d2-T1-enc-poisson-tr-none"
    assert p.family == "diet" and DesignPoint("baseline", 1).family == "stdp"
    # the STDP axes are no parameters of a diet point, and the reverse
    assert "t_present_ms" not in p.model_params and p.model_params["timesteps"] == 1
    assert "timesteps" not in DesignPoint("tinysnn", 1).model_params


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"model": "tinysnn", "timesteps": 1}, "timesteps means nothing for model tinysnn"),
        ({"model": "baseline", "depth": 2}, "depth means nothing for model baseline"),
        ({"model": "diet", "t_present_ms": 50}, "t_present_ms means nothing for model diet"),
        ({"model": "diet", "prune": 0.5}, "prune means nothing for model diet"),
        ({"model": "diet", "vmem_floor": 5}, "vmem_floor means nothing for model diet"),
    ],
)
def test_an_axis_of_the_other_family_is_one_line(values: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as e:
        check_family(values, "here")
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=needle):  # and in a search space
        space([{"neurons": 10, **values}])


@pytest.mark.parametrize(
    ("block", "needle"),
    [
        ({"timesteps": 0}, "timesteps: 0 is not allowed; expected an integer in 1..256"),
        ({"timesteps": 300}, "expected an integer in 1..256"),
        ({"depth": 3}, "depth: 3 is not allowed; expected an integer in 1..2"),
        ({"encoding": "rate"}, "unknown value 'rate'; allowed: direct, poisson"),
        ({"trainable": "all"}, "allowed: none, leak, threshold, both"),
        (
            {"params": {"theta_plus_mv": 1}},
            "params: unknown parameter 'theta_plus_mv' of the diet family",
        ),
        ({"params": {"lr": "fast"}}, r"params: parameter lr: 'fast' is not a float \(model diet\)"),
    ],
)
def test_bad_diet_axes_and_params_are_one_line(block: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as e:
        space([{"model": "diet", "neurons": 10, **block}])
    assert "\n" not in str(e.value)


def test_stdp_params_are_checked_against_the_stdp_family_only() -> None:
    needle = r"t.yaml: params: unknown parameter 'epochs'.*\(model tinysnn\)"
    with pytest.raises(ConfigError, match=needle):
        space([{"model": ["tinysnn", "diet"], "neurons": 10}], params={"epochs": 3})
    sp = space([{"model": "diet", "neurons": 10, "params": {"epochs": 3}},
                {"model": "tinysnn", "neurons": 10}])  # fmt: skip
    assert {p.model for p in sp.points} == {"diet", "tinysnn"}


def test_a_diet_itq_point_needs_the_fp32_training_of_its_network() -> None:
    sp = space([{"model": "diet", "neurons": 10, "scheme": "itq", "weight_bits": [fp, 4]}
                for fp in ("fp32",)])  # fmt: skip
    itq = next(p for p in sp.points if not p.is_fp32)
    assert needs_reference(itq)  # W only: the STDP family would not need it
    assert not needs_reference(DesignPoint("tinysnn", 10, "itq", "nearest", 4))
    assert sp.trainings == 2  # the FP32 training, then QAT from it


# ------------------------------------------------------------------- study parameters


def test_grid_params_name_the_family_and_keep_the_stored_model_vocabulary() -> None:
    """A study stored before the second family resumes: ``model`` keeps its three
    choices; a diet point is named by ``family``, and carries no STDP axis."""
    d = DesignPoint("diet", 100, "ptq", "nearest", 8, 8, 8, timesteps=2)
    g = grid_params(d)
    assert "model" not in g and g["family"] == "diet" and g["timesteps"] == 2
    assert "t_present_ms" not in g and "prune" not in g
    dists = display_distributions(d)
    assert set(dists) == set(g)
    s = grid_params(DesignPoint("tinysnn", 100))
    assert s["model"] == "tinysnn" and s["family"] == "stdp" and "timesteps" not in s
    assert display_distributions(DesignPoint("tinysnn", 1))["model"].choices == (  # type: ignore[attr-defined]
        "baseline", "sl-stdp", "tinysnn")  # fmt: skip


def test_a_sampler_suggesting_the_diet_family_maps_to_a_diet_point() -> None:
    sp = space([{"model": "tinysnn", "neurons": 100},
                {"model": "diet", "neurons": 100, "timesteps": [1, 4]}])  # fmt: skip
    pts = sp.points
    axes = [{a.name: getattr(p, a.name) for a in AXES} for p in pts]
    base = {a.name: a.ordinal(a.default) for a in AXES if a.name != "model"}
    base.update(neurons=100, model="tinysnn")
    trial = optuna.trial.FixedTrial({**base, "family": "diet", "timesteps": 1})
    s = suggest_axes(trial, pts)  # type: ignore[arg-type]
    assert s["model"] == "diet"
    assert pts[nearest(s, axes)].key == "diet-n100-fp32-T1"
    trial = optuna.trial.FixedTrial({**base, "family": "stdp"})
    assert pts[nearest(suggest_axes(trial, pts), axes)].model == "tinysnn"  # type: ignore[arg-type]
    # a space of one family suggests no family (an STDP study keeps its parameters)
    one = space([{"model": "tinysnn", "neurons": [100, 400]}]).points
    trial = optuna.trial.FixedTrial(base)
    assert suggest_axes(trial, one)["model"] == "tinysnn"  # type: ignore[arg-type]
    diet_only = space([{"model": "diet", "neurons": 100}]).points
    assert suggest_axes(optuna.trial.FixedTrial(base), diet_only)["model"] == "diet"  # type: ignore[arg-type]


# ------------------------------------------------------------- accounting, by hand


def test_memory_of_a_fixed_point_diet_design_by_hand() -> None:
    """Eq. 4: 64x100 + 100x10 weights at 8 bits, 110 membranes at 8 bits, one 8-bit
    threshold and one 16-bit leak; FP32 counts 32 bits everywhere."""
    m = runner.family_of("diet").model("diet", 64, 100, 10, None, {})
    r = diet.Ranges(w=(0.7, 0.9), vmem=(3.0, 20.0), vth=(1.2,))
    f = diet.formats_for(r, 8, 8, 8)
    mem = runner.diet.memory_of(m, f)
    assert mem.bits == (6400 + 1000) * 8 + 110 * 8 + 8 + 16 == 60104
    assert mem.detail["reference_bits"] == (6400 + 1000) * 32 + 110 * 32 + 32 + 32
    assert mem.normalized == pytest.approx(60104 / mem.detail["reference_bits"])
    # against the FP32 DC15 baseline of 64 inputs and 100 neurons: 64x100 + 2 x 100x100
    # weights, Vmem and Vth of 200 neurons
    assert mem.vs_baseline_fp32 == pytest.approx(60104 / ((6400 + 20000 + 400) * 32))


def test_inference_energy_by_hand() -> None:
    """One image through 4-100-3 at T = 2, W8/V8/T8: 3 MACs (3 non-zero pixels, each
    into 100 neurons = 300), 50 spikes into 3 outputs (150 ACs), 200 hidden steps with
    a leak, 50 resets, 6 output steps."""
    cfg = diet.DietConfig(n_in=4, hidden=(100,), n_out=3, timesteps=2)
    ops = diet.ops_of(cfg, torch.tensor([[0.5, 0.0, 1.0, 0.25]]), [50.0])
    assert (ops.effective_macs, ops.effective_acs, ops.dense_ops) == (300.0, 150.0, 400 + 600)
    assert ops.activation_sparsity == pytest.approx(1 - 50 / 200)
    e = diet.inference_energy(ops, cfg, 8, 8, 8, images=2)
    bit = energy.SRAM_PJ_PER_BIT
    mac = 8 * bit + 0.2 + 0.03  # weight read, 8x8 multiply, 8-bit add (Horowitz)
    ac = 8 * bit + 0.03
    step = 16 * bit + 0.03 + 0.2 + 0.03  # Vmem read+write, compare, leak multiply and add
    want = 300 * mac + 150 * ac + 200 * step + 50 * 0.03 + 6 * 16 * bit
    assert e.per_sample_j == pytest.approx(want * 1e-12)
    assert e.total_j == pytest.approx(2 * want * 1e-12)
    assert e.ops["effective_macs"] == 600


# ------------------------------------------------------------------ the family seam


@pytest.fixture(scope="module")
def split() -> runner.Split:
    from tinysnn_dse import data as data_mod

    return runner.make_split(data_mod.load("digits"), SETTINGS, torch.device("cpu"))


@pytest.fixture(scope="module")
def fp32(split: runner.Split) -> runner.Trained:
    m = runner.family_of("diet").model("diet", 64, 32, 10, "digits", PARAMS)
    return runner.train(m, QuantSpec(), SETTINGS, split)


def test_diet_trains_above_chance_and_records_itself(fp32, split) -> None:
    ev = runner.evaluate(fp32, QuantSpec(), split)
    r = ev.record
    assert r.key == "diet-n32-fp32" and r.accuracy > 0.5  # chance: 0.1
    assert r.outcome.latency_ms == 4.0 and r.outcome.readout == "membrane"
    assert r.outcome.train_images == 20 * 300
    nb = r.outcome.neurobench
    assert 0 < nb["activation_sparsity"] < 1 and nb["effective_macs"] > 0
    assert nb["footprint_bytes"] == r.memory.bits / 8
    assert r.energy["infer"].modelled_j_per_sample > 0 and "train" in r.energy
    stored = json.loads(json.dumps(r.to_dict()))
    assert Record.from_dict(stored).to_dict() == stored


def test_same_seed_same_network_and_record(fp32, split) -> None:
    again = runner.train(fp32.model, QuantSpec(), SETTINGS, split)
    assert all(torch.equal(a, b) for a, b in zip(fp32.net.w, again.net.w, strict=True))
    a = runner.evaluate(fp32, QuantSpec("ptq", "stochastic", 4, 8, 8), split).record
    b = runner.evaluate(again, QuantSpec("ptq", "stochastic", 4, 8, 8), split).record
    assert a.accuracy == b.accuracy and a.formats == b.formats


def test_itq_fine_tunes_the_reference_on_the_grid(fp32, split) -> None:
    q = QuantSpec("itq", "nearest", 4, 8, 8)
    t = runner.train(fp32.model, q, SETTINGS, split, reference=fp32)
    assert t.ranges is not None and t.quant == q
    assert t.train_images == fp32.model.qat_epochs * 300
    # the shared FP32 training is untouched
    assert not any(torch.equal(a, b) for a, b in zip(fp32.net.w, t.net.w, strict=True))
    ev = runner.evaluate(t, q, split)
    assert ev.record.key == "diet-n32-itq-nearest-w4-v8-t8" and ev.record.accuracy > 0.5
    # the deployed weights sit on their 4-bit grids: at most 16 levels a layer
    f = diet.formats_for(t.ranges, 4, 8, 8)
    net, _ = diet.deployed(t.net, f, None)
    for w, fw in zip(net.w, f.weight, strict=True):
        assert fw is not None
        codes = w * fw.inv  # the integer codes (inv: 2**frac_bits)
        assert torch.equal(codes, codes.round()) and codes.unique().numel() <= 16
    with pytest.raises(ConfigError, match="formats it trained in"):
        runner.evaluate(t, QuantSpec("itq", "nearest", 8, 8, 8), split)


def test_checkpoint_round_trip_and_refusals(fp32, split, tmp_path: Path) -> None:
    q = QuantSpec("itq", "nearest", 4, 8, 8)
    t = runner.train(fp32.model, q, SETTINGS, split, reference=fp32)
    ev = runner.evaluate(t, q, split)
    ckpt, _ = runner.save(tmp_path, t, ev)
    back = runner.load_checkpoint(ckpt)
    assert back.model == t.model and back.ranges == t.ranges and back.quant == t.quant
    again = runner.evaluate(dataclasses.replace(back, settings=t.settings), q, split).record
    assert again.accuracy == ev.record.accuracy and again.formats == ev.record.formats
    # a non-finite leak, and a payload whose weights do not fit the model, are refused
    p = torch.load(ckpt, weights_only=True)
    p["leak"] = torch.tensor([math.nan])
    torch.save(p, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="non-finite leaks"):
        runner.load_checkpoint(tmp_path / "nan.pt")
    p = torch.load(ckpt, weights_only=True)
    p["w0"] = torch.zeros(3, 3)
    torch.save(p, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="weight 0 shape"):
        runner.load_checkpoint(tmp_path / "shape.pt")
    p["family"] = "hebbian"
    torch.save(p, tmp_path / "fam.pt")
    with pytest.raises(CheckpointError, match="unknown model family 'hebbian'"):
        runner.load_checkpoint(tmp_path / "fam.pt")


# ------------------------------------------------------------------------- the CLI


def test_cli_trains_and_exports_a_diet_point_and_refuses_bad_input(capsys, tmp_path: Path) -> None:
    out = tmp_path / "d"
    code, text, err = cli(capsys, "train", "--model", "diet", "--dataset", "digits",
                          "--neurons", "16", "--train-samples", "200", "--test-samples", "60",
                          "-p", "epochs=2", "-p", "timesteps=2", "--out", str(out),
                          "--json")  # fmt: skip
    assert code == 0, err
    rec = json.loads(text)
    assert rec["design_point"]["key"] == "diet-n16-fp32-T2"
    assert rec["config"]["model"]["net"]["timesteps"] == 2
    code, _, err = cli(capsys, "export", str(out / "model.pt"), "--out", str(tmp_path / "x"),
                       "--weight-bits", "8", "--vmem-bits", "8", "--vth-bits", "8")  # fmt: skip
    assert code == 0, err  # tests/export/test_diet_export.py runs its C
    assert (tmp_path / "x" / "c" / "diet.c").is_file()
    code, _, err = cli(capsys, "evaluate", str(out / "model.pt"), "--readout", "all")
    assert code == 2 and "reads out by its output layer" in err
    code, _, err = cli(capsys, "train", "--model", "diet", "--dataset", "digits",
                       "-p", "depth=3", "--out", str(tmp_path / "e"))  # fmt: skip
    assert code == 2 and "depth must be one of (1, 2), got 3" in err


def test_the_model_axis_knows_the_family() -> None:
    assert "diet" in BY_NAME["model"].choices


def test_stdp_records_carry_neurobench_metrics_by_hand() -> None:
    """The STDP family's NeuroBench metrics from the test pass's event counts: no MACs
    (spike input), ACs = input spikes x n (retained) + excitatory spikes x (n - 1)
    (tinySNN's lateral inhibition), dense = steps x (n_in n + n (n - 1)) per image."""
    from tinysnn_dse.core.params import preset

    s = runner.RunSettings(dataset="digits", train_samples=100, test_samples=40,
                           device="cpu").validate()  # fmt: skip
    _t, ev = runner.train_and_evaluate(preset("tinysnn", 64, 20, "digits"), QuantSpec(), s)
    nb = ev.record.outcome.neurobench
    ops = ev.record.energy["infer"].ops
    n, n_in, k = 20, 64, ops["samples"]
    assert nb["effective_macs"] == 0.0
    assert nb["effective_acs"] == pytest.approx(
        (ops["input_spikes"] * n + ops["exc_spikes"] * (n - 1)) / k
    )
    assert nb["dense_ops"] == pytest.approx(ops["steps"] * (n_in * n + n * (n - 1)) / k)
    assert nb["activation_sparsity"] == pytest.approx(1 - ops["exc_spikes"] / (ops["steps"] * n))
    assert nb["footprint_bytes"] == ev.record.memory.bits / 8
