"""The artifact folder: where it is by default, that it can be used, and where a trial's
checkpoint lies in it (an Optuna ``FileSystemArtifactStore`` under ``checkpoints/``)."""

from __future__ import annotations

import os
from pathlib import Path

from tinysnn_dse.errors import ConfigError
from tinysnn_dse.explore.storage import is_journal, sqlite_path


def default_artifacts(url: str) -> Path:
    """Checkpoints live next to a SQLite or journal file, else in ./tinysnn-artifacts."""
    db = sqlite_path(url)
    if db is not None:
        return db.resolve().parent / "tinysnn-artifacts"
    if is_journal(url):
        return Path(url.removeprefix("journal:")).resolve().parent / "tinysnn-artifacts"
    return Path("tinysnn-artifacts").resolve()


def artifact_path(artifacts: Path, artifact_id: str) -> Path:
    return artifacts / "checkpoints" / artifact_id


def check_artifacts(artifacts: Path, create: bool = True) -> None:
    """The artifact folder, created (``create``) or only checked to be creatable."""
    if not create:
        cur = artifacts
        while not cur.exists() and cur.parent != cur:
            cur = cur.parent
        if not cur.is_dir() or not os.access(cur, os.W_OK | os.X_OK):
            raise ConfigError(
                f"cannot use artifact folder {artifacts}: {cur} is not a writable folder"
            )
        return
    try:
        artifacts.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot use artifact folder {artifacts}: {e.strerror or e}") from None
