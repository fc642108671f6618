"""Event data sets through tonic (issue 27): N-MNIST, DVS Gesture and SHD folders written
here in their real formats (tests/event_files.py), binned by tonic's transforms; the
gradient-trained family takes the frames in time, the STDP family the event counts as
rates; every malformed input a one-line error; the integer C of an event design is
bit-exact with the simulator."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tonic")
sys.path.insert(0, str(Path(__file__).parent))

import event_files as ef  # noqa: E402

from tinysnn_dse import data as data_mod  # noqa: E402
from tinysnn_dse import event_data  # noqa: E402
from tinysnn_dse.cli import main  # noqa: E402
from tinysnn_dse.errors import ConfigError, DataError  # noqa: E402

CC = shutil.which("cc")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("events")
    return {
        "nmnist": ef.write_nmnist(root / "NMNIST"),
        "dvs": ef.write_dvsgesture(root / "gestures"),  # any folder name
        "shd": ef.write_shd(root / "SHD"),
    }


@pytest.mark.parametrize(
    ("kind", "n_in", "classes", "counts"),
    [("nmnist", 2 * 34 * 34, 10, (80, 40)), ("dvs", 2 * 128 * 128, 11, (33, 22)),
     ("shd", 700, 20, (60, 40))],
)  # fmt: skip
def test_each_kind_loads_through_tonic(folders: dict[str, Path], kind: str, n_in: int,
                                       classes: int, counts: tuple[int, int]) -> None:  # fmt: skip
    name = data_mod.check_name(str(folders[kind]))
    assert name.endswith("#time_bins=8,spatial_factor=1") and data_mod.is_event_data(name)
    ds = data_mod.load(name)
    assert ds.n_in == n_in and ds.n_classes == classes and ds.time_bins == 8
    assert (len(ds.train_images), len(ds.test_images)) == counts
    assert ds.train_frames is not None and ds.train_frames.shape == (counts[0], 8, n_in)
    assert set(np.unique(ds.train_frames)) <= {0, 1}
    # every sample has events: its busiest input is the rate 255
    assert (ds.train_images.max(axis=1) == 255).all()
    # the rate is the share of the sample's largest count, within rounding: frames are
    # binary, so an input's count is at least its number of active bins
    assert (ds.train_frames.sum(axis=1) > 0).sum() == (ds.train_images > 0).sum()
    assert "through tonic" in ds.source and "8 time bins" in ds.source
    assert data_mod.fingerprint(name) == data_mod.fingerprint(str(folders[kind]))


def test_binning_against_a_hand_count(tmp_path: Path) -> None:
    """Four events, two bins: tonic's bins are [t0, t0 + w) and [t0 + w, t0 + 2w) with w =
    (t_last - t0) // 2, so the last event (at t0 + 2w) falls outside both."""
    ev = [(3, 4, 1, 0), (3, 4, 1, 10), (33, 0, 0, 60), (5, 5, 0, 100)]  # x, y, p, t (us)
    for split in ("Train", "Test"):
        for c in (0, 1):
            d = tmp_path / "N" / split / str(c)
            d.mkdir(parents=True)
            x, y, p, t = (np.array(v) for v in zip(*ev, strict=True))
            (d / "0.bin").write_bytes(ef.nmnist_bytes(x, y, p, t))
    name = data_mod.check_name(str(tmp_path / "N"), events=event_data.EventOptions(2, 1.0))
    ds = data_mod.load(name)

    def at(x: int, y: int, p: int) -> int:  # channel-major: p, then y, then x
        return p * 34 * 34 + y * 34 + x

    f = ds.train_frames[0]
    assert f[0, at(3, 4, 1)] == 1 and f[1, at(33, 0, 0)] == 1
    assert int(f.sum()) == 2  # two events at one input in bin 0 are one spike; t=100 dropped
    img = ds.train_images[0]
    assert img[at(3, 4, 1)] == 255 and img[at(33, 0, 0)] == 128  # counts 2 and 1: 255, 127.5
    assert int((img > 0).sum()) == 2
    # spatial factor 0.5: x 33 -> 16, the sensor 17 x 17
    half = data_mod.load(data_mod.check_name(str(tmp_path / "N"),
                                             events=event_data.EventOptions(2, 0.5)))  # fmt: skip
    assert half.n_in == 2 * 17 * 17
    assert half.train_frames[0, 1, 0 * 289 + 0 * 17 + 16] == 1


def test_timing_reaches_the_gradient_family_only_through_frames(tmp_path: Path) -> None:
    """Two classes with the same events in a different order: the left half of the sensor
    then the right (class 0), or the right then the left (class 1), in a window fixed by
    two marker events. Their rate images have one distribution, so the STDP family sees
    nothing to tell them apart; the diet family's two frames do."""
    from tinysnn_dse.core.params import QuantSpec
    from tinysnn_dse.runner import RunSettings, family_of, train_and_evaluate

    g = np.random.default_rng(0)
    for split, n in (("Train", 40), ("Test", 20)):
        for c in (0, 1):
            d = tmp_path / "T" / split / str(c)
            d.mkdir(parents=True)
            for i in range(n):
                left, right = g.integers(2, 16, 200), g.integers(18, 32, 200)
                first, second = (left, right) if c == 0 else (right, left)
                x = np.concatenate([[0], first, second, [0]])
                y = np.concatenate([[0], g.integers(2, 32, 400), [0]])
                ts = np.concatenate([[0], np.sort(g.integers(0, 400, 200)),
                                     np.sort(g.integers(600, 1000, 200)), [1000]])  # fmt: skip
                p = np.zeros(len(x), dtype=np.int64)
                (d / f"{i}.bin").write_bytes(ef.nmnist_bytes(x, y, p, ts))
    name = data_mod.check_name(str(tmp_path / "T"), events=event_data.EventOptions(2, 1.0))
    ds = data_mod.load(name)
    s = RunSettings(dataset=name, seed=0, threads=1).validate()
    m = family_of("diet").model("diet", ds.n_in, 16, 2, name, {"timesteps": 2, "epochs": 30})
    assert m.net.encoding.value == "events"  # direct input on event data: the frames
    _t, ev = train_and_evaluate(m, QuantSpec(), s)
    assert ev.record.outcome.accuracy >= 0.9
    assert ev.record.design_point.encoding == "direct"  # the axis' value (axes.py)
    assert ev.record.config["model"]["net"]["encoding"] == "events"
    # the rates carry no order: the classes' mean rate images agree within noise
    rates = ds.train_images.astype(float)
    a, b = rates[ds.train_labels == 0].mean(0), rates[ds.train_labels == 1].mean(0)
    assert np.abs(a - b).max() < 0.25 * 255
    mt = family_of("tinysnn").model("tinysnn", ds.n_in, 10, 2, name, {})
    _t, ev2 = train_and_evaluate(mt, QuantSpec(), s)
    assert ev2.record.outcome.accuracy <= 0.75  # near chance


def test_options_that_do_not_fit_are_one_line(folders: dict[str, Path]) -> None:
    from tinysnn_dse.runner import family_of

    nm = data_mod.check_name(str(folders["nmnist"]))
    fam = family_of("diet")
    with pytest.raises(ConfigError, match="multiple of the other"):
        fam.model("diet", 10, 8, 10, nm, {"timesteps": 3})
    with pytest.raises(ConfigError, match="enters as its frames"):
        fam.model("diet", 10, 8, 10, nm, {"encoding": "poisson"})
    assert fam.model("diet", 10, 8, 10, nm, {"encoding": "direct"}).net.encoding.value == "events"
    with pytest.raises(ConfigError, match="needs an event data set"):
        fam.model("diet", 10, 8, 10, "mnist", {"encoding": "events"})
    with pytest.raises(ConfigError, match="random weights"):
        fam.model("diet", 10, 8, 10, nm, {"init": "ann"})
    for bad, needle in ((event_data.EventOptions(0, 1.0), "time_bins"),
                        (event_data.EventOptions(8, 1.5), "spatial_factor")):  # fmt: skip
        with pytest.raises(DataError, match=needle):
            data_mod.check_name(str(folders["nmnist"]), events=bad)
    with pytest.raises(DataError, match="for event data sets"):
        data_mod.check_name("mnist", events=event_data.EventOptions())
    with pytest.raises(DataError, match="unknown data set"):  # not options: a path
        data_mod.check_name(str(folders["nmnist"]) + "#bins=3")


def test_a_path_with_a_hash_sign_is_a_path(tmp_path: Path) -> None:
    d = tmp_path / "run#1"
    d.mkdir()
    g = np.random.default_rng(0)
    np.savez(d / "d.npz", x_train=g.random((20, 4)), y_train=np.arange(20) % 2,
             x_test=g.random((6, 4)), y_test=np.arange(6) % 2)  # fmt: skip
    name = data_mod.check_name(str(d / "d.npz"))
    assert name == str((d / "d.npz").resolve()) and not data_mod.is_event_data(name)
    assert data_mod.load(name).n_in == 4


def test_samples_are_in_a_fixed_order_that_mixes_the_classes(folders: dict[str, Path]) -> None:
    """tonic lists N-MNIST class by class: a prefix of that would hold one class. The
    order is by the SHA-256 of each file's path below the folder, whatever the listing."""
    data_mod._EVENTS_MEMO.clear()
    ds = data_mod.load(data_mod.check_name(str(folders["nmnist"])))
    assert len(set(ds.train_labels[:20].tolist())) >= 6
    assert len(set(ds.test_labels[:10].tolist())) >= 5
    ids = [f"Train/{c}/{i:05d}.bin" for c in range(10) for i in range(8)]
    order = event_data.sample_order(ids)
    shuffled = list(reversed(ids))
    assert [ids[i] for i in order] == [shuffled[i] for i in event_data.sample_order(shuffled)]


def _bad_event_folder(tmp_path: Path, what: str) -> Path:
    root = tmp_path / what.replace(" ", "_")
    if what in ("truncated bin", "outside sensor", "empty test", "no samples"):
        ef.write_nmnist(root, per_class=(2, 1), classes=2)
        f = root / "Train" / "0" / "00000.bin"
        if what == "truncated bin":
            f.write_bytes(f.read_bytes()[:-2])
        elif what == "outside sensor":
            f.write_bytes(ef.nmnist_bytes(np.array([40]), np.array([1]), np.array([0]),
                                          np.array([5])))  # fmt: skip
        elif what == "empty test":
            for p in (root / "Test").rglob("*.bin"):
                p.unlink()
        else:
            for p in root.rglob("*.bin"):
                p.unlink()
    elif what == "corrupt h5":
        ef.write_shd(root, per_split=(4, 2), classes=2)
        (root / "shd_test.h5").write_bytes(b"not hdf5 at all")
    elif what == "class without training sample":
        ef.write_shd(root, per_split=(4, 6), classes=2)
        import h5py

        with h5py.File(root / "shd_test.h5", "r+") as f:
            f["labels"][0] = 5
    return root


@pytest.mark.parametrize(
    ("what", "needle"),
    [
        ("truncated bin", "tonic cannot read it"),
        ("outside sensor", "outside the N-MNIST sensor"),
        ("empty test", "the test split is empty"),
        ("no samples", "no *.bin sample files"),
        ("corrupt h5", "not an SHD HDF5 file"),
        ("class without training sample", "has no training sample"),
    ],
)
def test_malformed_event_data_is_one_line(tmp_path: Path, what: str, needle: str,
                                          capsys) -> None:  # fmt: skip
    path = _bad_event_folder(tmp_path, what)
    data_mod._EVENTS_MEMO.clear()
    with pytest.raises(DataError) as e:
        data_mod.load(data_mod.check_name(str(path)))
    assert needle in str(e.value) and "\n" not in str(e.value)
    code, _out, err = cli(capsys, "train", "--dataset", str(path), "--model", "diet", "--out",
                          str(tmp_path / "o"))  # fmt: skip
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_tonic_missing_is_one_line_with_the_install(
    folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tonic", None)
    data_mod._EVENTS_MEMO.clear()
    with pytest.raises(DataError, match=r"tinysnn-dse\[events\]"):
        data_mod.load(data_mod.check_name(str(folders["shd"])))


def test_explore_each_kind_and_refuse_other_binning(folders: dict[str, Path], tmp_path: Path,
                                                    capsys) -> None:  # fmt: skip
    db = f"sqlite:///{tmp_path / 's.db'}"
    for kind, extra in (("nmnist", "spatial_factor: 0.5"), ("dvs", "spatial_factor: 0.125"),
                        ("shd", "time_bins: 4")):  # fmt: skip
        space = tmp_path / f"{kind}.yaml"
        space.write_text(
            f"study: ev-{kind}\ndata: {{dataset: {folders[kind]}, epochs: 1, {extra}}}\n"
            "designs:\n"
            "  - {model: diet, neurons: 16, timesteps: 4, params: {epochs: 5}}\n"
            "  - {model: diet, neurons: 16, timesteps: 4, params: {epochs: 5},"
            " weight_bits: 8, neuron_bits: 16}\n"
            "  - {model: tinysnn, neurons: 10}\n"
        )
        code, _o, err = cli(capsys, "explore", str(space), "--storage", db, "--artifacts",
                            str(tmp_path / f"a-{kind}"))  # fmt: skip
        assert code == 0, err
    code, out, err = cli(capsys, "select", "--storage", db, "--study", "ev-shd", "--json")
    assert code == 0, err
    # the record names the data with its binning
    code, out, err = cli(capsys, "report", "--storage", db, "--study", "ev-shd", "--out",
                         str(tmp_path / "rep"))  # fmt: skip
    assert code == 0, err
    csv = (tmp_path / "rep" / "trials.csv").read_text()
    assert "diet-n16" in csv and "tinysnn-n10" in csv
    # the same study with other time bins: refused in one line, nothing changed
    space = tmp_path / "shd.yaml"
    space.write_text(space.read_text().replace("time_bins: 4", "time_bins: 2"))
    code, _o, err = cli(capsys, "explore", str(space), "--storage", db, "--artifacts",
                        str(tmp_path / "a-shd"))  # fmt: skip
    assert code == 2 and "another data budget" in err and len(err.strip().splitlines()) == 1
    # a diet design with Poisson input on events, and robustness on events: one line each
    space.write_text(f"study: x\ndata: {{dataset: {folders['shd']}}}\n"
                     "designs:\n  - {model: diet, encoding: poisson}\n")  # fmt: skip
    code, _o, err = cli(capsys, "explore", str(space), "--storage", db, "--dry-run")
    assert code == 2 and "enters as its frames" in err and len(err.strip().splitlines()) == 1
    space.write_text(f"study: x\ndata: {{dataset: {folders['shd']}}}\n"
                     "robustness: {attacks: [fgsm], epsilons: [0.1]}\n"
                     "designs:\n  - {model: tinysnn, neurons: 10}\n")  # fmt: skip
    code, _o, err = cli(capsys, "explore", str(space), "--storage", db, "--dry-run")
    assert code == 2 and "is events" in err and len(err.strip().splitlines()) == 1


def test_datasets_lists_an_event_folder(folders: dict[str, Path], capsys) -> None:
    code, out, err = cli(capsys, "datasets", str(folders["dvs"]), "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    row = rows[str(folders["dvs"])]
    assert row["verified"] and "11 classes" in row["detail"]
    assert "DVS Gesture through tonic" in row["detail"] or "DVS Gesture" in row["location"]


@pytest.mark.skipif(CC is None, reason="no C compiler (cc)")
def test_an_event_design_exports_bit_exact_c(folders: dict[str, Path], tmp_path: Path,
                                             capsys) -> None:  # fmt: skip
    """An N-MNIST design (8 bins pooled into T = 4 steps) trained by the CLI, exported at
    W8/V16/T16: the C reads the frames and prints expected.txt bit for bit."""
    code, _o, err = cli(capsys, "train", "--dataset", str(folders["nmnist"]), "--model", "diet",
                        "--neurons", "16", "-p", "epochs=10", "-p", "timesteps=4",
                        "--spatial-factor", "0.5", "--out", str(tmp_path / "m"))  # fmt: skip
    assert code == 0, err
    rec = json.loads((tmp_path / "m" / "record.json").read_text())
    assert rec["config"]["model"]["net"]["encoding"] == "events"
    assert rec["outcome"]["accuracy"] > 0.2  # ten classes (chance 0.1), 40 test samples
    out = tmp_path / "x"
    code, _o, err = cli(capsys, "export", str(tmp_path / "m" / "model.pt"), "--out", str(out),
                        "--weight-bits", "8", "--vmem-bits", "16", "--vth-bits", "16")  # fmt: skip
    assert code == 0, err
    model_h = (out / "c" / "model.h").read_text()
    assert "#define TSNN_EVENTS 1" in model_h
    assert f"#define TSNN_IN_BYTES {4 * 2 * 17 * 17}" in model_h
    c = out / "c"
    exe = c / "tinysnn"
    subprocess.run([CC, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
                    str(c / "diet.c"), str(c / "diet_main.c")], check=True,
                   capture_output=True)  # fmt: skip
    res = subprocess.run([str(exe), str(out / "test_pixels.bin"), "--out"], check=True,
                         capture_output=True, text=True)  # fmt: skip
    expected = (out / "expected.txt").read_text().splitlines()
    assert len(expected) == 40 and res.stdout.splitlines() == expected
    ev = json.loads((out / "evaluation.json").read_text())
    pred = np.array([int(line.split()[0]) for line in expected])
    raw = (out / "test_pixels.bin").read_bytes()  # per image: uint32 label, uint64 key, inputs
    labels = [int.from_bytes(raw[20 + k * (12 + 4 * 578) :][:4], "little") for k in range(40)]
    assert ev["outcome"]["accuracy"] == pytest.approx(float(np.mean(pred == np.array(labels))))


@pytest.mark.parametrize(("kind", "factor"), [("nmnist", 1.0), ("dvs", 0.25), ("shd", 0.5)])
def test_binning_equals_tonics_to_frame(folders: dict[str, Path], kind: str,
                                        factor: float) -> None:  # fmt: skip
    """event_data.binned counts with np.bincount over tonic's time slices; tonic's own
    ToFrame (np.add.at) must give the same frames, sample for sample."""
    import tonic

    k = event_data.kind_of(folders[kind])
    assert k is not None
    opts = event_data.EventOptions(4, factor)
    n, events, _labels, _where = event_data._samples(k, folders[kind], True)
    w, h, p = event_data.sensor_after(k, factor)
    for i in range(min(n, 12)):
        ev = events(i)
        ours = event_data.binned(ev, k, opts)
        down = tonic.transforms.Downsample(spatial_factor=factor)(ev) if factor != 1 else ev
        ref = tonic.transforms.ToFrame(sensor_size=(w, h, p), n_time_bins=4)(down.copy())
        assert np.array_equal(ours, np.asarray(ref).reshape(ours.shape))
