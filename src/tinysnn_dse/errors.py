"""The project's one error family: the CLI turns each into a one-line message and exit 2."""

from __future__ import annotations


class TinySNNError(Exception):
    """Base class for every error a user can cause (bad input, missing data, bad storage)."""

    exit_code = 2


class ConfigError(TinySNNError):
    """An invalid option, parameter, bit width or configuration file."""


class DataError(TinySNNError):
    """A data set that is missing, corrupt or fails its checksum."""


class CheckpointError(TinySNNError):
    """A checkpoint that cannot be read or does not describe a tinysnn model."""


class OutputError(TinySNNError):
    """A file or folder that cannot be written: a full disk, a read-only file system, a
    missing permission, or a user's file that would be overwritten without ``--force``."""


def os_error(e: OSError, what: str) -> OutputError:
    """One line for an ``OSError`` met while writing ``what`` (a path or a description):
    a full disk says so in words, whatever layer raised it."""
    import errno

    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = "no space left on the device (disk full or over quota)"
    elif e.errno == errno.EROFS:
        reason = "read-only file system"
    else:
        reason = e.strerror or str(e) or type(e).__name__
    return OutputError(f"cannot write {what}: {reason}")


class Interrupted(TinySNNError):
    """A command stopped by a signal: the line says what was kept; exit 128 + signal."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code
