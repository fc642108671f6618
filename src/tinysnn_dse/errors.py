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
