"""The counter encoder and its C (issue 26 item 3): the simulator's inference draws its
input spikes from (image key, boost, step, input) by integer thresholds, and the
exported C, given only each image's pixels and key, draws the same spikes, runs the same
re-presentations and prints the simulator's classes and counts."""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from tinysnn_dse.cli import main
from tinysnn_dse.core import kernels
from tinysnn_dse.core.encoding import counter_thresholds, counter_trains
from tinysnn_dse.core.params import apply_overrides, preset

CC = shutil.which("cc")
M64 = 2**64 - 1


def splitmix(key: int, a: int, b: int) -> int:
    """kernels.hash_bits in Python integers mod 2**64 (the formula of its docstring)."""
    z = (key + (a * 2654435761 + b + 1) * 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def cfg_counter():  # type: ignore[no-untyped-def]
    return apply_overrides(preset("tinysnn", 784, 10, "mnist"), {"encoder": "counter"})


def test_thresholds_are_the_exact_rate() -> None:
    """thr[P] = floor(P / 255 x (128 + 32 b) Hz x 1 ms x 2**24), by exact integers."""
    cfg = cfg_counter()
    assert cfg.encoding.max_rate_hz == 128 and cfg.encoding.rate_boost_hz == 32
    for b in (0, 1, 8):
        thr = counter_thresholds(cfg, b)
        rate = Fraction(128 + 32 * b, 1000)
        want = [int(Fraction(p, 255) * min(rate, Fraction(1)) * 2**24) for p in range(256)]
        assert thr.tolist() == want
    assert counter_thresholds(cfg, 0)[0] == 0  # a dark pixel never spikes


def test_trains_follow_the_integer_formula_and_the_rate() -> None:
    cfg = cfg_counter()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 784, generator=g)
    x[x < 0.5] = 0.0
    keys = np.array([kernels.image_key(12345, i) for i in range(40)], dtype=np.int64)
    thr = counter_thresholds(cfg, 1)
    tr = counter_trains(x, 250, thr, keys, boost=1)
    dense = tr.dense().numpy()  # [B, T, n]
    codes = torch.round(x.double() * 255).long().numpy()
    # a few spikes by the formula, in Python integers
    for b, t, i in ((0, 0, int(np.flatnonzero(codes[0])[0])), (7, 249, 300), (39, 17, 783)):
        s = splitmix(int(np.uint64(np.int64(keys[b]))), kernels.ENCODER_STREAM + 1, 0)
        u = splitmix(s, t, i) >> 40
        assert dense[b, t, i] == (u < thr[codes[b, i]])
    # the rate: spikes over 250 steps within 5 standard deviations of P / 255 x 0.16
    p = codes / 255.0 * 0.16
    n_spk = dense.sum(axis=1)
    mean, sd = 250 * p.sum(), np.sqrt(250 * (p * (1 - p)).sum())
    assert abs(n_spk.sum() - mean) < 5 * sd
    # the same key draws the same trains; another boost, others
    again = counter_trains(x, 250, thr, keys, boost=1).dense().numpy()
    other = counter_trains(x, 250, thr, keys, boost=2).dense().numpy()
    assert np.array_equal(dense, again) and not np.array_equal(dense, other)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


@pytest.fixture(scope="module")
def counter_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("enc")
    with pytest.raises(SystemExit) as e:
        main(["train", "--dataset", "digits", "--neurons", "40", "--threads", "1", "-p",
              "encoder=counter", "--out", str(root / "m")])  # fmt: skip
    assert (e.value.code or 0) == 0
    return root / "m" / "model.pt"


@pytest.mark.skipif(CC is None, reason="no C compiler (cc)")
@pytest.mark.parametrize(
    ("rounding", "bits"), [("nearest", ("8", "16", "16")), ("stochastic", ("6", "12", "12"))]
)
def test_the_chip_encodes_pixels_as_the_simulator(
    capsys, tmp_path: Path, counter_model: Path, rounding: str, bits: tuple[str, str, str]
) -> None:
    out = tmp_path / "x"
    code, _o, err = cli(capsys, "export", str(counter_model), "--out", str(out), "--rounding",
                        rounding, "--weight-bits", bits[0], "--vmem-bits", bits[1],
                        "--vth-bits", bits[2], "--test-samples", "360")  # fmt: skip
    assert code == 0, err
    c = out / "c"
    assert "#define TSNN_ENCODER_COUNTER 1" in (c / "model.h").read_text()
    exe = c / "tinysnn"
    subprocess.run([CC, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
                    str(c / "tinysnn.c"), str(c / "main.c")], check=True,
                   capture_output=True)  # fmt: skip

    def run(name: str) -> list[str]:
        res = subprocess.run([str(exe), str(c / name), "--counts"], check=True,
                             capture_output=True, text=True)  # fmt: skip
        return res.stdout.splitlines()

    from_pixels, from_spikes = run("test_pixels.bin"), run("test_spikes.bin")
    assert len(from_pixels) == 360
    assert from_pixels == from_spikes  # every neuron's count of every image's last presentation
    expected = [line.split()[0] for line in (c / "expected.txt").read_text().splitlines()]
    assert [line.split()[0] for line in from_pixels] == expected
    readme = (out / "README.md").read_text()
    assert "tsnn_enc_thr" in readme and "test_pixels.bin" in readme


def test_a_geometric_design_has_no_encoder(capsys, tmp_path: Path) -> None:
    code, _o, err = cli(capsys, "train", "--dataset", "digits", "--neurons", "10", "--threads",
                        "1", "--out", str(tmp_path / "m"))  # fmt: skip
    assert code == 0, err
    code, _o, err = cli(capsys, "export", str(tmp_path / "m" / "model.pt"), "--out",
                        str(tmp_path / "x"), "--weight-bits", "8", "--vmem-bits", "16",
                        "--vth-bits", "16", "--test-samples", "5")  # fmt: skip
    assert code == 0, err
    assert "#define TSNN_ENCODER_COUNTER 0" in (tmp_path / "x" / "c" / "model.h").read_text()
    assert not (tmp_path / "x" / "c" / "test_pixels.bin").exists()
    code, _o, err = cli(capsys, "train", "--dataset", "digits", "-p", "encoder=lfsr", "--out",
                        str(tmp_path / "bad"))  # fmt: skip
    assert code == 2 and "unknown encoder" in err and len(err.strip().splitlines()) == 1
