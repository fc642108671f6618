"""Opening a study storage, and keeping it usable through blips and corruption.

- :func:`open_storage` checks a URL before Optuna touches it (a journal that is not a
  journal, a SQLite file that is read-only or not a database, an in-memory database that
  would keep nothing) and returns the storage wrapped in :class:`Retrying`.
- :class:`Retrying` is an Optuna storage that delegates every call. A *transient* error
  (the connection lost or refused, a locked SQLite file) is retried with backoff for at
  most :data:`RETRY_S` seconds, by workers, the heartbeat and the progress poll alike, so
  a database restart of a few seconds loses no training. Any other storage error becomes
  one :class:`StorageError` line. Every call is a deferred section of
  :mod:`~tinysnn_dse.explore.stopping`: a signal never interrupts a transaction half-way.
- :func:`must_exist` lets reading commands (select, report) refuse a storage that holds no
  study without creating a file or Optuna's tables in it; :func:`load_study` names a
  missing study in one line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage

from tinysnn_dse.errors import TinySNNError
from tinysnn_dse.explore import stopping

#: how long a transient storage error is retried before it is an error (seconds)
RETRY_S = float(os.environ.get("TINYSNN_STORAGE_RETRY_S", "120"))
DEFAULT_STORAGE = "sqlite:///tinysnn.db"
_SQLITE_MAGIC = b"SQLite format 3\x00"

T = TypeVar("T")

optuna.logging.set_verbosity(optuna.logging.ERROR)  # our errors are one line each


class StorageError(TinySNNError):
    """A storage URL that cannot be opened, or a study that does not match its space."""


def is_journal(url: str) -> bool:
    return url.startswith("journal:") or url.endswith((".log", ".journal"))


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///FILE`` URL (None for another URL)."""
    if url.startswith("sqlite:///") and url[10:] not in ("", ":memory:"):
        return Path(url[10:].split("?", 1)[0])
    return None


def redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _first_line(e: BaseException) -> str:
    cause: BaseException | None = e
    while cause is not None:  # the database's own words, under Optuna's and SQLAlchemy's
        nxt = getattr(cause, "orig", None) or cause.__cause__
        if nxt is None or nxt is cause:
            break
        cause = nxt
    lines = str(cause or e).strip().splitlines()
    return (lines[0] if lines else type(e).__name__)[:300]


# --------------------------------------------------------------------------- checks


def _head(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of an existing storage file, or a one-line error."""
    if not path.is_file():
        raise StorageError(f"{path} is not a file")
    try:
        with path.open("rb") as f:
            return f.read(n)
    except OSError as e:
        raise StorageError(f"cannot read {path}: {e.strerror or e}") from None


def _check_journal(path: Path) -> None:
    """Refuse a file that exists but is not an Optuna journal (before Optuna appends)."""
    if not path.exists():
        return
    head = _head(path, 4096)
    if head.startswith(_SQLITE_MAGIC):
        raise StorageError(f"{path} is a SQLite database, not a journal; use sqlite:///{path}")
    if not head:
        return
    first = head.split(b"\n", 1)[0]
    try:
        ok = isinstance(json.loads(first.decode("utf-8")), dict) and b"op_code" in first
    except (UnicodeDecodeError, ValueError):
        ok = False
    if not ok:
        raise StorageError(f"{path} is not an Optuna journal file; give another file name")


def _check_sqlite(path: Path, write: bool) -> None:
    if path.exists():
        head = _head(path, 16)
        if head and head != _SQLITE_MAGIC:
            raise StorageError(f"{path} is not a SQLite database")
        if write and not os.access(path, os.W_OK):
            raise StorageError(f"{path} is read-only; make it writable or use another --storage")
    if not path.parent.is_dir():
        raise StorageError(f"cannot open sqlite:///{path}: folder {path.parent} does not exist")
    if write and not os.access(path.parent, os.W_OK):
        # SQLite writes its journal beside the file
        raise StorageError(f"folder {path.parent} is read-only; SQLite needs to write there")


def must_exist(url: str) -> None:
    """Reading commands never create a database, a file or Optuna's tables."""
    check_url(url)
    path = sqlite_path(url) or (Path(url.removeprefix("journal:")) if is_journal(url) else None)
    if path is not None:
        if not path.is_file():
            raise StorageError(f"{url}: no such study storage (run tinysnn explore first)")
        return
    try:
        engine = sqlalchemy.create_engine(url)
        try:
            has = sqlalchemy.inspect(engine).has_table("studies")
        finally:
            engine.dispose()
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as e:
        raise StorageError(f"cannot open storage {redact(url)}: {_first_line(e)}") from None
    if not has:
        raise StorageError(
            f"{redact(url)}: no tinysnn study in this database (run tinysnn explore first)"
        )


def load_study(storage: BaseStorage, study: str) -> optuna.Study:
    """The study named ``study`` in ``storage``, or a one-line :class:`StorageError`."""
    try:
        return optuna.load_study(study_name=study, storage=storage)
    except KeyError:
        raise StorageError(f"no study named {study!r} in this storage") from None


def check_url(url: str) -> None:
    if not url.strip():
        raise StorageError(
            "--storage is empty; give sqlite:///FILE, postgresql://... or journal:FILE"
        )
    if ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite:/", "sqlite://"):
        raise StorageError(
            f"storage {url!r} is an in-memory database, which keeps nothing after the command "
            "and is not shared with workers; give a file (sqlite:///tinysnn.db)"
        )
    if not is_journal(url) and "://" not in url:
        raise StorageError(
            f"storage {url!r} is not a database URL (sqlite:///FILE, postgresql://...) "
            "or journal:FILE"
        )


# --------------------------------------------------------------------------- opening


_OPEN: dict[tuple[int, str, bool], BaseStorage] = {}


def open_storage(url: str, write: bool = True) -> BaseStorage:
    """An Optuna storage for a SQLAlchemy URL or ``journal:PATH`` (also a ``.log`` path),
    wrapped in :class:`Retrying`; one per URL and process (engines are not cheap)."""
    key = (os.getpid(), url, write)
    if key not in _OPEN:
        _OPEN[key] = Retrying(_open(url, write), url)
    return _OPEN[key]


def _open(url: str, write: bool) -> BaseStorage:
    check_url(url)
    if is_journal(url):
        path = Path(url.removeprefix("journal:"))
        _check_journal(path)
        try:
            if write:
                path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as e:
            raise StorageError(f"cannot open journal {path}: {e.strerror or e}") from None
    engine: dict[str, Any] = {}
    db = sqlite_path(url)
    if url.startswith("sqlite"):
        engine["connect_args"] = {"timeout": 60}
        if db is not None:
            _check_sqlite(db, write)
    else:
        engine["pool_pre_ping"] = True
        engine["connect_args"] = {"connect_timeout": 10} if "postgres" in url else {}
    deadline = time.monotonic() + RETRY_S
    attempt = 0
    while True:
        try:
            with stopping.deferred():
                return RDBStorage(url, engine_kwargs=engine)
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as e:
            # Processes that open a fresh database at the same moment race to create
            # Optuna's tables ("duplicate key", "already exists", "UNIQUE constraint
            # failed", also as an OperationalError on SQLite); the loser tries again. A
            # server that refuses the connection is not retried here: a wrong URL must
            # fail at once.
            text = _first_line(e).lower()
            race = any(w in text for w in ("duplicate", "already exists", "unique", "locked"))
            if not race or time.monotonic() > deadline:
                raise StorageError(_why(url, e)) from None
            attempt += 1
            time.sleep(min(0.2 + 0.3 * attempt, 3.0))
        except (ImportError, ValueError, TypeError) as e:
            raise StorageError(f"cannot open storage {redact(url)}: {_first_line(e)}") from None


def _why(url: str, e: BaseException, opening: bool = True) -> str:
    text = _first_line(e)
    low = text.lower()
    if "malformed" in low or "not a database" in low or "file is encrypted" in low:
        return f"storage {redact(url)} is corrupt ({text}); restore it from a copy"
    if "readonly" in low or "read-only" in low:
        return f"storage {redact(url)} is read-only ({text})"
    if "disk is full" in low or "no space" in low:
        return f"cannot write storage {redact(url)}: no space left on the device ({text})"
    return f"{'cannot open storage' if opening else 'storage'} {redact(url)}: {text}"


# --------------------------------------------------------------------------- retrying


def transient(e: BaseException) -> bool:
    """A storage error worth retrying: the connection lost, refused or timed out, or a
    locked SQLite file. Not: a corrupt or read-only file, a missing table, bad SQL."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, sqlalchemy.exc.DBAPIError) and cur.connection_invalidated:
            return True
        if isinstance(cur, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            low = _first_line(cur).lower()
            return not any(
                w in low for w in ("readonly", "read-only", "no such", "syntax", "malformed",
                                   "not a database", "disk is full", "unable to open")
            )  # fmt: skip
        if isinstance(cur, ConnectionError | TimeoutError):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _storage_error(e: BaseException) -> bool:
    """An error raised by the storage layer (not one of Optuna's own signals, such as
    ``UpdateFinishedTrialError`` or ``KeyError`` for a missing study, which callers
    handle)."""
    return isinstance(
        e,
        sqlalchemy.exc.SQLAlchemyError
        | optuna.exceptions.StorageInternalError
        | UnboundLocalError  # Optuna's tell after a failed commit (5.x)
        | UnicodeDecodeError
        | json.JSONDecodeError
        | OSError,
    )


def retry(url: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, retried on a transient storage error with backoff for at
    most :data:`RETRY_S`; another storage error is a one-line :class:`StorageError`."""
    deadline = time.monotonic() + RETRY_S
    delay = 0.25
    while True:
        try:
            with stopping.deferred():
                return fn(*args, **kwargs)
        except StorageError:
            raise
        except Exception as e:
            if not _storage_error(e):
                raise
            if transient(e) and time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if transient(e):
                raise StorageError(
                    f"storage {redact(url)} unreachable for {RETRY_S:.0f} s: {_first_line(e)}"
                ) from None
            if isinstance(e, OSError):
                raise StorageError(f"storage {redact(url)}: {e.strerror or e}") from None
            raise StorageError(_why(url, e, opening=False)) from None


def _delegate(name: str) -> Callable[..., Any]:
    def method(self: _RetryingBase, *args: Any, **kwargs: Any) -> Any:
        return retry(self.url, getattr(self.inner, name), *args, **kwargs)

    method.__name__ = name
    return method


class _RetryingBase(BaseStorage):
    def __init__(self, inner: BaseStorage, url: str) -> None:
        self.inner = inner
        self.url = url


#: every public method of Optuna's storage interface, delegated through :func:`retry`
Retrying = type(
    "Retrying",
    (_RetryingBase,),
    {
        name: _delegate(name)
        for name in dir(BaseStorage)
        if not name.startswith("_") and callable(getattr(BaseStorage, name))
    }
    | {"__doc__": "An Optuna storage whose every call goes through :func:`retry`."},
)
