"""Design-space exploration: search spaces, Optuna studies, worker processes.

Owns Optuna; never imports the CLI, rich, YAML or the report layer. Progress reaches the
caller as a callback ``on_progress(Progress)``. The package's modules: ``space`` (the
YAML's meaning), ``storage`` (opening and retrying storages), ``stopping`` (signals),
``policy`` (which trainings are shared), ``study`` (trials and workers), ``run`` (one
``explore`` run).
"""

from __future__ import annotations

from tinysnn_dse.explore.run import ExploreResult, explore
from tinysnn_dse.explore.space import DesignPoint, SearchSpace, parse_space
from tinysnn_dse.explore.storage import DEFAULT_STORAGE, StorageError
from tinysnn_dse.explore.study import (
    Plan,
    Progress,
    artifact_path,
    default_artifacts,
    hypervolume_history,
    load_records,
    prepare,
)

__all__ = [
    "DEFAULT_STORAGE",
    "DesignPoint",
    "ExploreResult",
    "Plan",
    "Progress",
    "SearchSpace",
    "StorageError",
    "artifact_path",
    "default_artifacts",
    "explore",
    "hypervolume_history",
    "load_records",
    "parse_space",
    "prepare",
]
