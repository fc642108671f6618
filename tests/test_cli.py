"""The CLI end to end: records, checkpoints, determinism and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tinysnn_dse.cli import main
from tinysnn_dse.core.params import quant_from_dict
from tinysnn_dse.core.quant import Quantizers

SMALL = ["--dataset", "digits", "--neurons", "20", "--train-samples", "60",
         "--test-samples", "60", "--device", "cpu"]  # fmt: skip


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def train_json(capsys, tmp_path: Path, *extra: str, name: str = "a") -> dict:
    code, out, err = run(capsys, "train", *SMALL, "--out", str(tmp_path / name), "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def strip_timing(rec: dict) -> dict:
    rec = json.loads(json.dumps(rec))
    for k in list(rec["outcome"]):
        if "seconds" in k or "per_s" in k:
            rec["outcome"].pop(k)
    for phase in rec.get("energy", {}).values():  # measured energy is time; modelled must match
        for k in list(phase):
            if k.startswith("measured_") and k != "measured_method":
                phase.pop(k)
    return rec


def test_train_writes_checkpoint_and_record(capsys, tmp_path: Path) -> None:
    rec = train_json(capsys, tmp_path)
    assert rec["schema_version"] == 2
    for key in ("accuracy", "train_seconds", "train_images_per_s", "infer_images_per_s"):
        assert key in rec["outcome"]
    assert {"bits", "normalized", "vs_baseline_fp32", "train_bits"} <= rec["memory"].keys()
    assert rec["design_point"]["neurons"] == 20 and "n_exc" not in rec["design_point"]
    assert rec["backend"] == {"train": "numba", "infer": "numba", "infer_datapath": "float32"}
    assert 0.0 <= rec["outcome"]["accuracy"] <= 1.0
    assert rec["memory"]["bits"] == 64 * 20 * 32 + 20 * 64
    assert rec["config"]["model"]["learning"]["eta"] == 0.01
    assert rec["config"]["run"]["train_samples"] == 60
    on_disk = json.loads((tmp_path / "a" / "record.json").read_text())
    assert on_disk == rec
    ckpt = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    assert ckpt["w"].shape == (64, 20)


def test_latency_is_presentation_time_per_test_image(capsys, tmp_path: Path) -> None:
    """latency_ms = t_present_ms x presentations per test image (boosts included): exactly
    t_present_ms when boosting is off, more when faint images are re-presented."""
    r = train_json(capsys, tmp_path, "-p", "t_present_ms=50", "-p", "min_spikes=0", name="a")
    assert r["outcome"]["latency_ms"] == 50.0
    r = train_json(capsys, tmp_path, "-p", "t_present_ms=50", "-p", "min_spikes=200", name="b")
    ops = r["energy"]["infer"]["ops"]
    assert ops["presentations"] > ops["samples"]  # 200 spikes: most images are boosted
    assert r["outcome"]["latency_ms"] == pytest.approx(50.0 * ops["presentations"] / 60)
    assert ops["steps"] == 50 * ops["presentations"]  # 50 steps of 1 ms per presentation


def test_same_seed_same_record(capsys, tmp_path: Path) -> None:
    a = train_json(capsys, tmp_path, "--seed", "3", name="a")
    b = train_json(capsys, tmp_path, "--seed", "3", name="b")
    train_json(capsys, tmp_path, "--seed", "4", name="c")
    assert strip_timing(a) == strip_timing(b)
    wa = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["w"]
    wb = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["w"]
    wc = torch.load(tmp_path / "c" / "model.pt", weights_only=True)["w"]
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


@pytest.mark.parametrize("model", ["baseline", "sl-stdp", "tinysnn"])
def test_each_model_trains_above_chance_on_digits(capsys, tmp_path: Path, model: str) -> None:
    code, out, err = run(capsys, "train", "--dataset", "digits", "--neurons", "50",
                         "--model", model, "--train-samples", "400", "--test-samples", "200",
                         "--out", str(tmp_path / model), "--json")  # fmt: skip
    assert code == 0, err
    rec = json.loads(out)
    assert rec["outcome"]["accuracy"] > 0.25, rec["outcome"]  # chance is 0.10


def test_evaluate_reproduces_and_applies_ptq(capsys, tmp_path: Path) -> None:
    rec = train_json(capsys, tmp_path)
    ck = str(tmp_path / "a" / "model.pt")
    code, out, err = run(capsys, "evaluate", ck, "--json")
    assert code == 0, err
    again = json.loads(out)
    assert again["outcome"]["accuracy"] == rec["outcome"]["accuracy"]
    code, out, err = run(capsys, "evaluate", ck, "--scheme", "ptq", "--weight-bits", "4",
                         "--vmem-bits", "16", "--json")  # fmt: skip
    assert code == 0, err
    q = json.loads(out)
    assert q["memory"]["bits"] == 64 * 20 * 4 + 20 * (16 + 32)
    assert q["design_point"]["key"] == "tinysnn-n20-ptq-nearest-w4-v16-tfp32"


def test_itq_keeps_weights_on_the_grid(capsys, tmp_path: Path) -> None:
    train_json(capsys, tmp_path, "--scheme", "itq", "--rounding", "stochastic",
               "--weight-bits", "6", "--vth-bits", "16")  # fmt: skip
    ck = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    steps = ck["w"].double() * 32  # Q1.5: step 1/32
    assert torch.equal(steps, torch.round(steps))
    rec = json.loads((tmp_path / "a" / "record.json").read_text())
    vth = Quantizers.from_spec(quant_from_dict(rec["config"]["quant"])).vth
    assert vth is not None and rec["formats"]["vth"] == vth.describe()
    assert "FP32 training of the same network" in rec["outcome"]["ranges_source"]
    th = (ck["theta"].double() - 52.0) / vth.eps  # thresholds on the observed Vth grid
    assert torch.equal(th, torch.round(th))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--weight-bits", "1"], "impossible"),
        (["train", "--weight-bits", "33"], "impossible"),
        (["train", "--vmem-bits", "eight"], "not a width"),
        (["train", "--rounding", "up"], "unknown value 'up'"),
        (["train", "--scheme", "qat"], "unknown value 'qat'"),
        (["train", "--model", "lenet"], "unknown value 'lenet'"),
        (["train", "--dataset", "cifar"], "unknown data set 'cifar'"),
        (["train", "--neurons", "many"], "--neurons"),
        (["train", "--no-such-flag"], "No such option"),
        (["train", "-p", "eta"], "NAME=VALUE"),
        (["train", "-p", "nosuch=1"], "unknown parameter"),
        (["train", "-p", "eta=fast"], "expects a number"),
        (["train", "--train-samples", "0"], "at least 1"),
        (["train", "--train-samples", "5000"], "only 1437"),
        (["train", "--device", "tpu"], "bad device"),
        (["evaluate", "/nonexistent/model.pt"], "no such checkpoint"),
    ],
)
def test_bad_input_one_line_and_exit_2(capsys, tmp_path: Path, args, needle) -> None:
    code, out, err = (
        run(capsys, *args, "--out", str(tmp_path / "x"))
        if args[0] == "train"
        else run(capsys, *args)
    )
    assert code == 2
    assert needle in err
    assert err.strip().count("\n") == 0 and err.startswith("error: ")
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_corrupt_checkpoint(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    code, _, err = run(capsys, "evaluate", str(bad))
    assert code == 2 and "not a readable tinysnn checkpoint" in err


def test_missing_dataset_is_one_line(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("TINYSNN_DATA_DIR", raising=False)
    code, _, err = run(capsys, "train", "--dataset", "mnist", "--data-dir",
                       str(tmp_path / "empty"), "--out", str(tmp_path / "x"))  # fmt: skip
    assert code == 2 and "mnist not found" in err and err.count("\n") == 1


def test_every_command_has_help(capsys) -> None:
    for cmd in ("train", "evaluate", "datasets", "params", "version"):
        code, out, _ = run(capsys, cmd, "--help")
        assert code == 0 and "Usage" in out


def test_datasets_lists_verification(capsys, data_dir: Path) -> None:
    code, out, _ = run(capsys, "datasets", "--data-dir", str(data_dir), "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["mnist"]["verified"] is True and rows["digits"]["verified"] is True


def test_unwritable_out_fails_before_training(capsys, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, out, err = run(capsys, "train", *SMALL, "--out", str(blocker / "sub"))
    assert code == 2 and "cannot write to output folder" in err and err.count("\n") == 1


def test_evaluate_finds_the_training_data_without_data_dir(
    capsys, tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    code, out, err = run(capsys, "train", "--dataset", "mnist", "--data-dir", str(data_dir),
                         "--neurons", "10", "--train-samples", "30", "--test-samples", "30",
                         "--out", str(tmp_path / "m"), "--json")  # fmt: skip
    assert code == 0, err
    monkeypatch.delenv("TINYSNN_DATA_DIR", raising=False)
    code, out2, err = run(capsys, "evaluate", str(tmp_path / "m" / "model.pt"), "--json")
    assert code == 0, err
    assert json.loads(out2)["outcome"]["accuracy"] == json.loads(out)["outcome"]["accuracy"]


def test_evaluate_switches_readout_without_retraining(capsys, tmp_path: Path) -> None:
    rec = train_json(capsys, tmp_path)
    assert rec["config"]["model"]["readout"] == "soft-vote"  # the default
    ck = str(tmp_path / "a" / "model.pt")
    code, out, err = run(capsys, "evaluate", ck, "--readout", "all", "--json")
    assert code == 0, err
    other = json.loads(out)
    assert other["config"]["model"]["readout"] == "all"
    assert other["memory"] == rec["memory"]
    # every record reads the same test counts out every way
    o, r = other["outcome"], rec["outcome"]
    assert o["accuracy"] == o["accuracy_by_readout"]["all"] and o["readout"] == "all"
    assert r["accuracy"] == r["accuracy_by_readout"]["soft-vote"]
    assert o["accuracy_by_readout"] == r["accuracy_by_readout"]
    code, _, err = run(capsys, "evaluate", ck, "--readout", "majority")
    assert code == 2 and "unknown value 'majority'" in err and err.count("\n") == 1


def test_itq_warns_when_thresholds_saturate(capsys, tmp_path: Path) -> None:
    """Integer bits given by hand that are too few for the learned thresholds: `train`
    says so instead of failing silently; with the ranges it observes itself it fits."""
    code, out, err = run(
        capsys, "train", *SMALL, "--out", str(tmp_path / "s"), "--scheme", "itq",
        "--vmem-bits", "8", "--vth-bits", "8", "--vth-int-bits", "7", "--vmem-int-bits", "7",
        "-p", "theta_plus_mv=200",
    )  # fmt: skip
    assert code == 0, err
    assert "warning:" in err and "--vth-int-bits" in err
    rec = json.loads((tmp_path / "s" / "record.json").read_text())
    assert rec["outcome"]["train_vth_clipped_fraction"] > 0  # clipped while learning
    code, out, err = run(
        capsys, "train", *SMALL, "--out", str(tmp_path / "t"), "--scheme", "itq",
        "--vmem-bits", "16", "--vth-bits", "16", "-p", "theta_plus_mv=200",
    )  # fmt: skip
    assert code == 0, err
    rec = json.loads((tmp_path / "t" / "record.json").read_text())
    assert rec["outcome"]["vth_saturated_fraction"] == 0
    assert rec["outcome"]["vmem_saturated_fraction"] == 0
    assert "warning:" not in err


def test_bench_reports_design_batch(capsys) -> None:
    """`bench --design-points K` times K points together and reports their precisions."""
    code, out, _ = run(
        capsys, "bench", "--dataset", "digits", "--neurons", "20", "--steps", "50",
        "--train-images", "5", "--infer-images", "20", "--scheme", "itq",
        "--weight-bits", "8", "--design-points", "3", "--json",
    )  # fmt: skip
    assert code == 0
    res = json.loads(out)
    m = res["design_batch"]
    assert m["design_points"] == 3
    assert [p.split("-")[2] for p in m["precisions"]] == ["w16", "w12", "w10"]
    assert m["train_images_per_s"] > 0 and m["speedup_vs_single"] > 0
    assert res["settings"]["batch_size"] == 256  # the CPU default
    code, _, err = run(
        capsys, "bench", "--dataset", "digits", "--model", "baseline",
        "--design-points", "2", "--train-images", "2", "--infer-images", "2",
    )  # fmt: skip
    assert code == 2 and "--design-points needs the tinysnn model" in err
    code, _, err = run(capsys, "bench", "--dataset", "digits", "--batch-size", "0")
    assert code == 2 and "--batch-size must be >= 1" in err


def test_bench_from_a_trained_checkpoint(capsys, tmp_path: Path, data_dir: Path) -> None:
    """`bench --checkpoint` starts from the trained network and takes its model."""
    rec = train_json(capsys, tmp_path)
    ckpt = tmp_path / "a" / "model.pt"
    code, out, err = run(
        capsys, "bench", "--dataset", "digits", "--checkpoint", str(ckpt),
        "--train-images", "5", "--infer-images", "20", "--json",
    )  # fmt: skip
    assert code == 0, err
    res = json.loads(out)
    assert res["settings"]["neurons"] == rec["design_point"]["neurons"] != 400
    assert res["settings"]["checkpoint"] == str(ckpt)
    assert res["presentations_per_train_image"] >= 1
    code, _, err = run(capsys, "bench", "--dataset", "mnist", "--checkpoint", str(ckpt),
                       "--data-dir", str(data_dir), "--train-images", "2",
                       "--infer-images", "2")  # fmt: skip
    assert code == 2 and "has 64 inputs, mnist has 784" in err
