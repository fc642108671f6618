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
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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

    @property
    def n_in(self) -> int:
        return int(self.train_images.shape[1])


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
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable gzip file ({e})") from None
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


def load(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify_checksums: bool = True,
) -> Dataset:
    """Load a data set by name; raises :class:`DataError` with a one-line reason."""
    if name == "digits":
        return load_digits()
    if name not in SHA256:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
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
