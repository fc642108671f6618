"""Trained checkpoints the export tests share (trained once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.runner import RunSettings, save, train_and_evaluate


@pytest.fixture(scope="session")
def checkpoints(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tinySNN network (100 neurons, 1,000 MNIST images) and a baseline one (100
    neurons, 300 images), FP32-trained, saved as `tinysnn train` saves them."""
    out: dict[str, Path] = {}
    for model, n_train in (("tinysnn", 1000), ("baseline", 300)):
        cfg = preset(model, 784, 100, "mnist")
        s = RunSettings(dataset="mnist", train_samples=n_train, test_samples=100, seed=1,
                        threads=2).validate()  # fmt: skip
        trained, ev = train_and_evaluate(cfg, QuantSpec(), s, str(data_dir))
        d = tmp_path_factory.mktemp(model)
        out[model] = save(d, trained, ev)[0]
    return out


@pytest.fixture(scope="session")
def ram_matches_object():
    """``check(cdir, source, headers)``: the memory map's RAM arrays of ``source``
    (export/ram.py, read from the sources) against the compiled object's symbols
    (``nm -S``): the same arrays, each of the same size (issue 26 item 2)."""
    import shutil
    import subprocess

    from tinysnn_dse.export import ram

    cc, nm = shutil.which("cc"), shutil.which("nm")
    if cc is None or nm is None:
        pytest.skip("no C compiler or nm")

    def check(cdir: Path, source: str, headers: tuple[str, ...]) -> list[ram.RamArray]:
        arrays = ram.of_export(cdir, source, headers)
        obj = cdir / (Path(source).stem + ".ram.o")
        # no PIC: const data with pointers (a layer table) stays read-only, as on an MCU
        cmd = [cc, "-std=c99", "-O0", "-fno-pic", "-c", "-o", str(obj), str(cdir / source)]
        subprocess.run(cmd, check=True, capture_output=True)
        out = subprocess.run([nm, "-S", "--defined-only", str(obj)], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        obj.unlink()
        data = {}  # local data symbols: name -> size (bss, data)
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[2] in ("b", "B", "d", "D"):
                data[parts[3]] = int(parts[1], 16)
        assert {a.name: a.bytes for a in arrays} == data
        return arrays

    return check
