"""``tinysnn export`` (issue 16): the exported integer C is bit-exact with the simulator
on 1,000 MNIST test images at several formats and both topologies, its accuracy is
``tinysnn evaluate``'s, its parameter bits are Eq. 4's, and bad input is one line."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tinysnn_dse.cli import main
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.export import c as c_mod
from tinysnn_dse.export import export_design, spikes
from tinysnn_dse.runner import (
    evaluate_checkpoint,
    load_checkpoint,
)

CC = shutil.which("cc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc)")
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]


def test_pack_bits_by_hand() -> None:
    """Values 1, 2, 3 at 2 bits: bits 10 01 11 from the least significant end, the byte
    0b111001 = 57; 5 values of 3 bits span two bytes."""
    assert c_mod.pack_bits(np.array([1, 2, 3]), 2) == bytes([0b111001])
    v = np.array([7, 0, 5, 1, 6])
    data = c_mod.pack_bits(v, 3)
    assert len(data) == 2 and data[0] == 0b01_000_111  # 7, 0, then 5's low two bits
    assert c_mod.unpack_bits(data, 3, 5).tolist() == v.tolist()
    assert c_mod.twos(np.array([-1, -128, 127]), 8).tolist() == [255, 128, 127]
    with pytest.raises(ValueError):
        c_mod.pack_bits(np.array([4]), 2)


def _compile(cdir: Path, *extra: str) -> Path:
    exe = cdir / "tinysnn"
    src = [str(cdir / "tinysnn.c"), str(cdir / "main.c")]
    cmd = [CC, *CFLAGS, *extra, "-o", str(exe), *src]
    r = subprocess.run(cmd, capture_output=True, text=True)  # type: ignore[arg-type]
    assert r.returncode == 0, r.stderr
    return exe


def _no_float(cdir: Path) -> None:
    for f in cdir.glob("*.[ch]"):
        text = re.sub(r"/\*.*?\*/", "", f.read_text(), flags=re.S)
        assert not re.search(r"\b(float|double|malloc|calloc|realloc)\b", text), f.name


def _run_c(exe: Path, spikes_bin: Path, *opts: str) -> tuple[list[int], np.ndarray]:
    cmd = [str(exe), str(spikes_bin), "--counts", *opts]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = [list(map(int, line.split())) for line in r.stdout.splitlines()]
    return [x[0] for x in rows], np.array([x[1:] for x in rows])


FORMATS = [
    ("tinysnn", QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16)),
    ("tinysnn", QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=8, vth_bits=8)),
    ("tinysnn", QuantSpec(rounding="stochastic", weight_bits=4, vmem_bits=12, vth_bits=12)),
    ("baseline", QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16)),
    ("baseline", QuantSpec(rounding="truncate", weight_bits=4, vmem_bits=8, vth_bits=8)),
]


#: a membrane floor that binds (lateral inhibition drives potentials far below it), with
#: 8-bit neurons: the case the floor is for (docs/model.md, "Membrane floor")
FLOOR_CASES = [  # floors 15 and 5 mV below rest: at -80 and -70 mV
    ("tinysnn", QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=8, vth_bits=8), 15.0),
    ("tinysnn", QuantSpec(rounding="stochastic", weight_bits=6, vmem_bits=10, vth_bits=10), 5.0),
]


def _with_floor(trained: Any, floor: float | None) -> Any:
    if floor is None:
        return trained
    m = trained.model
    return dataclasses.replace(
        trained, model=dataclasses.replace(m, exc=dataclasses.replace(m.exc, vmem_floor_mv=floor))
    )


@needs_cc
@pytest.mark.slow
@pytest.mark.parametrize(("model", "q", "floor"), [(m, q, None) for m, q in FORMATS] + FLOOR_CASES)
def test_c_is_bit_exact_with_the_simulator(
    model: str,
    q: QuantSpec,
    floor: float | None,
    checkpoints: dict[str, Path],
    data_dir: Path,
    tmp_path: Path,
    ram_matches_object,
) -> None:
    """Compiled with -std=c99 -O2 -Wall -Wextra -Werror, no float or malloc anywhere, on
    the exported spikes of 1,000 MNIST test images: every image's spike count of every
    neuron and its predicted label equal the simulator's; the accuracy of expected.txt
    equals `tinysnn evaluate` under the same options; the parameter arrays and Vmem hold
    exactly Eq. 4's bits (tinySNN; the baseline less its two inhibitory matrices), up to
    the byte padding the README states."""
    trained = _with_floor(load_checkpoint(checkpoints[model]), floor)
    q = dataclasses.replace(q, scheme="ptq")
    res = export_design(trained, q, tmp_path / "out", str(data_dir), 1000)
    cdir = tmp_path / "out" / "c"
    _no_float(cdir)
    exe = _compile(cdir)
    pred, counts = _run_c(exe, cdir / "test_spikes.bin")
    expected = [
        tuple(map(int, x.split())) for x in (cdir / "expected.txt").read_text().split("\n") if x
    ]
    assert len(expected) == 1000 and pred == [e[0] for e in expected]
    # the readout in the NIR file: its table applied to the C's counts gives its labels
    import nir as nir_mod

    gm = nir_mod.read(str(tmp_path / "out" / "model.nir")).metadata
    wr, dv = np.asarray(gm["readout_weight"]), np.asarray(gm["readout_divisor"])
    for c_row, p in zip(counts, pred, strict=True):
        num = wr @ c_row.astype(np.int64)
        best = max(range(len(dv)), key=lambda k: (Fraction(int(num[k]), int(dv[k])), -k))
        assert (best if num[best] > 0 else -1) == p
    # the per-step API (tsnn_begin, then tsnn_step with one step's inputs at a time)
    pred_steps, counts_steps = _run_c(exe, cdir / "test_spikes.bin", "--per-step")
    assert pred_steps == pred and np.array_equal(counts_steps, counts)
    # the simulator's counts of each image's last presentation, from the same evaluation
    ev = evaluate_checkpoint(trained, q, str(data_dir), 1000)
    if floor is not None:  # the floor binds: without it the same design counts otherwise
        free = evaluate_checkpoint(load_checkpoint(checkpoints[model]), q, str(data_dir), 1000)
        assert free.test_counts is not None and ev.test_counts is not None
        assert not torch.equal(free.test_counts, ev.test_counts)
        import nir  # the NIR says the floor it cannot express, relative to the resting

        # level on the grid (its voltage origin): in absolute mV, the floor asked for put
        # onto the Vmem grid upwards (at most one step above it)
        meta = nir.read(str(tmp_path / "out" / "model.nir")).nodes["exc"].metadata
        step = 2.0**-res.design.vmem.frac_bits  # type: ignore[union-attr]
        want = trained.model.exc.v_rest_mv - floor
        assert want <= meta["v_floor"] + meta["v_rest_mv"] < want + step
    assert ev.test_counts is not None
    assert counts.shape == (1000, 100) and counts.sum() > 1000
    assert np.array_equal(counts, ev.test_counts.numpy().astype(np.int64))
    acc = float(np.mean([p == y for p, y in expected]))
    assert acc == pytest.approx(ev.record.outcome.accuracy, abs=0) == res.accuracy
    assert ev.record.backend["infer_datapath"] == "integer"
    # memory map: the exported bits against Eq. 4
    readme = (tmp_path / "out" / "README.md").read_text()
    eq4 = ev.record.memory.bits
    m = re.search(r"\| \*\*total\*\* \| \| \| \*\*([\d,]+)\*\* \| \*\*([\d,]+)\*\* \|", readme)
    assert m is not None
    bits, nbytes = int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))
    inh = 2 * 100 * 100 * q.weight_bits if model == "baseline" else 0  # type: ignore[operator]
    assert bits == eq4 - inh
    assert res.parameter_bytes == nbytes and 0 <= nbytes * 8 - bits < 8 * 8 + 100 * 2 * 16
    # RAM: the state arrays the README lists are the compiled object's, byte for byte
    arrays = ram_matches_object(cdir, "tinysnn.c", ("tinysnn.h", "model.h", "tsnn_common.h"))
    m = re.search(r"\| \*\*total\*\* \| \| \| \*\*([\d,]+)\*\* \|\n", readme)
    assert m is not None and int(m.group(1).replace(",", "")) == sum(a.bytes for a in arrays)
    names = {a.name for a in arrays}
    assert ({"vi", "ithr"} <= names) == (model == "baseline")  # the inhibitory layer's state
    ram_matches_object(cdir, "main.c", ("tinysnn.h", "model.h", "tsnn_common.h"))


@needs_cc
@pytest.mark.slow
@pytest.mark.parametrize(("prune", "storage"), [(0.5, "bitmap"), (0.95, "csr")])
def test_pruned_storage_is_bit_exact(
    prune: float,
    storage: str,
    checkpoints: dict[str, Path],
    data_dir: Path,
    tmp_path: Path,
    ram_matches_object,
) -> None:
    """A magnitude-pruned network exports its weights in the record's sparse form (bitmap
    at 0.5, CSR at 0.95 of 784 inputs), with exactly Eq. 4's bits, and stays bit-exact."""
    trained = load_checkpoint(checkpoints["tinysnn"])
    ln = dataclasses.replace(trained.model.learning, prune=prune, prune_method="magnitude")
    trained = dataclasses.replace(trained, model=dataclasses.replace(trained.model, learning=ln))
    q = QuantSpec(rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16)
    export_design(trained, q, tmp_path / "out", str(data_dir), 300)
    rec = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert rec["memory"]["detail"]["memory_format"] == storage
    cdir = tmp_path / "out" / "c"
    assert f"TSNN_W_STORAGE {c_mod.STORAGE_CODES[storage]}" in (cdir / "model.h").read_text()
    pred, _ = _run_c(_compile(cdir), cdir / "test_spikes.bin")
    expected = [int(x.split()[0]) for x in (cdir / "expected.txt").read_text().split("\n") if x]
    assert pred == expected
    readme = (tmp_path / "out" / "README.md").read_text()
    m = re.search(r"\| \*\*total\*\* \| \| \| \*\*([\d,]+)\*\*", readme)
    assert m is not None and int(m.group(1).replace(",", "")) == rec["memory"]["bits"]
    arrays = ram_matches_object(cdir, "tinysnn.c", ("tinysnn.h", "model.h", "tsnn_common.h"))
    extra = {"bitmap": "row_start", "csr": "active"}[storage]  # each storage's own state
    assert extra in {a.name for a in arrays}


def test_spike_file_roundtrip(tmp_path: Path) -> None:
    from tinysnn_dse.core.encoding import SpikeTrains

    cap = spikes.CapturedImages(2, 4)
    img = torch.tensor([0, 0, 1])
    pix = torch.tensor([3, 5, 1])
    sp = torch.tensor([[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1]], dtype=torch.bool)
    cap(torch.tensor([0, 1]), 0, SpikeTrains(img, pix, sp, (2, 4, 6)), None)
    cap(torch.tensor([1]), 1, SpikeTrains(torch.tensor([0]), torch.tensor([2]),
                                          torch.ones(1, 4, dtype=torch.bool), (1, 4, 6)),
        np.array([-3]))  # fmt: skip
    spikes.write(tmp_path / "s.bin", cap, np.array([7, 9]), 6, 3)
    sf = spikes.read(tmp_path / "s.bin")
    assert sf.labels == [7, 9] and [len(p) for p in sf.images] == [1, 2]
    p0 = sf.images[0][0]
    assert p0.step_spikes.tolist() == [2, 1, 1, 0] and p0.inputs.tolist() == [3, 5, 5, 3]
    assert sf.images[1][1].key == 2**64 - 3  # the int64 key's two's complement
    assert sf.images[1][0].dense(6)[3].tolist() == [False, True, False, False, False, False]
    (tmp_path / "bad.bin").write_bytes(b"TSNNSPK1" + bytes(7))
    with pytest.raises(spikes.SpikeFileError, match="truncated header"):
        spikes.read(tmp_path / "bad.bin")


# ------------------------------------------------------------------ bad input


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    return int(e.value.code or 0), capsys.readouterr().err


def test_export_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], checkpoints: dict[str, Path]
) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    out = tmp_path / "out"
    code, err = _cli(["export", str(junk), "--out", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1 and "not a readable tinysnn checkpoint" in err
    assert not out.exists()
    ck = str(checkpoints["tinysnn"])
    code, err = _cli(["export", ck, "--out", str(out), "--scheme", "ptq", "--weight-bits", "8"],
                     capsys)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "--vmem-bits, --vth-bits FP32" in err
    assert not out.exists()
    code, err = _cli(["export", ck, "--out", str(out), "--scheme", "ptq", "--weight-bits", "40",
                      "--vmem-bits", "16", "--vth-bits", "16"], capsys)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "weight" in err
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, err = _cli(["export", ck, "--out", str(blocker / "x"), "--scheme", "ptq",
                      "--weight-bits", "8", "--vmem-bits", "16", "--vth-bits", "16"],
                     capsys)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "cannot write" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "junk.pt"]


# ------------------------------------------------------------------ the commands


@needs_cc
def test_train_then_export_on_digits(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`tinysnn train` a fixed-point design on the embedded digits set, `tinysnn export` it
    as trained (the default 1,000 test images, clamped to digits' 360): the files the
    README lists, the C bit-exact with expected.txt, the accuracy `tinysnn evaluate`
    gives."""
    out = tmp_path / "run"
    q = ["--scheme", "ptq", "--weight-bits", "8", "--vmem-bits", "16", "--vth-bits", "16"]
    code, _ = _cli(["train", "--dataset", "digits", "--neurons", "30", "--train-samples",
                    "600", "--out", str(out), *q], capsys)  # fmt: skip
    assert code == 0
    capsys.readouterr()
    exp = tmp_path / "exp"
    with pytest.raises(SystemExit) as e:
        main(["export", str(out / "model.pt"), "--out", str(exp)])
    assert e.value.code == 0
    said = capsys.readouterr().out
    assert "accuracy on the first 360 test images" in said
    files = ["model.nir", "README.md", "evaluation.json"] + [
        f"c/{f}"
        for f in (
            "model.h",
            "model_data.h",
            "tinysnn.c",
            "tinysnn.h",
            "main.c",
            "test_spikes.bin",
            "expected.txt",
        )  # fmt: skip
    ]
    for f in files:
        assert (exp / f).is_file(), f
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    cdir = exp / "c"
    pred, _ = _run_c(_compile(cdir), cdir / "test_spikes.bin")
    expected = [
        tuple(map(int, x.split())) for x in (cdir / "expected.txt").read_text().splitlines()
    ]
    assert pred == [p for p, _ in expected] and len(pred) == 360
    with pytest.raises(SystemExit):
        main(["evaluate", str(out / "model.pt"), "--json", *q])
    rec = json.loads(capsys.readouterr().out)
    acc = np.mean([p == y for p, y in expected])
    assert rec["outcome"]["accuracy"] == pytest.approx(acc, abs=1e-12)
    trained_rec = json.loads((out / "record.json").read_text())  # train's own evaluation
    assert trained_rec["outcome"]["accuracy"] == pytest.approx(acc, abs=1e-12)
    readme = (exp / "README.md").read_text()
    for needle in ("## Memory map", "Eq. 4", "cc -std=c99", "uQ1.7", "TSNNSPK1", "nir.read",
                   "### RAM", "-DTSNN_FLASH=PROGMEM", "tsnn_hash(ukey, 0, b)"):  # fmt: skip
        assert needle in readme
    # the flash hooks (issue 26 item 5): the packed arrays in a section of their own, read
    # through a reader of our own, give the same labels; the readout tables stay plain
    flash = ['-DTSNN_FLASH=__attribute__((section(".tsnn_flash")))',
             "-DTSNN_FLASH_BYTE(p)=(*(const volatile uint8_t *)(p))"]  # fmt: skip
    exe = _compile(cdir, *flash)
    assert _run_c(exe, cdir / "test_spikes.bin")[0] == pred
    syms = subprocess.run(["objdump", "-t", str(exe)], capture_output=True, text=True).stdout
    in_flash = {line.split()[-1] for line in syms.splitlines() if ".tsnn_flash" in line}
    assert {"tsnn_w", "tsnn_vth"} <= in_flash and "tsnn_label" not in in_flash


@needs_cc
def test_select_export_writes_nir_and_c(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`tinysnn select --export DIR` of a fixed-point design writes the study's checkpoint
    and record and, beside them, what `tinysnn export` writes."""
    space = tmp_path / "one.yaml"
    space.write_text(
        "study: one\ndata: {dataset: digits, train_samples: 400, test_samples: 100}\n"
        "designs:\n  - {model: tinysnn, neurons: 20, scheme: ptq, rounding: nearest, "
        "weight_bits: 8, neuron_bits: 16}\n"
    )
    url = f"sqlite:///{tmp_path / 'one.db'}"
    code, err = _cli(["explore", str(space), "--storage", url], capsys)
    assert code == 0, err
    exp = tmp_path / "chosen"
    code, err = _cli(["select", "--storage", url, "--export", str(exp),
                      "--export-test-samples", "50"], capsys)  # fmt: skip
    assert code == 0, err
    rec = json.loads((exp / "record.json").read_text())
    assert rec["study"]["trial_number"] == 0 and (exp / "model.pt").is_file()
    ev = json.loads((exp / "evaluation.json").read_text())
    assert ev["design_point"]["key"] == rec["design_point"]["key"]
    cdir = exp / "c"
    pred, _ = _run_c(_compile(cdir), cdir / "test_spikes.bin")
    assert pred == [int(x.split()[0]) for x in (cdir / "expected.txt").read_text().splitlines()]
