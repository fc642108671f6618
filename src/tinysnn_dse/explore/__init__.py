"""Design-space exploration: search spaces, Optuna studies, worker processes.

Owns Optuna; never imports the CLI, rich, YAML or the report layer. Progress reaches the
caller as a callback ``on_progress(Progress)``. The package's face; its modules, one
concern each:

- ``space``: the YAML's meaning (design points, budget, queue order);
- ``storage``: opening, checking and retrying storages;
- ``stopping``: signals, and sections they may not cut;
- ``policy``: which trainings are shared, batched, cached and locked;
- ``study``: creating or resuming a study and queueing its points;
- ``distributions``: a point's axes as Optuna parameters, per sampler family;
- ``liveness``: heartbeats, and failing trials whose worker is gone;
- ``worker``: a worker process and its objective;
- ``progress``: a run's progress and ETA;
- ``results``: records and hypervolume read back from a study;
- ``artifacts``: the artifact folder;
- ``run``: one ``explore`` run.
"""

from __future__ import annotations

from tinysnn_dse.explore.artifacts import artifact_path, default_artifacts
from tinysnn_dse.explore.progress import Progress
from tinysnn_dse.explore.results import hypervolume_history, load_records
from tinysnn_dse.explore.run import ExploreResult, explore
from tinysnn_dse.explore.space import DesignPoint, SearchSpace, parse_space
from tinysnn_dse.explore.storage import DEFAULT_STORAGE, StorageError
from tinysnn_dse.explore.study import Plan, prepare

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
