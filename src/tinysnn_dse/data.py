"""Data sets: the only module that touches data files or the network.

``mnist`` and ``fashion-mnist`` are read from their four canonical IDX ``.gz`` files,
verified by SHA-256, and looked for in this order:

1. ``--data-dir`` (the ``data_dir`` argument),
2. ``$TINYSNN_DATA_DIR``,
3. the per-user cache ``$XDG_CACHE_HOME/tinysnn`` (default ``~/.cache/tinysnn``).

In each root the files may sit in ``<root>/<dataset>/`` or directly in ``<root>/``. When
they are found nowhere and ``download`` is allowed, they are fetched from the canonical
mirrors into the cache, verified, and moved into place with an atomic rename.

``digits`` is scikit-learn's embedded 8x8 digit set (1,797 images, 64 inputs, values
0-16): no file and no network needed. Its first 1,437 images (80 %) are the training set
and the last 360 the test set.

A user's own data (issue 27) is named by its path instead of a name (:func:`check_name`):

- an array file ``.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test``: images or
  vectors of any shape (flattened), integers in 0..255 or floats in [0, 1] (scaled by 255
  and rounded: the simulators read 8-bit intensities, as the integer datapath and the
  exported C do), labels 0..C-1 with every class in the training split;
- a folder of IDX files in the MNIST layout (EMNIST, KMNIST ...), gzipped or not.

- a folder of an event data set (N-MNIST, DVS Gesture, SHD) read with tonic and binned
  in time (:mod:`event_data`), named ``PATH#time_bins=B,spatial_factor=F``.

All are checked on load (one-line :class:`DataError` s naming the file and the problem)
and named in records by their path, their SHA-256 and their sample counts
(:attr:`Dataset.source`); a study made on other data under the same path is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

import tinysnn_dse.event_data as event_data
from tinysnn_dse.errors import DataError

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ],
}

DATASETS = ("digits", "mnist", "fashion-mnist")
DIGITS_TRAIN = 1437


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 [S, n_in] scaled to 0-255, labels int64 [S]."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    n_classes: int = 10
    #: an event data set's binary frames, uint8 [S, time_bins, n_in] (else None): the
    #: gradient-trained family's input; ``*_images`` are then the event counts as rates
    train_frames: np.ndarray | None = None
    test_frames: np.ndarray | None = None

    @property
    def n_in(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def time_bins(self) -> int | None:
        """The frames' time bins of an event data set, else None."""
        return None if self.train_frames is None else int(self.train_frames.shape[1])


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinysnn"


def search_roots(data_dir: str | os.PathLike[str] | None) -> list[Path]:
    roots: list[Path] = []
    if data_dir:
        roots.append(Path(data_dir).expanduser())
    env = os.environ.get("TINYSNN_DATA_DIR")
    if env:
        roots.append(Path(env).expanduser())
    roots.append(cache_dir())
    return roots


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _candidates(name: str, root: Path) -> list[Path]:
    return [root / name, root]


def locate(name: str, data_dir: str | os.PathLike[str] | None) -> Path | None:
    """The first folder holding all four files of ``name``, or None."""
    for root in search_roots(data_dir):
        for folder in _candidates(name, root):
            if all((folder / f).is_file() for f in FILES.values()):
                return folder
    return None


def verify(name: str, folder: Path) -> dict[str, bool]:
    """SHA-256 check of each of the four files: file name -> matches."""
    return {f: sha256(folder / f) == SHA256[name][f] for f in FILES.values()}


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable {'gzip' if path.suffix == '.gz' else 'IDX'} "
                        f"file ({e})") from None  # fmt: skip
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    got = int.from_bytes(raw[0:4], "big")
    if got != magic:
        raise DataError(f"{path}: bad IDX magic number {got} (expected {magic})")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    size = int(np.prod(dims))
    if len(raw) != header + size:
        raise DataError(f"{path}: IDX payload is {len(raw) - header} bytes, header says {size}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _download(name: str, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    errors = []
    for fname in FILES.values():
        target = dest / fname
        if target.is_file() and sha256(target) == SHA256[name][fname]:
            continue
        for mirror in MIRRORS[name]:
            try:
                with urllib.request.urlopen(mirror + fname, timeout=30) as r:
                    payload = r.read()
            except (urllib.error.URLError, OSError, TimeoutError) as e:
                errors.append(f"{mirror}{fname}: {e}")
                continue
            if hashlib.sha256(payload).hexdigest() != SHA256[name][fname]:
                errors.append(f"{mirror}{fname}: checksum mismatch")
                continue
            fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{fname}.")
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.replace(tmp, target)
            break
        else:
            raise DataError(
                f"could not download {name}/{fname} ({errors[-1] if errors else 'no mirror'})"
            )


def _missing_message(name: str, data_dir: str | os.PathLike[str] | None, why: str) -> str:
    looked = ", ".join(str(r) for r in search_roots(data_dir))
    return (
        f"{name} not found (looked in {looked}){why}; put the four IDX .gz files in "
        f"<dir>/{name}/ and pass --data-dir <dir> or set TINYSNN_DATA_DIR"
    )


def check_name(name: str, where: str = "dataset",
               events: event_data.EventOptions | None = None) -> str:  # fmt: skip
    """A data set as a space or the command line names it: a built-in name as it is, the
    absolute path of an existing ``.npz`` file or folder (a user's data), or an event data
    set's folder with its options (``events``, or the ones its composed name carries;
    default :class:`event_data.EventOptions`) as :func:`event_data.compose` names it; else a
    one-line :class:`DataError` naming ``where``."""
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{where}: expected a data set name or path, got {name!r}")
    raw, carried = event_data.split_name(name)
    if carried is not None and events is not None and carried != events:
        raise DataError(f"{where}: {name} names its event options and others were given")
    events = events or carried
    if raw in DATASETS:
        if events is not None:
            raise DataError(f"{where}: time_bins and spatial_factor are for event data sets; "
                            f"{raw} is a set of images")  # fmt: skip
        return raw
    path = Path(raw).expanduser()
    if path.is_dir() and event_data.kind_of(path) is not None:
        opts = (events or event_data.EventOptions()).check(where)
        return event_data.compose(str(path.resolve()), opts)
    if events is not None and path.exists():
        raise DataError(f"{where}: time_bins and spatial_factor are for event data sets "
                        f"(N-MNIST, DVS Gesture, SHD folders); {raw} is not one")  # fmt: skip
    if path.is_file() and path.suffix == ".npz" or path.is_dir():
        return str(path.resolve())
    if path.exists():
        raise DataError(f"{where}: {raw} is neither an .npz array file nor a folder of IDX "
                        "or event files")  # fmt: skip
    raise DataError(
        f"{where}: unknown data set {raw!r}; choose one of {', '.join(DATASETS)}, or give "
        "the path of an .npz file, a folder of IDX files, or an N-MNIST, DVS Gesture or SHD "
        "folder"
    )


def is_user_data(name: str) -> bool:
    """Whether ``name`` names a user's data (a path) rather than a built-in set."""
    return name not in DATASETS


def is_event_data(name: str | None) -> bool:
    """Whether ``name`` (as :func:`check_name` returns it) names an event data set."""
    return bool(name) and event_data.split_name(name)[1] is not None  # type: ignore[arg-type]


def time_bins_of(name: str | None) -> int | None:
    """The time bins an event data set's name asks for, else None."""
    opts = event_data.split_name(name)[1] if name else None
    return opts.time_bins if opts is not None else None


def _fingerprint(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(bytes.fromhex(sha256(p)))
    return h.hexdigest()


def fingerprint(name: str) -> str:
    """The SHA-256 of a user's data set's files (its identity in a study), or the name of a
    built-in set (verified by its own checksums)."""
    if not is_user_data(name):
        return name
    path = Path(event_data.split_name(name)[0])
    if path.is_file():
        return _fingerprint([path])
    kind = event_data.kind_of(path)
    return _fingerprint(kind.files(path) if kind is not None else _idx_files(path))


def _checked(name: str, tr_x: np.ndarray, tr_y: np.ndarray, te_x: np.ndarray,
             te_y: np.ndarray, source: Path, files: list[Path]) -> Dataset:  # fmt: skip
    """A user's arrays as a :class:`Dataset`, each check a one-line :class:`DataError`."""
    where = str(source)
    for split, x, y in (("train", tr_x, tr_y), ("test", te_x, te_y)):
        if x.shape[0] == 0:
            raise DataError(f"{where}: the {split} split is empty")
        if y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise DataError(f"{where}: x_{split} has {x.shape[0]} samples but y_{split} "
                            f"{y.shape[0] if y.ndim else 'no'} labels")  # fmt: skip
        if x.ndim < 2:
            raise DataError(f"{where}: x_{split} must hold one image or vector per sample")
        if x.dtype.kind not in "iuf" or y.dtype.kind not in "iu":
            raise DataError(f"{where}: {split} images must be numbers and labels integers")
    if tr_x.shape[1:] != te_x.shape[1:]:
        raise DataError(f"{where}: train samples are {tr_x.shape[1:]}, test {te_x.shape[1:]}")

    def pixels(x: np.ndarray, split: str) -> np.ndarray:
        flat = x.reshape(x.shape[0], -1)
        if flat.dtype.kind == "f":
            if not np.isfinite(flat).all():
                raise DataError(f"{where}: x_{split} holds NaN or infinite values")
            if flat.min() < 0 or flat.max() > 1:
                raise DataError(f"{where}: float x_{split} must lie in [0, 1] (it is scaled "
                                "by 255); give integers 0..255 otherwise")  # fmt: skip
            return np.rint(flat.astype(np.float64) * 255.0).astype(np.uint8)
        if flat.min() < 0 or flat.max() > 255:
            raise DataError(f"{where}: integer x_{split} must lie in 0..255")
        return flat.astype(np.uint8)

    n_cls = int(max(tr_y.max(), te_y.max())) + 1
    for split, y in (("train", tr_y), ("test", te_y)):
        if y.min() < 0:
            raise DataError(f"{where}: y_{split} holds a negative label ({int(y.min())})")
    missing = sorted(set(range(n_cls)) - set(np.unique(tr_y).tolist()))
    if missing:
        raise DataError(f"{where}: class {missing[0]} has no training sample (labels must be "
                        f"0..C-1, here C = {n_cls})")  # fmt: skip
    if n_cls < 2:
        raise DataError(f"{where}: one class only; a classifier needs two or more")
    fp = _fingerprint(files)
    return Dataset(
        name=name,
        train_images=pixels(tr_x, "train"),
        train_labels=tr_y.astype(np.int64),
        test_images=pixels(te_x, "test"),
        test_labels=te_y.astype(np.int64),
        source=f"{where} (sha256 {fp[:16]}, {tr_x.shape[0]} train, {te_x.shape[0]} test)",
        n_classes=n_cls,
    )


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_npz(path: Path) -> Dataset:
    """A user's ``.npz`` array file (module docstring)."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in NPZ_KEYS if k not in z.files]
            if missing:
                raise DataError(f"{path}: no {missing[0]} array (an .npz data set holds "
                                f"{', '.join(NPZ_KEYS)})")  # fmt: skip
            arrays = [np.asarray(z[k]) for k in NPZ_KEYS]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: not a readable .npz file ({msg[:120]})") from None
    tr_x, tr_y, te_x, te_y = arrays
    return _checked(str(path), tr_x, tr_y, te_x, te_y, path, [path])


IDX_STEMS = {k: v.removesuffix(".gz") for k, v in FILES.items()}


def _idx_files(folder: Path) -> list[Path]:
    out = []
    for stem in IDX_STEMS.values():
        found = [folder / n for n in (stem + ".gz", stem) if (folder / n).is_file()]
        if not found:
            raise DataError(f"{folder}: no {stem}[.gz] (a folder of IDX files in the MNIST "
                            f"layout holds {', '.join(IDX_STEMS.values())}; an event folder "
                            "holds Train/ and Test/ (N-MNIST), ibmGestureTrain/ and "
                            "ibmGestureTest/ (DVS Gesture) or shd_train.h5 and shd_test.h5 "
                            "(SHD))")  # fmt: skip
        out.append(found[0])
    return out


def load_idx_folder(folder: Path) -> Dataset:
    """A user's folder of IDX files in the MNIST layout (module docstring)."""
    files = _idx_files(folder)
    tr_x, tr_y, te_x, te_y = (_read_idx(f, m, n) for f, m, n in
                              zip(files, (2051, 2049, 2051, 2049), (3, 1, 3, 1), strict=True))  # fmt: skip
    return _checked(str(folder), tr_x, tr_y, te_x, te_y, folder, files)


#: the last event data set loaded in this process, by name: binning a set's every sample
#: is its load's cost, and one command loads its data more than once (check, then train)
_EVENTS_MEMO: dict[str, Dataset] = {}


def load_events(name: str) -> Dataset:
    """An event data set by its composed name (:mod:`event_data`): frames and rate images
    of both splits, checked as every user's data set is (the same name again in this
    process: the same arrays, read once)."""
    if name in _EVENTS_MEMO:
        return _EVENTS_MEMO[name]
    ds = _load_events(name)
    _EVENTS_MEMO.clear()
    _EVENTS_MEMO[name] = ds
    return ds


def _load_events(name: str) -> Dataset:
    raw, opts = event_data.split_name(name)
    assert opts is not None
    folder = Path(raw)
    kind = event_data.kind_of(folder)
    if kind is None:
        raise DataError(f"{folder}: not an N-MNIST, DVS Gesture or SHD folder any more")
    files = kind.files(folder)
    if kind.pattern and not files:
        raise DataError(f"{folder}: no {kind.pattern.rsplit('/', 1)[-1]} sample files under "
                        f"{' or '.join(kind.marks)}")  # fmt: skip
    tr = event_data.read_split(kind, folder, True, opts)
    te = event_data.read_split(kind, folder, False, opts)
    ds = _checked(name, tr.images, tr.labels, te.images, te.labels, folder, files)
    w, h, p = event_data.sensor_after(kind, opts.spatial_factor)
    return replace(
        ds,
        train_frames=tr.frames,
        test_frames=te.frames,
        source=f"{folder} ({kind.name} through tonic, {opts.time_bins} time bins, "
        f"{p} x {h} x {w} inputs, {ds.source[len(str(folder)) + 2 :]}",
    )


def load(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify_checksums: bool = True,
) -> Dataset:
    """Load a data set by name, or a user's by its path (:func:`check_name`); raises
    :class:`DataError` with a one-line reason."""
    if name == "digits":
        return load_digits()
    if is_user_data(name):
        name = check_name(name)
        if is_event_data(name):
            return load_events(name)
        path = Path(name)
        return load_npz(path) if path.is_file() else load_idx_folder(path)
    folder = locate(name, data_dir)
    if folder is None:
        if not download or os.environ.get("TINYSNN_NO_DOWNLOAD"):
            raise DataError(_missing_message(name, data_dir, ""))
        try:
            _download(name, cache_dir() / name)
        except DataError as e:
            raise DataError(
                _missing_message(name, data_dir, f" and download failed: {e}")
            ) from None
        folder = cache_dir() / name
    if verify_checksums:
        bad = [f for f, ok in verify(name, folder).items() if not ok]
        if bad:
            raise DataError(
                f"{folder}/{bad[0]}: SHA-256 does not match the canonical {name} file "
                f"(corrupt or not the canonical data); replace it or delete it to re-download"
            )
    tr_x = _read_idx(folder / FILES["train_images"], 2051, 3)
    tr_y = _read_idx(folder / FILES["train_labels"], 2049, 1)
    te_x = _read_idx(folder / FILES["test_images"], 2051, 3)
    te_y = _read_idx(folder / FILES["test_labels"], 2049, 1)
    if len(tr_x) != len(tr_y) or len(te_x) != len(te_y):
        raise DataError(f"{folder}: image and label counts differ")
    return Dataset(
        name=name,
        train_images=tr_x.reshape(len(tr_x), -1),
        train_labels=tr_y.astype(np.int64),
        test_images=te_x.reshape(len(te_x), -1),
        test_labels=te_y.astype(np.int64),
        source=str(folder.resolve()),
    )


def load_digits() -> Dataset:
    """scikit-learn's embedded 8x8 digits, pixel values 0-16 rescaled to 0-255."""
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    x = np.rint(d.data * (255.0 / 16.0)).astype(np.uint8)
    y = d.target.astype(np.int64)
    return Dataset(
        name="digits",
        train_images=x[:DIGITS_TRAIN],
        train_labels=y[:DIGITS_TRAIN],
        test_images=x[DIGITS_TRAIN:],
        test_labels=y[DIGITS_TRAIN:],
        source="scikit-learn (embedded)",
    )


@dataclass(frozen=True)
class DatasetStatus:
    name: str
    location: str | None
    verified: bool | None
    detail: str


def status(data_dir: str | os.PathLike[str] | None = None) -> list[DatasetStatus]:
    """Where each data set is found and whether its checksums verify (no download)."""
    out = [DatasetStatus("digits", "scikit-learn (embedded)", True, "1797 images, 8x8")]
    for name in ("mnist", "fashion-mnist"):
        folder = locate(name, data_dir)
        if folder is None:
            out.append(DatasetStatus(name, None, None, "not found"))
            continue
        ok = verify(name, folder)
        bad = [f for f, v in ok.items() if not v]
        out.append(
            DatasetStatus(
                name,
                str(folder),
                not bad,
                "all 4 files verify" if not bad else f"checksum mismatch: {', '.join(bad)}",
            )
        )
    return out
