"""Writing a command's output so that a failure leaves nothing half-written.

Every command that writes uses these (docs/architecture.md, "Failure paths"): files go
under a temporary name on the same file system and are moved in with ``os.replace`` when
complete, an ``OSError`` becomes one line (:func:`errors.os_error`: "no space left on the
device" for a full disk), and folders a failed command created are removed again. Two
ways to write:

- :func:`write_files`: a few files, each staged beside its destination (``train --out``,
  checkpoints, the training cache, ``select --export`` of an FP32 design);
- :func:`staging` + :func:`move_in`: a whole folder built in a temporary folder next to
  the destination and moved in at the end (``export``, ``report``).

Standard library and ``errors`` only, so that every layer that writes may use it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from tinysnn_dse.errors import OutputError, os_error


def with_errno(e: OSError) -> OSError:
    """``e``, or an ENOSPC ``OSError`` where ``e`` carries no errno but says the disk is full
    (HDF5's errors do: "... errno = 28, error message = 'No space left on device'")."""
    text = str(e)
    if e.errno is None and ("No space left" in text or "errno = 28" in text):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return e


@contextlib.contextmanager
def write_guard(what: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an ``OSError`` raised inside into one line naming ``what`` (a path, or words
    such as "the trial's checkpoint"): an :class:`OutputError` from
    :func:`errors.os_error`, which says "no space left on the device" for a full disk."""
    try:
        yield
    except OSError as e:
        raise os_error(with_errno(e), str(what)) from None


def check_clobber(
    out_dir: Path,
    names: Iterable[str] | None,
    force: bool,
    what: str = "this command",
    *,
    where: str | None = None,
) -> None:
    """Refuse, before anything is written, to write into ``out_dir`` where it already holds
    one of ``names`` (``None``: where it holds anything at all), unless ``force``: a
    one-line :class:`OutputError` naming the first such file and ``--force``. ``where``
    names the output in the line of an ``OSError`` while listing ``out_dir`` (default: the
    folder)."""
    if force or not out_dir.is_dir():
        return
    with write_guard(where or out_dir):
        present = sorted(p.name for p in out_dir.iterdir())
    if names is None:
        if present:
            raise OutputError(
                f"{out_dir} is not empty ({present[0]}); give --force to write {what} into "
                "it, replacing files of the same name"
            )
        return
    clash = [n for n in present if n in set(names)]
    if clash:
        raise OutputError(
            f"{out_dir / clash[0]} already exists; give --force to replace it (and the other "
            f"files {what} writes there)"
        )


def missing_dirs(d: Path) -> list[Path]:
    """``d`` and its ancestors that do not exist yet, deepest first."""
    out = []
    while not d.exists() and d != d.parent:
        out.append(d)
        d = d.parent
    return out


def remove_empty(dirs: Iterable[Path]) -> None:
    """Remove the folders of ``dirs`` (deepest first) that are still empty: what a failed
    command created, so that it leaves nothing behind."""
    for d in dirs:
        with contextlib.suppress(OSError):
            d.rmdir()


def write_files(files: Mapping[Path, bytes | str]) -> None:
    """Write each file of ``files`` (path -> contents) under a temporary name in its own
    folder, flushed to the disk, then move them all in (``os.replace``): a reader sees the
    old files or the new ones, never a part of one, and a failure before the moves changes
    nothing (the temporary files and any folder made for them are removed). An
    ``OSError`` (a full disk) becomes a one-line :class:`OutputError`."""
    made: list[Path] = []
    staged: list[tuple[str, Path]] = []
    current = Path()
    try:
        for path, data in files.items():
            current = path
            made += [d for d in missing_dirs(path.parent) if d not in made]
            path.parent.mkdir(parents=True, exist_ok=True)
            raw = data.encode() if isinstance(data, str) else data
            tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, path in staged:
            current = path
            os.replace(tmp, path)
    except BaseException as e:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        remove_empty(sorted(made, key=lambda d: -len(d.parts)))
        if isinstance(e, OSError):
            raise os_error(with_errno(e), str(current)) from None
        raise


def atomic_write(path: Path, data: bytes | str) -> Path:
    """One file, as :func:`write_files` writes it."""
    write_files({path: data})
    return path


def prepare_out_dir(out_dir: Path) -> Path:
    """Create ``out_dir`` (before any work is done) or fail with a one-line reason."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write-test-"):
            pass
    except OSError as e:
        raise os_error(e, f"to output folder {out_dir}") from None
    return out_dir


def stage_parent(out_dir: Path) -> Path:
    """Where a folder's output is staged: ``out_dir`` if it exists, else its nearest
    existing ancestor (on the same file system, so moving the files in is a rename);
    creates nothing."""
    d = out_dir.absolute()
    while not d.exists():
        d = d.parent
    return d


@contextlib.contextmanager
def staging(out_dir: Path, what: str, prefix: str) -> Iterator[Path]:
    """A new temporary folder (named ``prefix...``) in :func:`stage_parent` of
    ``out_dir`` to write a whole output into; the body ends with :func:`move_in`. On the
    way out the temporary folder is removed; on a failure so are the folders made for
    ``out_dir``, and an ``OSError`` is one line naming ``what``."""
    made = missing_dirs(out_dir)
    try:
        with write_guard(what):
            stage = Path(tempfile.mkdtemp(dir=stage_parent(out_dir), prefix=prefix))
            try:
                yield stage
            finally:
                shutil.rmtree(stage, ignore_errors=True)
    except BaseException:
        remove_empty(made)
        raise


def move_in(stage: Path, out_dir: Path) -> list[str]:
    """Move everything in ``stage`` into ``out_dir`` (created if need be), replacing the
    entries of the same name (a file by a rename over it; a folder, or a file where a
    folder goes, removed first); their names, in order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in stage.iterdir())
    for n in names:
        dest = out_dir / n
        if dest.is_dir():
            shutil.rmtree(dest)
        elif dest.exists() and (stage / n).is_dir():
            dest.unlink()
        os.replace(stage / n, dest)
    return names
