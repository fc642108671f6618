"""Adversarial robustness (issue 25 item 3): FGSM and PGD through torchattacks, white box
through the gradient-trained family's surrogate, a transfer attack from the shared ANN
that applies to every family, records, the select/report constraint, and one-line
errors for bad input. Hand-checked: FGSM on a linear model against its closed form, the
epsilon ball and pixel range of every adversarial image, epsilon 0 leaving the accuracy
as it was, and the straight-through Poisson encoder's gradient."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse import runner
from tinysnn_dse.cli import main
from tinysnn_dse.core import diet
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.explore.space import parse_space
from tinysnn_dse.records import Record, check_robust_key
from tinysnn_dse.report.select import Constraints, pareto, rank, robust_accuracy
from tinysnn_dse.runner import robustness as rb

pytest.importorskip("torchattacks")

SETTINGS = runner.RunSettings(dataset="digits", train_samples=600, test_samples=150,
                              device="cpu").validate()  # fmt: skip
SPEC = rb.Robustness(samples=150, source_neurons=32, epsilons=(0.1, 0.3))


@pytest.fixture(scope="module")
def split() -> runner.Split:
    return runner.make_split(data_mod.load("digits"), SETTINGS, torch.device("cpu"))


@pytest.fixture(scope="module")
def shared() -> dict:
    return {}


def cache_of(store: dict):
    def cache(key, make):
        if key not in store:
            store[key] = make()
        return store[key]

    return cache


def trained(model: str, split: runner.Split, quant: QuantSpec = QuantSpec(), **params):
    fam = runner.family_of(model)
    m = fam.model(model, 64, 32, 10, "digits", {"epochs": 15, **params} if model == "diet"
                  else params)  # fmt: skip
    ref = runner.train(m, QuantSpec(), SETTINGS, split)
    t = ref if quant.is_fp32 else runner.train(m, quant, SETTINGS, split, reference=ref)
    return t, runner.evaluate(t, quant, split)


# ------------------------------------------------------------------ the attacks by hand


def test_fgsm_on_a_linear_model_is_its_closed_form() -> None:
    """logits = x W: d CE / d x = W (softmax - onehot), so FGSM's image is x + eps *
    sign(that), clipped to [0, 1] and put on the pixel grid within eps."""
    g = torch.Generator().manual_seed(3)
    w = torch.randn(12, 4, generator=g, dtype=torch.float32)
    x = torch.randint(0, 256, (20, 12), generator=g).to(torch.float32) / 255.0
    y = torch.randint(0, 4, (20,), generator=g)
    eps = 0.1
    got = rb.craft(lambda v: v @ w, x, y, "fgsm", eps, rb.Robustness(), g)
    p = torch.softmax((x @ w).double(), dim=1)
    grad = (p - torch.nn.functional.one_hot(y, 4).double()) @ w.double().T
    step = (x.double() + eps * torch.sign(grad)).clamp(0, 1)
    code = torch.round(x.double() * 255)
    k = math.floor(eps * 255)
    want = torch.minimum(torch.maximum(torch.round(step * 255), code - k), code + k) / 255
    assert torch.equal(got.double(), want.clamp(0, 1).to(torch.float32).double())


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_every_adversarial_image_is_on_the_grid_within_epsilon(attack: str) -> None:
    g = torch.Generator().manual_seed(0)
    w = [torch.randn(64, 16, generator=g), torch.randn(16, 10, generator=g)]
    x = torch.randint(0, 256, (40, 64), generator=g).to(torch.float32) / 255.0
    y = torch.randint(0, 10, (40,), generator=g)
    for eps in (0.0, 0.05, 0.1, 0.3, 1.0):
        adv = rb.craft(lambda v: diet.ann_forward(w, v), x, y, attack, eps, rb.Robustness(), g)
        assert adv.shape == x.shape and adv.dtype == x.dtype
        assert float((adv - x).abs().max()) <= eps + 1e-6
        assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
        # 8-bit images, as the data set's (P / 255 in float32)
        assert torch.equal(torch.round(adv * 255) / 255.0, adv)
        if eps == 0.0:
            assert torch.equal(adv, x)
        if eps >= 0.1:  # the attack moved the images and hurt the model
            assert float((adv - x).abs().max()) > 0
            before = diet.ann_forward(w, x).argmax(1) == y
            after = diet.ann_forward(w, adv).argmax(1) == y
            assert int(after.sum()) < int(before.sum())


def test_on_grid_keeps_a_pixel_whose_ball_holds_no_code() -> None:
    x = torch.tensor([[0.5 / 255, 1.0, 0.0]])
    adv = rb.on_grid(x, torch.tensor([[1.0, 0.0, 1.0]]), 0.001)
    assert torch.equal(adv, x)  # no code within 0.001 of 0.5/255; 1 and 0 stay
    adv = rb.on_grid(x, torch.tensor([[1.0, 0.0, 1.0]]), 2 / 255)
    assert torch.allclose(adv * 255, torch.tensor([[2.0, 253.0, 2.0]]))


def test_poisson_encoder_passes_the_gradient_straight_through() -> None:
    """d spikes / d x = 1 for an input that asks for it (Sharmin et al.); training's
    pixels get plain spikes."""
    cfg = diet.DietConfig(n_in=5, hidden=(3,), n_out=2, encoding=diet.Encoding.POISSON)
    x = torch.rand(4, 5, generator=torch.Generator().manual_seed(1), requires_grad=True)
    c = torch.arange(20.0).reshape(4, 5)
    s = diet.encode(x, cfg, 0, torch.Generator().manual_seed(2))
    (s * c).sum().backward()
    assert torch.equal(x.grad, c)
    assert set(s.detach().unique().tolist()) <= {0.0, 1.0}
    plain = diet.encode(x.detach(), cfg, 0, torch.Generator().manual_seed(2))
    assert torch.equal(plain, s.detach()) and not plain.requires_grad


# ------------------------------------------------------------------- designs attacked


def test_epsilon_zero_leaves_every_family_as_it_was(split, shared) -> None:
    spec = rb.Robustness(samples=150, source_neurons=32, epsilons=(0.0,))
    for model, params in (("diet", {"encoding": "poisson"}), ("tinysnn", {})):
        t, ev = trained(model, split, **params)
        rec = runner.robust_record(t, QuantSpec(), ev, split, spec, cache_of(shared))
        acc = rec.outcome.robustness
        assert len(acc) == 5 if model == "diet" else len(acc) == 3
        assert all(v == acc["clean"] for v in acc.values()), acc


def test_a_diet_design_is_attacked_white_and_transfer_and_records_it(split, shared) -> None:
    t, ev = trained("diet", split)
    rec = runner.robust_record(t, QuantSpec(), ev, split, SPEC, cache_of(shared))
    acc = rec.outcome.robustness
    assert set(acc) == {"clean", *(f"{th}-{a}-{e:g}" for th in ("white", "transfer")
                                   for a in ("fgsm", "pgd") for e in (0.1, 0.3))}  # fmt: skip
    assert acc["clean"] == pytest.approx(rec.accuracy)  # all 150 test images
    assert acc["white-pgd-0.3"] < acc["white-pgd-0.1"] < acc["clean"]
    assert acc["white-pgd-0.1"] <= acc["white-fgsm-0.1"] + 0.05  # PGD: FGSM iterated
    d = rec.config["robustness"]
    assert d["samples"] == 150 and d["source"]["model"] == "ann 64-32-10"
    assert d["source"]["accuracy"]["white-pgd-0.3"] < d["source"]["accuracy"]["clean"]
    assert rec.outcome.robust_seconds > 0
    # it survives the record's JSON, and the same seed gives the same numbers
    back = Record.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert back.outcome.robustness == acc
    again = runner.robust_record(t, QuantSpec(), ev, split, SPEC, cache_of({}))
    assert again.outcome.robustness == acc


def test_an_integer_design_is_attacked_through_its_formats_and_tested_in_integers(split) -> None:
    q = QuantSpec(scheme="ptq", weight_bits=8, vmem_bits=16, vth_bits=16)
    t, ev = trained("diet", split, q)
    assert ev.record.backend["infer_datapath"] == "integer"
    rec = runner.robust_record(t, q, ev, split, SPEC, cache_of({}))
    acc = rec.outcome.robustness
    assert acc["clean"] == pytest.approx(rec.accuracy)
    assert acc["white-pgd-0.3"] < acc["clean"]


def test_the_stdp_family_is_attacked_by_transfer_only(split, shared) -> None:
    t, ev = trained("tinysnn", split)
    rec = runner.robust_record(t, QuantSpec(), ev, split, SPEC, cache_of(shared))
    acc = rec.outcome.robustness
    assert set(acc) == {"clean", *(f"transfer-{a}-{e:g}" for a in ("fgsm", "pgd")
                                   for e in (0.1, 0.3))}  # fmt: skip
    assert "gradient" in rec.config["robustness"]["white"]
    assert acc["transfer-pgd-0.3"] < acc["clean"]


def test_the_transfer_images_are_made_once_for_every_model(split) -> None:
    store: dict = {}
    for model in ("diet", "tinysnn"):
        t, ev = trained(model, split)
        runner.robust_record(t, QuantSpec(), ev, split, SPEC, cache_of(store))
    adv = [k for k in store if k.startswith("adv:")]
    ann = [k for k in store if k.startswith("ann:")]
    assert len(ann) == 1 and len(adv) == 4  # 2 attacks x 2 epsilons, shared by both


# ------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"epsilons": [-0.1]}, "epsilon -0.1 is not a number in [0, 1]"),
        ({"epsilons": [1.5]}, "epsilon 1.5 is not a number in [0, 1]"),
        ({"attacks": ["cw"]}, "unknown attack 'cw'; known: fgsm, pgd"),
        ({"threats": ["grey"]}, "unknown threat 'grey'"),
        ({"samples": 0}, "samples must be at least 1"),
        ({"pgd_steps": 0}, "pgd_steps must be at least 1"),
        ({"epsilon": [0.1]}, "robustness.epsilon: unknown key"),
        ({"epsilons": ["x"]}, "expected numbers"),
        ([0.1], "expected a mapping"),
    ],
)
def test_bad_robustness_specs_are_one_line(raw, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_space({"study": "t", "robustness": raw, "designs": [{"model": "diet"}]}, "t.yaml")
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith("t.yaml: robustness")


def test_robust_keys_are_checked_and_normalized() -> None:
    assert check_robust_key("transfer-pgd-0.10") == "transfer-pgd-0.1"
    assert check_robust_key("white-fgsm-0") == "white-fgsm-0"
    for bad in ("pgd-0.1", "transfer-cw-0.1", "transfer-pgd-x", "transfer-pgd-2", "a-b-c-d"):
        with pytest.raises(ConfigError, match="THREAT-ATTACK-EPSILON"):
            check_robust_key(bad)
    with pytest.raises(ConfigError, match="min robust accuracy 1.5"):
        Constraints(min_robust_accuracy=1.5).validate()


def test_without_torchattacks_the_attack_says_how_to_install(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torchattacks", None)
    x = torch.zeros(2, 3)
    with pytest.raises(ConfigError, match="pip install --no-deps torchattacks==3.5.1"):
        rb.craft(lambda v: v, x, torch.zeros(2, dtype=torch.long), "fgsm", 0.1,
                 rb.Robustness(), torch.Generator())  # fmt: skip


# ------------------------------------------------------------------- select and report


def _row(acc: float, kib: float, robust: dict[str, float]) -> dict:
    return {"accuracy": acc, "memory_bits": int(kib * 8192), "memory_kb": kib,
            "e": 1.0, "robustness": robust, "trial": 0, "latency_ms": None}  # fmt: skip


def test_pareto_with_a_robust_key_keeps_the_robust_point() -> None:
    a = _row(0.98, 10, {"transfer-pgd-0.1": 0.30})
    b = _row(0.97, 10, {"transfer-pgd-0.1": 0.60})  # less accurate, more robust
    c = _row(0.96, 10, {})  # measured nothing: the worst robustness
    assert pareto([a, b, c], "e") == [a]
    assert pareto([a, b, c], "e", "transfer-pgd-0.10") == [a, b]
    assert robust_accuracy(b, "transfer-pgd-0.1") == 0.6 and math.isnan(
        robust_accuracy(c, "transfer-pgd-0.1")
    )


def test_explore_select_and_report_with_a_robustness_constraint(capsys, tmp_path: Path) -> None:
    """A space with both families and a robustness key: every record holds its
    adversarial accuracies; select admits only points at or above the constraint; the
    report's CSV and pages show them."""
    space = tmp_path / "rob.yaml"
    space.write_text(
        "study: rob\n"
        "data: {dataset: digits, train_samples: 400, test_samples: 100}\n"
        "robustness: {attacks: [fgsm], epsilons: [0.1], samples: 100, source_neurons: 16}\n"
        "designs:\n"
        "  - {model: diet, neurons: 16, params: {epochs: 10}}\n"
        "  - {model: tinysnn, neurons: 16}\n"
    )
    db = f"sqlite:///{tmp_path / 's.db'}"
    art = str(tmp_path / "art")
    with pytest.raises(SystemExit) as e:
        main(["explore", str(space), "--storage", db, "--artifacts", art])
    assert e.value.code == 0, capsys.readouterr().err
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["select", "--storage", db, "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2
    by = {r["family"]: r for r in rows}
    assert set(by["diet"]["robustness"]) == {"clean", "white-fgsm-0.1", "transfer-fgsm-0.1"}
    assert set(by["stdp"]["robustness"]) == {"clean", "transfer-fgsm-0.1"}
    lo = min(r["robustness"]["transfer-fgsm-0.1"] for r in rows)
    hi = max(r["robustness"]["transfer-fgsm-0.1"] for r in rows)
    assert lo < hi
    with pytest.raises(SystemExit) as e:
        main(["select", "--storage", db, "--json", "--min-robust-accuracy", str(hi),
              "--robust-key", "transfer-fgsm-0.1"])  # fmt: skip
    kept = json.loads(capsys.readouterr().out)
    assert [r["robustness"]["transfer-fgsm-0.1"] for r in kept] == [hi]
    # the default key (transfer-pgd-0.1) was not measured: nothing is admissible
    with pytest.raises(SystemExit) as e:
        main(["select", "--storage", db, "--min-robust-accuracy", "0"])
    assert e.value.code == 1
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["select", "--storage", db, "--robust-key", "transfer-cw-0.1"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "robust key 'transfer-cw-0.1'" in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as e:
        main(["report", "--storage", db, "--out", str(tmp_path / "rep"),
              "--robust-key", "transfer-fgsm-0.1"])  # fmt: skip
    assert e.value.code == 0, capsys.readouterr().err
    with open(tmp_path / "rep" / "trials.csv") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert {float(r["adv_transfer-fgsm-0.1"]) for r in csv_rows} == {lo, hi}
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Adversarial accuracy (%)" in md and "transfer-fgsm-0.1 accuracy up" in md
    assert not rank([], 0.5, Constraints(min_robust_accuracy=0.1))
