from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """The real MNIST/Fashion-MNIST IDX files: $TINYSNN_DATA_DIR, else ../shared/data."""
    env = os.environ.get("TINYSNN_DATA_DIR")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if (cand / "mnist" / "train-images-idx3-ubyte.gz").is_file():
            return cand
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data_dir()
    if d is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide the real data sets (TINYSNN_DATA_DIR or ../shared/data)")
        pytest.skip("real MNIST files not available (set TINYSNN_DATA_DIR)")
    return d


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Never read or write the user's cache, never download during tests."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("TINYSNN_NO_DOWNLOAD", "1")
