"""Reading a study back: the records of its completed trials, one per design point, and
its hypervolume history."""

from __future__ import annotations

import warnings

import numpy as np
import optuna

from tinysnn_dse.explore.storage import StorageError, load_study, must_exist, open_storage
from tinysnn_dse.explore.study import completed_trials
from tinysnn_dse.records import Record, RecordError


def load_records(url: str, study: str | None = None) -> tuple[str, list[Record]]:
    """(study name, records of completed trials, one per design point, lowest number first);
    a study written before records had a schema (tinysnn 0.1.0) loads too, and one that
    cannot be read is a one-line :class:`RecordError` naming the trial."""
    must_exist(url)
    storage = open_storage(url, write=False)
    if study is None:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        if len(names) != 1:
            raise StorageError(
                "no study in this storage" if not names else
                f"several studies in this storage ({', '.join(names)}); choose one with --study"
            )  # fmt: skip
        study = names[0]
    s = load_study(storage, study)
    seen: set[str] = set()
    out = []
    for t in sorted(completed_trials(s), key=lambda t: t.number):
        rec = t.user_attrs.get("record")
        key = str(t.user_attrs.get("design_key"))
        if rec is None or key in seen:
            continue
        seen.add(key)
        try:
            out.append(Record.from_dict(rec))
        except RecordError as e:
            raise RecordError(
                f"study {study!r}, trial {t.number}: {e}; re-run `tinysnn explore` for it "
                "with a new --study name"
            ) from None
    return study, out


def hypervolume_history(
    url: str, study: str, reference: tuple[float, float, float]
) -> list[tuple[int, float]]:
    """(trial number, hypervolume of the completed trials up to it) for the study's three
    objectives (accuracy up; memory KiB and modelled inference uJ per image down) against
    ``reference`` (accuracy, memory, energy: a point every design beats). Computed by
    Optuna's own hypervolume history (``plot_hypervolume_history``, whose plotted line is
    the data), so no hypervolume code of ours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_hypervolume_history

    s = load_study(open_storage(url, write=False), study)
    if not completed_trials(s):
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = plot_hypervolume_history(s, list(reference))
    line = ax.lines[0]
    xs = [int(x) for x in np.asarray(line.get_xdata(), dtype=float)]
    ys = [float(y) for y in np.asarray(line.get_ydata(), dtype=float)]
    plt.close(ax.get_figure(root=True))
    return list(zip(xs, ys, strict=True))
