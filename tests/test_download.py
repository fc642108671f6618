"""Download into the cache, against a local mirror on 127.0.0.1 (no internet needed)."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinysnn_dse import data
from tinysnn_dse.errors import DataError


@pytest.fixture
def mirror(tmp_path: Path, data_dir: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "mirror"
    shutil.copytree(data_dir / "mnist", root)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/", root
    finally:
        srv.shutdown()
        srv.server_close()


def test_download_verifies_and_moves_into_cache(
    mirror: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = mirror
    monkeypatch.delenv("TINYSNN_NO_DOWNLOAD", raising=False)
    monkeypatch.delenv("TINYSNN_DATA_DIR", raising=False)
    monkeypatch.setitem(data.MIRRORS, "mnist", [url])
    ds = data.load("mnist", tmp_path / "empty")
    cached = data.cache_dir() / "mnist"
    assert ds.source == str(cached)
    assert sorted(p.name for p in cached.iterdir()) == sorted(data.FILES.values())
    assert all(data.verify("mnist", cached).values())


def test_bad_mirror_file_is_rejected_and_nothing_left(
    mirror: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = mirror
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"tampered")
    monkeypatch.delenv("TINYSNN_NO_DOWNLOAD", raising=False)
    monkeypatch.delenv("TINYSNN_DATA_DIR", raising=False)
    monkeypatch.setitem(data.MIRRORS, "mnist", [url])
    with pytest.raises(DataError, match="checksum mismatch") as e:
        data.load("mnist", tmp_path / "empty")
    assert "\n" not in str(e.value)
    cached = data.cache_dir() / "mnist"
    assert not (cached / "t10k-labels-idx1-ubyte.gz").exists()
    assert not [p for p in cached.iterdir() if p.name.startswith(".")]  # no temp files


def test_unreachable_mirror_gives_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYSNN_NO_DOWNLOAD", raising=False)
    monkeypatch.delenv("TINYSNN_DATA_DIR", raising=False)
    monkeypatch.setitem(data.MIRRORS, "mnist", ["http://127.0.0.1:9/"])  # discard port
    with pytest.raises(DataError, match="download failed") as e:
        data.load("mnist", tmp_path / "empty")
    assert "\n" not in str(e.value) and "TINYSNN_DATA_DIR" in str(e.value)
