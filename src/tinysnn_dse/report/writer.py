"""Writing a report folder: every file into a temporary folder beside it
(:func:`files.staging`), then moved in when complete; an earlier tinysnn report is
replaced, a user's file of the same name only with ``force``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinysnn_dse.errors import ConfigError, OutputError
from tinysnn_dse.files import check_clobber, move_in, staging
from tinysnn_dse.records import Record
from tinysnn_dse.report import figures
from tinysnn_dse.report.pages import (
    PAPER_MUS,
    Hypervolume,
    html_page,
    markdown,
    summarize,
)
from tinysnn_dse.report.select import Constraints, pareto
from tinysnn_dse.report.tables import write_csv

#: what every report writes (and the figures, PNG and SVG)
FIXED_FILES = ("report.md", "index.html", "trials.csv", "selected.json")


@dataclass(frozen=True)
class Report:
    out_dir: Path
    markdown: Path
    html: Path
    csv: Path
    figures: list[Path]
    selected: dict[str, Any] | None

    def moved_to(self, out_dir: Path) -> Report:
        """This report as its files are named once moved into ``out_dir``."""

        def moved(p: Path) -> Path:
            return out_dir / p.name

        return Report(out_dir, moved(self.markdown), moved(self.html), moved(self.csv),
                      [moved(p) for p in self.figures], self.selected)  # fmt: skip


def build(
    records: list[Record],
    out_dir: Path,
    study: str,
    mu: float = 0.5,
    constraints: Constraints | None = None,
    reference: str = "same-topology",
    source: str = "",
    hypervolume: Hypervolume | None = None,
    force: bool = False,
) -> Report:
    """Write ``report.md``, ``index.html``, ``trials.csv``, ``selected.json`` and the figures
    into ``out_dir``; ``hypervolume``: (reference point, the study's hypervolume after each
    trial). Files of the same name already in ``out_dir`` are refused (a one-line
    :class:`OutputError`) unless ``force`` or they are an earlier tinysnn report (its
    ``report.md``), which is replaced; a full disk is one line and leaves nothing."""
    if not records:
        raise ConfigError(f"study {study!r} has no completed trials to report")
    _refuse_clobber(out_dir, FIXED_FILES, force)  # the figures' names are checked when drawn
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"cannot write the report to {out_dir}: it exists and is not a folder")
    with staging(out_dir, f"the report to {out_dir}", ".report-") as stage:
        rep = write_all(records, stage, study, mu, constraints, reference, source, hypervolume)
        _refuse_clobber(out_dir, [p.name for p in stage.iterdir()], force)
        move_in(stage, out_dir)
    return rep.moved_to(out_dir)


def write_all(
    records: list[Record],
    out_dir: Path,
    study: str,
    mu: float,
    constraints: Constraints | None,
    reference: str,
    source: str,
    hypervolume: Hypervolume | None,
) -> Report:
    """Every file of the report into ``out_dir`` (the staging folder)."""
    s = summarize(records, study, mu, constraints, reference, source)
    figs = draw_figures(s.rows, mu, hypervolume, out_dir)
    csv_path = out_dir / "trials.csv"
    write_csv(csv_path, s.rows, {r.key: r for r in records})
    md_path = out_dir / "report.md"
    md_path.write_text(markdown(s, figs, hypervolume))
    html_path = out_dir / "index.html"
    html_path.write_text(html_page(s, figs))
    (out_dir / "selected.json").write_text(json.dumps(s.selected, indent=2, default=str) + "\n")
    return Report(out_dir, md_path, html_path, csv_path, figs, s.selected)


def draw_figures(
    rows: list[dict[str, Any]], mu: float, hypervolume: Hypervolume | None, out_dir: Path
) -> list[Path]:
    """The paper's figures (6 to 9 and the accuracy-memory Pareto front), accuracy against
    each of presentation time and pruning where the points differ in it, and the
    hypervolume history where there is one, accuracy against latency where the points
    differ in it (both families on one figure); their PNG files."""
    front2 = pareto([{**r, "_e": math.nan} for r in rows], "_e")
    figs = [
        figures.grouped(rows, "accuracy", "accuracy (%)", "Fig. 6: accuracy per design point",
                        out_dir, "fig6_accuracy", scale=100),
        figures.memory(rows, out_dir),
        figures.grouped(rows, "train_energy_modelled_mj", "training energy, modelled (mJ)",
                        "Fig. 8a: training energy (modelled)", out_dir, "fig8a_train_energy"),
        figures.grouped(rows, "infer_energy_modelled_uj_per_sample",
                        "inference energy, modelled (uJ / image)",
                        "Fig. 8b: inference energy per image (modelled)", out_dir,
                        "fig8b_infer_energy"),
        figures.reward_vs_mu(rows, PAPER_MUS, mu, out_dir),
        figures.pareto_front(rows, front2, out_dir),
    ]  # fmt: skip
    if len({r.get("latency_ms") for r in rows if r.get("latency_ms")}) > 1:
        figs.append(figures.accuracy_vs_latency(rows, out_dir))
    if len({r["design_point"].get("t_present_ms", 250) for r in rows}) > 1:
        figs.append(figures.accuracy_against(rows, "t_present_ms", "presentation time (ms)",
                                             out_dir))  # fmt: skip
    if len({r["design_point"].get("prune", 0.0) for r in rows}) > 1:
        figs.append(figures.accuracy_against(rows, "prune", "sparsity (pruned share of "
                                             "input synapses)", out_dir))  # fmt: skip
    if hypervolume and hypervolume[1]:
        figs.append(figures.hypervolume(hypervolume[1], hypervolume[0], out_dir))
    return figs


def _ours(out_dir: Path) -> bool:
    """``out_dir`` holds an earlier tinysnn report (re-running ``report`` replaces it)."""
    try:
        with (out_dir / "report.md").open(encoding="utf-8", errors="replace") as f:
            return f.readline().startswith("# tinysnn report")
    except OSError:
        return False


def _refuse_clobber(out_dir: Path, names: list[str] | tuple[str, ...], force: bool) -> None:
    """A user's file of a name the report writes is refused without ``force``; an earlier
    report of ours is not."""
    if out_dir.is_dir() and not _ours(out_dir):
        check_clobber(out_dir, names, force, "the report", where=f"the report to {out_dir}")
