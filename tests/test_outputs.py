"""Failure paths of what the commands write (issue 29): a full disk, a user's files in the
way, options that fail after writing, non-finite checkpoints, a corrupt training cache.

Each command that writes is run in-process through ``cli.main``; a user error must be one
``error:`` line with exit 2 and leave nothing behind (no partial file, no temp file, no
truncated checkpoint). The full disk is a real 3 MB tmpfs, filled up, where this process
may mount one (root); elsewhere an ENOSPC injected into ``os.replace`` for paths on it.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import yaml

from tinysnn_dse import explore as explore_mod
from tinysnn_dse import runner
from tinysnn_dse.cli import main
from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.errors import CheckpointError, OutputError
from tinysnn_dse.explore.policy import Trainings
from tinysnn_dse.explore.space import parse_space
from tinysnn_dse.records import Record

SMALL = ["--dataset", "digits", "--neurons", "10", "--train-samples", "50",
         "--test-samples", "50", "--device", "cpu"]  # fmt: skip
Q8 = ["--scheme", "ptq", "--weight-bits", "8", "--vmem-bits", "16", "--vth-bits", "16"]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Exit code and stderr of ``tinysnn ARGS`` run in this process."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    return int(e.value.code or 0), capsys.readouterr().err


def one_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for n in needles:
        assert n in err, err


def tree(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


# ------------------------------------------------------------------------------ fixtures


class Disk:
    """A folder on a small file system that ``fill()`` makes full."""

    def __init__(self, root: Path, mounted: bool, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root, self.mounted, self._mp = root, mounted, monkeypatch

    def fill(self) -> None:
        if self.mounted:
            chunk = b"\0" * 65536
            with open(self.root / "filler", "wb", buffering=0) as fh:
                try:
                    while True:
                        fh.write(chunk)
                except OSError as e:
                    assert e.errno == errno.ENOSPC
            return
        real, root = os.replace, str(self.root.resolve())

        def replace(src: object, dst: object, *a: object, **k: object) -> None:
            if os.path.realpath(os.fspath(dst)).startswith(root):  # type: ignore[arg-type]
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
            real(src, dst, *a, **k)  # type: ignore[arg-type]

        self._mp.setattr(os, "replace", replace)

    def left(self) -> list[str]:
        """What is on the disk apart from the filler."""
        return [p for p in tree(self.root) if p != "filler"]


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    root = tmp_path / "small-disk"
    root.mkdir()
    try:
        mounted = os.geteuid() == 0 and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(root)], capture_output=True
        ).returncode == 0  # fmt: skip
    except OSError:  # no mount command
        mounted = False
    try:
        yield Disk(root, mounted, monkeypatch)
    finally:
        monkeypatch.undo()
        if mounted:
            subprocess.run(["umount", "-l", str(root)], check=False)


def _train(tmp_path_factory: pytest.TempPathFactory, q: QuantSpec) -> Path:
    cfg = preset("tinysnn", 64, 10, "digits")
    s = runner.RunSettings(dataset="digits", train_samples=50, test_samples=50, device="cpu")
    trained, ev = runner.train_and_evaluate(cfg, q, s.validate())
    d = tmp_path_factory.mktemp("trained")
    runner.save(d, trained, ev)
    return d


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small fixed-point (PTQ W8/V16/T16) digits model, saved as `tinysnn train` does."""
    q = QuantSpec(scheme="ptq", rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16)
    return _train(tmp_path_factory, q)


@pytest.fixture(scope="module")
def fp32_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same network in FP32 (`select --export` writes no C for it)."""
    return _train(tmp_path_factory, QuantSpec())


@pytest.fixture(params=["fixed-point", "fp32"])
def study(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., list[str]]:
    """A one-point study whose checkpoint is a trained one, fixed-point or FP32 (no
    Optuna: `select`'s and `report`'s reading of the study is replaced); returns the
    storage options."""
    fixture = "trained_dir" if request.param == "fixed-point" else "fp32_dir"
    trained_dir: Path = request.getfixturevalue(fixture)
    rec = Record.from_dict(json.loads((trained_dir / "record.json").read_text()))
    rec = rec.with_study(rec.design_point, trial_number=0, checkpoint_artifact="ck")
    art = tmp_path / "art"
    (art / "checkpoints").mkdir(parents=True)
    (art / "checkpoints" / "ck").write_bytes((trained_dir / "model.pt").read_bytes())
    monkeypatch.setattr(explore_mod, "load_records", lambda url, name=None: ("s", [rec]))
    monkeypatch.setattr(explore_mod, "hypervolume_history", lambda url, name, ref: [(0, 0.5)])

    def opts(*extra: str) -> list[str]:
        with_art = ["--artifacts", str(art)] if extra[0] == "--export" else []
        return ["--storage", f"sqlite:///{tmp_path / 'never.db'}", *with_art, *extra]

    return opts


# ----------------------------------------------------------------------- a full disk


def test_train_on_a_full_disk_keeps_the_previous_run(
    capsys: pytest.CaptureFixture[str], disk: Disk
) -> None:
    """`train --out` on a full disk: one line, the previous run's checkpoint and record
    intact (not truncated), no temporary file; a new folder is not left behind."""
    run = disk.root / "run"
    code, err = cli(capsys, "train", *SMALL, "--out", run)
    assert code == 0, err
    before = {p: (run / p).read_bytes() for p in ("model.pt", "record.json")}
    disk.fill()
    code, err = cli(capsys, "train", *SMALL, "--seed", "1", "--out", run)
    one_error(code, err, "model.pt", "no space left on the device")
    assert {p: (run / p).read_bytes() for p in before} == before
    assert disk.left() == ["run", "run/model.pt", "run/record.json"]
    code, err = cli(capsys, "train", *SMALL, "--out", disk.root / "new")
    one_error(code, err, "no space left on the device")
    assert disk.left() == ["run", "run/model.pt", "run/record.json"]


def test_export_on_a_full_disk(
    capsys: pytest.CaptureFixture[str], disk: Disk, trained_dir: Path
) -> None:
    disk.fill()
    code, err = cli(capsys, "export", trained_dir / "model.pt", "--out", disk.root / "exp",
                    "--test-samples", "5")  # fmt: skip
    one_error(code, err, "no space left on the device")
    assert disk.left() == []


def test_report_on_a_full_disk(
    capsys: pytest.CaptureFixture[str], disk: Disk, study: Callable[..., list[str]]
) -> None:
    """No 0-byte figure, no half report."""
    disk.fill()
    code, err = cli(capsys, "report", *study("--out", str(disk.root / "rep")))
    one_error(code, err, "no space left on the device")
    assert disk.left() == []


def test_select_export_on_a_full_disk(
    capsys: pytest.CaptureFixture[str], disk: Disk, study: Callable[..., list[str]]
) -> None:
    disk.fill()
    code, err = cli(capsys, "select", *study("--export", str(disk.root / "sel"),
                                             "--export-test-samples", "5"))  # fmt: skip
    one_error(code, err, "no space left on the device")
    assert disk.left() == []


def test_save_trained_on_a_full_disk_is_one_line(disk: Disk, trained_dir: Path) -> None:
    """The shared-training cache (runner.save_trained): an OutputError, no temp file."""
    t = runner.load_checkpoint(trained_dir / "model.pt")
    disk.fill()
    with pytest.raises(OutputError, match="no space left on the device"):
        runner.save_trained(disk.root / "trainings" / "x.pt", t)
    assert disk.left() == []  # nor the folder made for it
    with (
        pytest.raises(OutputError, match="cannot write the trial's checkpoint: no space left"),
        runner.write_guard("the trial's checkpoint"),
    ):
        raise OSError(errno.ENOSPC, "No space left on device")


# ------------------------------------------------------------------ users' files


def test_export_refuses_a_non_empty_folder_without_force(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained_dir: Path
) -> None:
    ck = trained_dir / "model.pt"
    out = tmp_path / "exp"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, err = cli(capsys, "export", ck, "--out", out, "--test-samples", "5")
    one_error(code, err, "notes.txt", "--force")
    assert tree(out) == ["notes.txt"]
    (out / "notes.txt").unlink()
    (out / "README.md").write_text("my readme")
    code, err = cli(capsys, "export", ck, "--out", out, "--test-samples", "5")
    one_error(code, err, "README.md", "--force")
    assert (out / "README.md").read_text() == "my readme"
    code, err = cli(capsys, "export", ck, "--out", out, "--test-samples", "5", "--force")
    assert code == 0, err
    assert (out / "README.md").read_text().startswith("# Exported design")
    assert (out / "c" / "expected.txt").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_report_refuses_to_replace_a_users_file_without_force(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, study: Callable[..., list[str]]
) -> None:
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "notes.txt").write_text("mine")  # not a file the report writes: kept, no clash
    (rep / "index.html").write_text("my page")
    code, err = cli(capsys, "report", *study("--out", str(rep)))
    one_error(code, err, "index.html", "--force")
    assert tree(rep) == ["index.html", "notes.txt"]
    code, err = cli(capsys, "report", *study("--out", str(rep), "--force"))
    assert code == 0, err
    assert "my page" not in (rep / "index.html").read_text()
    assert (rep / "notes.txt").read_text() == "mine" and (rep / "fig6_accuracy.png").is_file()
    assert not [p for p in rep.iterdir() if p.name.startswith(".")]
    # an earlier tinysnn report is its own: re-running `report` (make demo) replaces it
    code, err = cli(capsys, "report", *study("--out", str(rep)))
    assert code == 0, err


def test_select_export_refuses_a_users_file_and_bad_options_before_writing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, study: Callable[..., list[str]]
) -> None:
    dest = tmp_path / "sel"
    code, err = cli(capsys, "select", *study("--export", str(dest), "--export-test-samples", "0"))
    one_error(code, err, "at least 1")
    assert not dest.exists()
    dest.mkdir()
    (dest / "record.json").write_text("{}")
    code, err = cli(capsys, "select", *study("--export", str(dest), "--export-test-samples", "5"))
    one_error(code, err, "record.json", "--force")
    assert tree(dest) == ["record.json"]
    code, err = cli(capsys, "select", *study("--export", str(dest), "--export-test-samples", "5",
                                             "--force"))  # fmt: skip
    assert code == 0, err
    assert json.loads((dest / "record.json").read_text())["study"]["trial_number"] == 0
    fp32 = "has FP32 parts" in err
    assert (dest / "model.pt").is_file() and (dest / "c" / "test_spikes.bin").is_file() != fp32


# --------------------------------------------------------------- non-finite checkpoints


@pytest.mark.parametrize(("field", "value"), [("w", float("nan")), ("theta", float("inf"))])
def test_non_finite_checkpoint_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained_dir: Path, field: str,
    value: float,
) -> None:  # fmt: skip
    p = torch.load(trained_dir / "model.pt", weights_only=True)
    p[field].view(-1)[3] = value
    bad = tmp_path / "bad.pt"
    torch.save(p, bad)
    with pytest.raises(CheckpointError, match="non-finite"):
        runner.load_checkpoint(bad)
    code, err = cli(capsys, "evaluate", bad)
    one_error(code, err, str(bad), "non-finite")
    code, err = cli(capsys, "export", bad, "--out", tmp_path / "exp")
    one_error(code, err, str(bad), "non-finite")
    assert not (tmp_path / "exp").exists()


# ------------------------------------------------------------ the shared-training cache

SPACE = """
study: heal
data: {dataset: digits, train_samples: 40, test_samples: 20}
itq_batch: 2
designs:
  - {model: tinysnn, neurons: 8, scheme: ptq, rounding: nearest, weight_bits: [fp32, 8]}
  - {model: tinysnn, neurons: 8, scheme: itq, rounding: nearest, weight_bits: [8, 6]}
"""


def trainings(tmp: Path) -> Trainings:
    sp = parse_space(yaml.safe_load(SPACE), "heal")
    s = runner.RunSettings(dataset="digits", train_samples=40, test_samples=20, device="cpu")
    return Trainings(sp, s, tmp / "art")


@pytest.mark.parametrize("corruption", [b"not a checkpoint", None])
def test_a_corrupt_training_cache_is_moved_aside_and_retrained(
    tmp_path: Path, corruption: bytes | None
) -> None:
    """A cached shared training that no longer loads (garbage, or NaN weights) is renamed
    ``<name>.corrupt-<time>`` and made again, so the points that need it complete."""
    t = trainings(tmp_path)
    pts = {p.key: p for p in t.space.points}
    ptq = pts["tinysnn-n8-ptq-nearest-w8-vfp32-tfp32"]
    itq = [p for k, p in pts.items() if "-itq-" in k]
    assert len(itq) == 2 and len(t.space.itq_group(itq[0])) == 2
    first, _, _ = t.train_point(ptq)
    for p in itq:
        t.train_point(p)
    cache = tmp_path / "art" / "trainings"
    files = sorted(cache.glob("*.pt"))
    assert len(files) == 3
    for f in files:
        if corruption is None:
            p = torch.load(f, weights_only=True)
            p["w"].view(-1)[0] = float("nan")
            torch.save(p, f)
        else:
            f.write_bytes(corruption)
    again = trainings(tmp_path)  # the next run
    tr, _q, shared = again.train_point(ptq)
    assert not shared and tr.net.w.equal(first.net.w)  # retrained, same seed
    for p in itq:
        tr, _q, _s = again.train_point(p)
        assert torch.isfinite(tr.net.w).all()
    aside = sorted(cache.glob("*.corrupt-*"))
    assert len(aside) == 3 and {a.name.split(".corrupt-")[0] for a in aside} == {
        f.name for f in files
    }
    for f in files:
        runner.load_checkpoint(f)  # healed
