"""Event data sets (issue 27): N-MNIST, DVS Gesture and the Spiking Heidelberg Digits, read
with `tonic <https://tonic.readthedocs.io>`_ from files the user already has on disk.
With :mod:`data`, the only module that touches data files; tonic is the optional extra
``events`` (``pip install 'tinysnn-dse[events]'``).

A folder is recognised by its layout, the one tonic's own data set classes read:

- **N-MNIST**: ``Train/`` and ``Test/``, each with a folder per digit ``0`` .. ``9`` of
  ``.bin`` files (40-bit events; tonic's ``read_mnist_file``), sensor 34 x 34 x 2;
- **DVS Gesture**: ``ibmGestureTrain/`` and ``ibmGestureTest/``, each with
  ``user<NN>_<lighting>/<label>.npy`` files (tonic's converted layout: rows x, y, p, t in
  ms), sensor 128 x 128 x 2, 11 classes;
- **SHD**: ``shd_train.h5`` and ``shd_test.h5`` (``spikes/times`` in s, ``spikes/units``,
  ``labels``, ``extra/keys``, ``extra/speaker``), 700 channels, 20 classes.

tonic's classes are used with their download switched off (:func:`_on_disk`): the tool
never downloads an event set. Each sample becomes, with tonic's transforms
(``Downsample(spatial_factor)``, then ``ToFrame(n_time_bins)``):

- ``frames``: ``time_bins`` binary frames [S, bins, P*H*W] (1 where the input had at
  least one event in that bin; polarity as channels, channel-major), the input of the
  gradient-trained family (``encoding: events``: the step's frame is its input spikes);
- ``images``: the per-input event counts over the sample's time bins as 8-bit rates,
  ``round(255 * count / the sample's largest count)``, the input of the STDP family
  (its Poisson rates, as an image's intensities are). tonic's bins are ``(t_last -
  t_first) // time_bins`` us wide, so the events after the last whole bin (the last
  event at least) are in neither.

A split's samples are in a fixed order that mixes the classes (:func:`sample_order`).

A data set with its options is named ``PATH#time_bins=B,spatial_factor=F``
(:func:`compose`), so that records, studies and checkpoints say how the events were binned,
and a study refuses points made under other options.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinysnn_dse.errors import DataError

#: the default number of time bins of a sample, and the largest allowed
TIME_BINS = 8
MAX_TIME_BINS = 256
INSTALL = "pip install 'tinysnn-dse[events]' (or: pip install tonic)"


@dataclass(frozen=True)
class EventOptions:
    """How a sample's events become frames: ``time_bins`` equal bins over the sample's
    span, positions scaled by ``spatial_factor`` (in (0, 1])."""

    time_bins: int = TIME_BINS
    spatial_factor: float = 1.0

    def check(self, where: str) -> EventOptions:
        if (
            isinstance(self.time_bins, bool)
            or not isinstance(self.time_bins, int)
            or not (1 <= self.time_bins <= MAX_TIME_BINS)
        ):
            raise DataError(f"{where}: time_bins must be an integer in 1..{MAX_TIME_BINS}, "
                            f"got {self.time_bins!r}")  # fmt: skip
        f = self.spatial_factor
        if (
            isinstance(f, bool)
            or not isinstance(f, int | float)
            or not (math.isfinite(f) and 0 < f <= 1)
        ):
            raise DataError(f"{where}: spatial_factor must be a number in (0, 1], got {f!r}")
        return EventOptions(int(self.time_bins), float(f))


@dataclass(frozen=True)
class Kind:
    """One event data set's layout and reader."""

    name: str
    sensor: tuple[int, int, int]  # (width, height, polarities), tonic's order
    marks: tuple[str, str]  # the train and test entries that identify the folder
    pattern: str  # the sample files under each mark ("" for one file a split)

    def present(self, folder: Path) -> bool:
        return all((folder / m).exists() for m in self.marks)

    def files(self, folder: Path) -> list[Path]:
        if not self.pattern:
            return [folder / m for m in self.marks]
        return [p for m in self.marks for p in sorted((folder / m).glob(self.pattern))]


KINDS = (
    Kind("N-MNIST", (34, 34, 2), ("Train", "Test"), "*/*.bin"),
    Kind("DVS Gesture", (128, 128, 2), ("ibmGestureTrain", "ibmGestureTest"), "*/*.npy"),
    Kind("SHD", (700, 1, 1), ("shd_train.h5", "shd_test.h5"), ""),
)

_SUFFIX = re.compile(r"^time_bins=(\d+),spatial_factor=([0-9.eE+-]+)$")


def kind_of(folder: Path) -> Kind | None:
    """The event data set whose layout ``folder`` has, or None."""
    if not folder.is_dir():
        return None
    return next((k for k in KINDS if k.present(folder)), None)


def compose(path: str, opts: EventOptions) -> str:
    """The canonical name of an event data set with its options."""
    f = repr(float(opts.spatial_factor))  # the shortest text that reads back as the factor
    f = f[:-2] if f.endswith(".0") else f
    return f"{path}#time_bins={opts.time_bins},spatial_factor={f}"


def split_name(name: str) -> tuple[str, EventOptions | None]:
    """(path, options) of a composed name; (name, None) when it has no options."""
    if "#" not in name:
        return name, None
    path, _, suffix = name.rpartition("#")
    m = _SUFFIX.match(suffix)
    if not m:  # a '#' of the path itself
        return name, None
    return path, EventOptions(int(m.group(1)), float(m.group(2))).check(name)


def sensor_after(kind: Kind, factor: float) -> tuple[int, int, int]:
    """The sensor (width, height, polarities) after ``Downsample(factor)``: positions are
    scaled and floored, so ``ceil(size * factor)`` holds every one."""
    w, h, p = kind.sensor
    return max(1, math.ceil(w * factor)), max(1, math.ceil(h * factor)), p


def _tonic() -> Any:
    try:
        import tonic
    except ImportError:
        raise DataError(f"event data sets need tonic, which is not installed; {INSTALL}") from None
    return tonic


def _on_disk(base: type, folder: Path) -> type:
    """tonic's data set class ``base`` reading ``folder`` as it is: its download switched
    off (a missing file is an error, never a fetch) and its location ``folder`` whatever
    the folder is called (tonic would look in ``save_to/<class name>``)."""

    def no_download(self: Any) -> None:
        raise DataError(f"{folder}: files missing for {base.__name__}; the tool never "
                        "downloads an event set")  # fmt: skip

    return type(base.__name__, (base,), {
        "_check_exists": lambda self: True,
        "download": no_download,
        "location_on_system": property(lambda self: str(folder), lambda self, v: None),
    })  # fmt: skip


#: one split of an event data set: (count, events(i), labels, where(i))
Samples = tuple[int, Callable[[int], Any], list[int], Callable[[int], str]]


def _samples(kind: Kind, folder: Path, train: bool) -> Samples:
    """(count, events(i), labels, where(i)) of one split through tonic."""
    tonic = _tonic()
    if kind.name in ("N-MNIST", "DVS Gesture"):
        base = tonic.datasets.NMNIST if kind.name == "N-MNIST" else tonic.datasets.DVSGesture
        mark = kind.marks[0 if train else 1]
        try:  # tonic reads labels and users from the folder and file names
            ds = _on_disk(base, folder)(str(folder.parent), train=train)
        except DataError:
            raise
        except Exception as e:  # noqa: BLE001  a layout tonic cannot parse, whatever it raises
            raise DataError(f"{folder / mark}: not the {kind.name} layout tonic reads "
                            f"({type(e).__name__}: {_first(e)})") from None  # fmt: skip
        return len(ds), lambda i: ds[i][0], list(ds.targets), lambda i: ds.data[i]
    import h5py

    split = "train" if train else "test"
    path = folder / f"shd_{split}.h5"
    try:
        ds = _on_disk(tonic.datasets.SHD, folder)(str(folder.parent), train=train)
        with h5py.File(path, "r") as f:
            labels = [int(v) for v in f["labels"][()]]
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{path}: not an SHD HDF5 file tonic can read ({_first(e)})") from None
    return len(labels), lambda i: ds[i][0], labels, lambda i: f"{path}[{i}]"


def _first(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return (msg[0] if msg else type(e).__name__)[:120]


def _check_events(ev: np.ndarray, kind: Kind, where: str) -> None:
    w, h, p = kind.sensor
    for field, size in (("x", w), ("y", h), ("p", p if p > 1 else 2)):
        if field in (ev.dtype.names or ()) and len(ev):
            v = ev[field].astype(np.int64)
            if v.min() < 0 or v.max() >= size:
                bad = int(v.max() if v.max() >= size else v.min())
                raise DataError(f"{where}: an event's {field} = {bad} lies outside the "
                                f"{kind.name} sensor (0..{size - 1})")  # fmt: skip
    t = ev["t"]
    if len(ev) and not np.isfinite(t.astype(np.float64)).all():
        raise DataError(f"{where}: an event's time is not finite")


def binned(ev: np.ndarray, kind: Kind, opts: EventOptions) -> np.ndarray:
    """One sample's event counts [bins, P, H, W] (int64): tonic's Downsample, then the
    counts of ``ToFrame(n_time_bins)``: the events of each of tonic's time slices
    (``SliceByTimeBins``) counted per polarity and position with ``np.bincount``, which
    gives ToFrame's frames (a test compares them) at a fraction of its ``np.add.at``'s
    time (docs/benchmarks.md)."""
    tonic = _tonic()
    w, h, p = sensor_after(kind, opts.spatial_factor)
    if not len(ev):
        return np.zeros((opts.time_bins, p, h, w), dtype=np.int16)
    t = ev["t"]
    if len(ev) > 1 and (t[1:] < t[:-1]).any():  # tonic's bins assume time order
        ev = ev[np.argsort(t, kind="stable")]
    if opts.spatial_factor != 1.0:
        ev = tonic.transforms.Downsample(spatial_factor=opts.spatial_factor)(ev)
    if "p" in (ev.dtype.names or ()) and p == 1:
        ev = ev.copy()
        ev["p"] = 0
    bins = opts.time_bins
    meta = tonic.slicers.SliceByTimeBins(bin_count=bins).get_slice_metadata(ev, None)
    slot = np.full(len(ev), -1, dtype=np.int64)
    for k, (a, b) in enumerate(meta):
        slot[a:b] = k
    names = ev.dtype.names or ()
    pol = ev["p"].astype(np.int64) if "p" in names and p > 1 else 0
    y = ev["y"].astype(np.int64) if "y" in names else 0
    flat = ((slot * p + pol) * h + y) * w + ev["x"].astype(np.int64)
    counts = np.bincount(flat[slot >= 0], minlength=bins * p * h * w)
    return counts.reshape(bins, p, h, w)


def _sample_id(where: str, folder: Path) -> str:
    """A sample's name, the same on every machine: its file's path below the data set's
    folder (SHD: the file's name and the index)."""
    try:
        return Path(where).relative_to(folder).as_posix()
    except ValueError:
        return where.rsplit("/", 1)[-1]


def sample_order(ids: list[str]) -> list[int]:
    """The order a split's samples take: by the SHA-256 of their names (:func:`_sample_id`).
    tonic lists N-MNIST class by class (and DVS Gesture in the file system's order), so a
    prefix (``train_samples``, ``test_samples``) or a holdout would hold few classes;
    this order mixes them, and is the same on every machine whatever the listing."""
    import hashlib

    keys = [hashlib.sha256(s.encode()).hexdigest() for s in ids]
    return sorted(range(len(ids)), key=lambda i: (keys[i], ids[i]))


@dataclass(frozen=True)
class EventSplit:
    frames: np.ndarray  # uint8 [S, bins, n_in], 0/1
    images: np.ndarray  # uint8 [S, n_in], 8-bit rates from the counts
    labels: np.ndarray  # int64 [S]


def read_split(kind: Kind, folder: Path, train: bool, opts: EventOptions) -> EventSplit:
    """One split of an event data set as frames and rate images (module docstring), its
    samples in :func:`sample_order`."""
    n, events, labels_in, where = _samples(kind, folder, train)
    w, h, p = sensor_after(kind, opts.spatial_factor)
    n_in = w * h * p
    frames = np.zeros((n, opts.time_bins, n_in), dtype=np.uint8)
    images = np.zeros((n, n_in), dtype=np.uint8)
    order = sample_order([_sample_id(where(i), folder) for i in range(n)])
    labels = [labels_in[i] for i in order]
    for k, i in enumerate(order):
        try:
            ev = events(i)
        except DataError:
            raise
        except Exception as e:  # noqa: BLE001  a file tonic cannot parse, whatever it raises
            raise DataError(f"{where(i)}: tonic cannot read it ({type(e).__name__}: "
                            f"{_first(e)})") from None  # fmt: skip
        _check_events(ev, kind, where(i))
        try:
            c = binned(ev, kind, opts).reshape(opts.time_bins, n_in)
        except Exception as e:  # noqa: BLE001
            raise DataError(f"{where(i)}: its events cannot be binned ({type(e).__name__}: "
                            f"{_first(e)})") from None  # fmt: skip
        frames[k] = c > 0
        total = c.sum(axis=0, dtype=np.int64)
        top = int(total.max()) if total.size else 0
        if top:
            images[k] = np.floor(total * 255.0 / top + 0.5).astype(np.uint8)
    return EventSplit(frames, images, np.asarray(labels, dtype=np.int64))
