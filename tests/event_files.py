"""Small event data sets written in the real on-disk formats (no download): N-MNIST's
40-bit binary events, DVS Gesture's converted ``.npy`` files and SHD's HDF5, with a
learnable class structure (each class fires in its own region, at its own time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def nmnist_bytes(x: np.ndarray, y: np.ndarray, p: np.ndarray, ts: np.ndarray) -> bytes:
    """N-MNIST's format: 5 bytes an event, x, y, then p (bit 7) and a 23-bit time (us)."""
    raw = np.zeros((len(x), 5), dtype=np.uint8)
    raw[:, 0] = x
    raw[:, 1] = y
    raw[:, 2] = (p.astype(np.uint32) << 7) | ((ts >> 16) & 127)
    raw[:, 3] = (ts >> 8) & 255
    raw[:, 4] = ts & 255
    return raw.tobytes()


def _sample(rng: np.random.Generator, label: int, size: tuple[int, int], n: int,
            span_us: int) -> tuple[np.ndarray, ...]:  # fmt: skip
    """``n`` events: most in the class's column band in the first or second half of the
    span (by the label's parity), the rest uniform noise."""
    w, h = size
    band = max(1, w // 10)
    x0 = (label * band) % max(1, w - band)
    k = int(n * 0.8)
    x = np.concatenate([rng.integers(x0, x0 + band, k), rng.integers(0, w, n - k)])
    y = rng.integers(0, h, n)
    half = span_us // 2
    t0 = 0 if label % 2 == 0 else half
    t = np.concatenate([rng.integers(t0, t0 + half, k), rng.integers(0, span_us, n - k)])
    p = rng.integers(0, 2, n)
    order = np.argsort(t, kind="stable")
    return x[order], y[order], p[order], t[order]


def write_nmnist(root: Path, per_class: tuple[int, int] = (8, 4), classes: int = 10,
                 seed: int = 0, events: int = 300) -> Path:  # fmt: skip
    """An N-MNIST folder (Train/ and Test/, a folder per digit of .bin files)."""
    rng = np.random.default_rng(seed)
    for split, count in (("Train", per_class[0]), ("Test", per_class[1])):
        for c in range(classes):
            d = root / split / str(c)
            d.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                x, y, p, t = _sample(rng, c, (34, 34), events, 300_000)
                (d / f"{i:05d}.bin").write_bytes(nmnist_bytes(x, y, p, t.astype(np.int64)))
    return root


def write_dvsgesture(root: Path, users: tuple[int, int] = (3, 2), classes: int = 11,
                     seed: int = 0, events: int = 800) -> Path:  # fmt: skip
    """A DVS Gesture folder in tonic's converted layout (rows x, y, p, t in ms)."""
    rng = np.random.default_rng(seed)
    for split, count in (("ibmGestureTrain", users[0]), ("ibmGestureTest", users[1])):
        for u in range(count):
            d = root / split / f"user{u + 1:02d}_fluorescent"
            d.mkdir(parents=True, exist_ok=True)
            for c in range(classes):
                x, y, p, t = _sample(rng, c, (128, 128), events, 6_000)
                np.save(d / f"{c}.npy", np.stack([x, y, p, t], axis=1).astype(np.int64))
    return root


def write_shd(root: Path, per_split: tuple[int, int] = (60, 40), classes: int = 20,
              seed: int = 0, events: int = 200) -> Path:  # fmt: skip
    """An SHD folder (shd_train.h5 and shd_test.h5: times in s, units, labels)."""
    import h5py

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", per_split[0]), ("test", per_split[1])):
        labels = np.arange(n) % classes
        times, units = [], []
        for c in labels:
            x, _y, _p, t = _sample(rng, int(c), (700, 1), events, 1_000_000)
            times.append((t / 1e6).astype(np.float32))
            units.append(x.astype(np.uint16))
        with h5py.File(root / f"shd_{split}.h5", "w") as f:
            ft = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float32))
            fu = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
            for i in range(n):
                ft[i] = times[i]
                fu[i] = units[i]
            f.create_dataset("labels", data=labels.astype(np.uint16))
            keys = np.array([f"k{i}".encode() for i in range(classes)])
            f.create_dataset("extra/keys", data=keys)
            f.create_dataset("extra/speaker", data=np.zeros(n, dtype=np.uint16))
    return root
