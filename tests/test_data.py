from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinysnn_dse import data
from tinysnn_dse.errors import DataError


def test_digits_is_embedded() -> None:
    ds = data.load("digits")
    assert ds.train_images.shape == (1437, 64) and ds.test_images.shape == (360, 64)
    assert ds.train_images.dtype == np.uint8 and ds.train_images.max() == 255
    assert set(np.unique(ds.train_labels)) == set(range(10))


def test_mnist_from_shared_data_verifies(data_dir: Path) -> None:
    ds = data.load("mnist", data_dir)
    assert ds.train_images.shape == (60000, 784) and ds.test_images.shape == (10000, 784)
    counts = np.bincount(ds.test_labels, minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    st = {s.name: s for s in data.status(data_dir)}
    assert st["mnist"].verified and st["fashion-mnist"].verified


def test_env_variable_is_searched(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYSNN_DATA_DIR", str(data_dir))
    assert data.locate("fashion-mnist", None) == data_dir / "fashion-mnist"


def test_missing_dataset_names_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TINYSNN_DATA_DIR", raising=False)
    with pytest.raises(DataError) as e:
        data.load("mnist", tmp_path / "nowhere")
    msg = str(e.value)
    assert "nowhere" in msg and "TINYSNN_DATA_DIR" in msg and "\n" not in msg


def _copy(data_dir: Path, dest: Path) -> Path:
    shutil.copytree(data_dir / "mnist", dest / "mnist")
    return dest


def test_corrupt_file_fails_checksum(data_dir: Path, tmp_path: Path) -> None:
    root = _copy(data_dir, tmp_path)
    p = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(p.read_bytes())
    raw[-1] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="SHA-256"):
        data.load("mnist", root)
    assert data.status(root)[1].verified is False


def test_truncated_idx_is_reported_without_checksums(data_dir: Path, tmp_path: Path) -> None:
    root = _copy(data_dir, tmp_path)
    p = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    payload = gzip.decompress(p.read_bytes())[:-10]
    p.write_bytes(gzip.compress(payload))
    with pytest.raises(DataError, match="payload"):
        data.load("mnist", root, verify_checksums=False)


def test_unknown_dataset() -> None:
    with pytest.raises(DataError, match="unknown data set"):
        data.load("cifar")
