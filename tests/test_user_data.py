"""A user's own data (issue 27, in part): an .npz array file and a folder of IDX files as
data sets of `train` and of a study, built here in the real formats; every malformed
input a one-line error; a study refuses other data under the same path."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from tinysnn_dse import data as data_mod
from tinysnn_dse.cli import main
from tinysnn_dse.errors import DataError


def _arrays(n_train: int = 300, n_test: int = 60, seed: int = 0) -> dict[str, np.ndarray]:
    """Two-class 3x4 'images': class 1 bright on the left half, class 0 on the right."""
    g = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % 3  # three classes
        x = g.random((n, 3, 4)) * 0.2
        x[y == 1, :, :2] += 0.8
        x[y == 2, :, 2:] += 0.8
        out[f"x_{split}"], out[f"y_{split}"] = x.clip(0, 1).astype(np.float32), y
    return out


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _idx(folder: Path, a: dict[str, np.ndarray], gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)

    def write(name: str, arr: np.ndarray, magic: int) -> None:
        raw = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in arr.shape)
        raw += arr.astype(np.uint8).tobytes()
        if gz:
            with gzip.open(folder / (name + ".gz"), "wb") as f:
                f.write(raw)
        else:
            (folder / name).write_bytes(raw)

    px = {k: np.rint(v * 255) for k, v in a.items() if k.startswith("x")}
    write("train-images-idx3-ubyte", px["x_train"], 2051)
    write("train-labels-idx1-ubyte", a["y_train"], 2049)
    write("t10k-images-idx3-ubyte", px["x_test"], 2051)
    write("t10k-labels-idx1-ubyte", a["y_test"], 2049)
    return folder


def test_npz_and_idx_folders_load_as_8_bit_images(tmp_path: Path) -> None:
    a = _arrays()
    ds = data_mod.load(str(_npz(tmp_path / "d.npz", **a)))
    assert ds.n_in == 12 and ds.n_classes == 3 and ds.train_images.dtype == np.uint8
    # floats in [0, 1] are scaled by 255 and rounded, by hand for one pixel
    assert ds.train_images[0, 0] == round(float(a["x_train"][0, 0, 0]) * 255)
    assert "sha256" in ds.source and "300 train, 60 test" in ds.source
    ints = {k: (np.rint(v * 255).astype(np.int64) if k.startswith("x") else v)
            for k, v in a.items()}  # fmt: skip
    assert np.array_equal(data_mod.load(str(_npz(tmp_path / "i.npz", **ints))).train_images,
                          ds.train_images)  # fmt: skip
    for gz in (True, False):
        idx = data_mod.load(str(_idx(tmp_path / f"idx{gz}", a, gz)))
        assert np.array_equal(idx.train_images, ds.train_images)
        assert np.array_equal(idx.test_labels, a["y_test"]) and idx.n_classes == 3
    # the path is the name; a relative one is made absolute
    assert data_mod.check_name(str(tmp_path / "d.npz")) == str((tmp_path / "d.npz").resolve())


def _bad(tmp_path: Path, what: str) -> Path:
    a = _arrays()
    if what == "missing key":
        del a["y_test"]
    elif what == "lengths":
        a["y_train"] = a["y_train"][:-1]
    elif what == "negative label":
        a["y_test"][0] = -1
    elif what == "class without training sample":
        a["y_test"][0] = 7
    elif what == "nan":
        a["x_train"][3, 1, 1] = np.nan
    elif what == "float out of range":
        a["x_test"][0, 0, 0] = 1.5
    elif what == "empty split":
        a["x_test"], a["y_test"] = a["x_test"][:0], a["y_test"][:0]
    elif what == "shapes":
        a["x_test"] = a["x_test"][:, :, :3]
    elif what == "not an npz":
        p = tmp_path / "junk.npz"
        p.write_bytes(b"not a zip file at all")
        return p
    elif what == "truncated idx":
        folder = _idx(tmp_path / "idx", a, gz=False)
        f = folder / "train-images-idx3-ubyte"
        f.write_bytes(f.read_bytes()[:-5])
        return folder
    elif what == "empty folder":
        (tmp_path / "empty").mkdir()
        return tmp_path / "empty"
    return _npz(tmp_path / "bad.npz", **a)


@pytest.mark.parametrize(
    ("what", "needle"),
    [
        ("missing key", "no y_test array"),
        ("lengths", "x_train has 300 samples but y_train 299 labels"),
        ("negative label", "negative label"),
        ("class without training sample", "class 3 has no training sample"),
        ("nan", "NaN or infinite"),
        ("float out of range", "must lie in [0, 1]"),
        ("empty split", "the test split is empty"),
        ("shapes", "train samples are (3, 4), test (3, 3)"),
        ("not an npz", "not a readable .npz file"),
        ("truncated idx", "IDX payload is"),
        ("empty folder", "no train-images-idx3-ubyte[.gz]"),
    ],
)
def test_malformed_data_is_one_line(tmp_path: Path, what: str, needle: str, capsys) -> None:
    path = _bad(tmp_path, what)
    with pytest.raises(DataError) as e:
        data_mod.load(str(path))
    assert needle in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SystemExit) as ex:  # the command line: exit 2, one line
        main(["train", "--dataset", str(path), "--model", "diet", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert ex.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_train_and_explore_on_the_users_data(tmp_path: Path, capsys) -> None:
    npz = _npz(tmp_path / "d.npz", **_arrays())
    idx = _idx(tmp_path / "idx", _arrays())
    with pytest.raises(SystemExit) as e:
        main(["train", "--dataset", str(npz), "--model", "diet", "--neurons", "16",
              "-p", "epochs=20", "--out", str(tmp_path / "m")])  # fmt: skip
    assert e.value.code == 0, capsys.readouterr().err
    capsys.readouterr()
    import json

    rec = json.loads((tmp_path / "m" / "record.json").read_text())
    assert rec["outcome"]["accuracy"] > 0.9  # three separable classes
    assert "sha256" in rec["config"]["run"]["data_source"]
    for name, path in (("npz", npz), ("idx", idx)):
        space = tmp_path / f"{name}.yaml"
        space.write_text(
            f"study: {name}\ndata: {{dataset: {path}, epochs: 1}}\n"
            "designs:\n  - {model: diet, neurons: 16, params: {epochs: 10}}\n"
            "  - {model: tinysnn, neurons: 10}\n"
        )
        db = f"sqlite:///{tmp_path / 's.db'}"
        args = ["explore", str(space), "--storage", db, "--artifacts", str(tmp_path / "a")]
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 0, capsys.readouterr().err
        capsys.readouterr()
    # other data under the same path: the study refuses it, in one line, and keeps its own
    _npz(npz, **_arrays(seed=1))
    with pytest.raises(SystemExit) as e:
        main(["explore", str(tmp_path / "npz.yaml"), "--storage", db, "--artifacts",
              str(tmp_path / "a")])  # fmt: skip
    err = capsys.readouterr().err
    assert e.value.code == 2 and "another data budget" in err
    assert len(err.strip().splitlines()) == 1


def test_datasets_checks_the_users_data(tmp_path: Path, capsys) -> None:
    good = _npz(tmp_path / "d.npz", **_arrays())
    with pytest.raises(SystemExit) as e:
        main(["datasets", str(good), "--json"])
    assert (e.value.code or 0) == 0
    import json

    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[str(good)]["verified"] and "3 classes" in rows[str(good)]["detail"]
    bad = _bad(tmp_path, "nan")
    with pytest.raises(SystemExit) as e:
        main(["datasets", str(bad)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "NaN or infinite" in err and len(err.strip().splitlines()) == 1
