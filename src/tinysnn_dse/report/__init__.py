"""Reward, ranking, Pareto front, tables and figures over plain trial records.

No Optuna and no torch: the CLI reads the records (:class:`records.Record`) from the study
and hands them here. A report is written into a temporary folder and moved in when it is
complete; it replaces the files of an earlier report only with ``force``.
"""

from __future__ import annotations

import contextlib
import csv
import html
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinysnn_dse.axes import AXES, NAMES, is_fp32
from tinysnn_dse.errors import ConfigError, OutputError, os_error
from tinysnn_dse.records import Record
from tinysnn_dse.report import figures
from tinysnn_dse.report.select import (
    Constraints,
    pareto,
    rank,
    reference_text,
    row,
    selections,
)

PAPER_MUS = [0.1, 0.5, 1.0, 2.0]
CSV_FIELDS = [
    "trial",
    "design_key",
    *NAMES,  # the design axes (tinysnn_dse.axes)
    "accuracy",
    "memory_bits",
    "memory_kb",
    "normalized_memory",
    "reward",
    "latency_ms",
    "sparsity",
    "memory_format",
    "train_energy_modelled_mj",
    "infer_energy_modelled_mj",
    "train_energy_measured_mj",
    "infer_energy_measured_mj",
    "train_energy_measured_method",
    "infer_energy_measured_method",
    "infer_energy_modelled_uj_per_sample",
    "train_seconds",
    "shared_training",
    "train_batch_points",
]


@dataclass(frozen=True)
class Report:
    out_dir: Path
    markdown: Path
    html: Path
    csv: Path
    figures: list[Path]
    selected: dict[str, Any] | None


def _fmt_bits(b: int | None) -> str:
    return "FP32" if b is None else str(b)


def _precision(dp: dict[str, Any]) -> str:
    return f"W{_fmt_bits(dp['weight_bits'])}/V{_fmt_bits(dp['vmem_bits'])}/T{_fmt_bits(dp['vth_bits'])}"  # noqa: E501


def _scheme(dp: dict[str, Any]) -> str:
    if is_fp32(dp):
        return "FP32"
    return f"{dp['scheme'].upper()} {dp['rounding']}"


def _seeds_axes(dp: dict[str, Any]) -> str:
    """Issue 15's axes in one cell: ``250 lif``, ``100 if, 0.5 stdp``."""
    out = f"{dp.get('t_present_ms', 250)} {dp.get('leak', 'lif')}"
    if dp.get("t_present_infer_ms"):
        out += f" (inf {dp['t_present_infer_ms']})"
    if dp.get("prune"):
        out += f", {dp['prune']:g} {dp.get('prune_method', 'stdp')}"
    return out


def _e(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for r in rows:
        dp = r["design_point"]
        out.append(
            [
                str(r["trial"]),
                dp["model"],
                str(dp["neurons"]),
                _scheme(dp),
                _precision(dp),
                _seeds_axes(dp),
                f"{r['accuracy'] * 100:.2f}",
                f"{r['memory_kb']:,.1f}",
                f"{r['normalized_memory']:.4f}",
                f"{r['reward']:.4f}",
                _e(r.get("latency_ms"), 4),
                _e(r["train_energy_modelled_mj"]),
                _e(r["infer_energy_modelled_uj_per_sample"]),
                _e(r["train_energy_measured_mj"]),
                _e(r["infer_energy_measured_mj"]),
            ]
        )
    return out


HEADERS = [
    "trial",
    "model",
    "neurons",
    "scheme",
    "precision",
    "T ms, leak, pruning",
    "accuracy %",
    "memory KiB",
    "M",
    "reward",
    "latency ms",
    "train E model mJ",
    "infer E model uJ/img",
    "train E meas. mJ",
    "infer E meas. mJ",
]


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(headers: list[str], rows: list[list[str]], mark: int | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, r in enumerate(rows):
        cls = ' class="sel"' if mark is not None and i == mark else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_csv(path: Path, rows: list[dict[str, Any]], records: dict[str, Record]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        w.writeheader()
        for r in rows:
            dp = r["design_point"]
            rec = records[r["design_key"]]
            w.writerow(
                {
                    **{k: r.get(k) for k in CSV_FIELDS if k in r},
                    **{a.name: a.label(dp.get(a.name, a.default)) for a in AXES},
                    "train_seconds": rec.outcome.train_seconds,
                    "shared_training": rec.study.get("shared_training"),
                    "train_batch_points": rec.study.get("train_batch_points", 1),
                }
            )


def build(
    records: list[Record],
    out_dir: Path,
    study: str,
    mu: float = 0.5,
    constraints: Constraints | None = None,
    reference: str = "same-topology",
    source: str = "",
    hypervolume: tuple[tuple[float, float, float], list[tuple[int, float]]] | None = None,
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
    made = _missing_dirs(out_dir)
    what = f"the report to {out_dir}"
    try:
        stage = Path(tempfile.mkdtemp(dir=_stage_parent(out_dir), prefix=".report-"))
    except OSError as e:
        raise os_error(e, what) from None
    try:
        rep = _build(records, stage, study, mu, constraints, reference, source, hypervolume)
        names = sorted(p.name for p in stage.iterdir())
        _refuse_clobber(out_dir, names, force)
        out_dir.mkdir(parents=True, exist_ok=True)
        for n in names:
            os.replace(stage / n, out_dir / n)
    except OSError as e:
        _remove_empty(made)
        raise os_error(_disk_full(e), what) from None
    except BaseException:
        _remove_empty(made)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)

    def moved(p: Path) -> Path:
        return out_dir / p.name

    return Report(out_dir, moved(rep.markdown), moved(rep.html), moved(rep.csv),
                  [moved(p) for p in rep.figures], rep.selected)  # fmt: skip


#: what every report writes (and the figures, PNG and SVG)
FIXED_FILES = ("report.md", "index.html", "trials.csv", "selected.json")


def _missing_dirs(d: Path) -> list[Path]:
    out = []
    while not d.exists() and d != d.parent:
        out.append(d)
        d = d.parent
    return out


def _remove_empty(dirs: Iterable[Path]) -> None:
    for d in dirs:  # deepest first
        with contextlib.suppress(OSError):
            d.rmdir()


def _stage_parent(out_dir: Path) -> Path:
    """Where the report is staged: in ``out_dir`` if it exists, else its nearest existing
    ancestor (on the same file system, so moving the files in is a rename)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"cannot write the report to {out_dir}: it exists and is not a folder")
    d = out_dir.absolute()
    while not d.exists():
        d = d.parent
    return d


def _ours(out_dir: Path) -> bool:
    """``out_dir`` holds an earlier tinysnn report (re-running ``report`` replaces it)."""
    try:
        with (out_dir / "report.md").open(encoding="utf-8", errors="replace") as f:
            return f.readline().startswith("# tinysnn report")
    except OSError:
        return False


def _refuse_clobber(out_dir: Path, names: Iterable[str], force: bool) -> None:
    if force or not out_dir.is_dir() or _ours(out_dir):
        return
    wanted = set(names)
    try:
        clash = sorted(p.name for p in out_dir.iterdir() if p.name in wanted)
    except OSError as e:
        raise os_error(e, f"the report to {out_dir}") from None
    if clash:
        raise OutputError(
            f"{out_dir / clash[0]} already exists; give --force to replace it (and the other "
            "files the report writes there)"
        )


def _disk_full(e: OSError) -> OSError:
    """``e``, or ENOSPC where a writer reported a full disk without its errno."""
    if e.errno is None and "No space left" in str(e):
        return OSError(28, os.strerror(28))
    return e


def _build(
    records: list[Record],
    out_dir: Path,
    study: str,
    mu: float,
    constraints: Constraints | None,
    reference: str,
    source: str,
    hypervolume: tuple[tuple[float, float, float], list[tuple[int, float]]] | None,
) -> Report:
    """Every file of the report into ``out_dir`` (the staging folder)."""
    rows = sorted((row(r, mu, reference) for r in records), key=lambda r: r["trial"] or 0)
    by_key = {r.key: r for r in records}
    ranked = rank(records, mu, constraints, reference)
    selected = ranked[0] if ranked else None
    front3 = pareto(rows, "infer_energy_modelled_uj_per_sample")
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
    if len({r["design_point"].get("t_present_ms", 250) for r in rows}) > 1:
        figs.append(figures.accuracy_against(rows, "t_present_ms", "presentation time (ms)",
                                             out_dir))  # fmt: skip
    if len({r["design_point"].get("prune", 0.0) for r in rows}) > 1:
        figs.append(figures.accuracy_against(rows, "prune", "sparsity (pruned share of "
                                             "input synapses)", out_dir))  # fmt: skip
    hv_md: list[str] = []
    if hypervolume and hypervolume[1]:
        ref, hist = hypervolume
        figs.append(figures.hypervolume(hist, ref, out_dir))
        n = len(hist)
        marks = sorted({max(1, round(n * f)) for f in (0.1, 0.25, 0.5, 1.0)})
        hv_md = [
            "## Hypervolume (accuracy up; memory and modelled inference energy down)",
            "",
            f"Reference point: accuracy {ref[0]:g}, memory {ref[1]:,.1f} KiB, inference "
            f"energy {ref[2]:,.4g} uJ per image (modelled). Computed by Optuna over the "
            "study's completed trials, repeats of a point included, in trial order.",
            "",
            _md_table(
                ["trials", "hypervolume", "of the final"],
                [
                    [
                        str(k),
                        f"{hist[k - 1][1]:.6g}",
                        f"{hist[k - 1][1] / hist[-1][1]:.1%}" if hist[-1][1] else "n/a",
                    ]
                    for k in marks
                ],
            ),  # fmt: skip
            "",
        ]
    csv_path = out_dir / "trials.csv"
    write_csv(csv_path, rows, by_key)
    sels = selections(records, PAPER_MUS, constraints, reference)
    methods = sorted({str(r["infer_energy_measured_method"]) for r in rows})
    sel_rows = [
        [f"{m:g}", s["design_key"], f"{s['accuracy'] * 100:.2f}", f"{s['memory_kb']:,.1f}",
         f"{s['normalized_memory']:.4f}", f"{s['reward']:.4f}"] if s else
        [f"{m:g}", "(none admissible)", "", "", "", ""]
        for m, s in sels
    ]  # fmt: skip
    sel_head = ["mu", "selected design point", "accuracy %", "memory KiB", "M", "reward"]
    cons = constraints or Constraints()
    cons_txt = (
        ", ".join(
            f"{k} {v}"
            for k, v in (
                ("min accuracy", cons.min_accuracy),
                ("max memory KiB", cons.max_memory_kb),
                (f"max {cons.energy_phase} energy ({cons.energy_source}) mJ", cons.max_energy_mj),
            )
            if v is not None
        )
        or "none"
    )
    summary = table_rows(rows)
    sel_idx = next((i for i, r in enumerate(rows) if selected and r["trial"] == selected["trial"]),
                   None)  # fmt: skip
    md = [
        f"# tinysnn report: study `{study}`",
        "",
        f"{len(rows)} completed design points{f' from `{source}`' if source else ''}. "
        f"Reward R = A - mu * M with mu = {mu:g}; {reference_text(reference)}. "
        f"Constraints: {cons_txt}.",
        "",
        "**Selected model**: "
        + (
            f"`{selected['design_key']}` (trial {selected['trial']}): accuracy "
            f"{selected['accuracy'] * 100:.2f} %, memory {selected['memory_kb']:,.1f} KiB, "
            f"M {selected['normalized_memory']:.4f}, reward {selected['reward']:.4f}."
            if selected
            else "none meets the constraints."
        ),
        "",
        "Energy: *modelled* = event counts x per-operation energies (Horowitz, ISSCC 2014, "
        f"45 nm; docs/energy.md); *measured* by: {', '.join(methods)}.",
        "",
        "## Selection over mu (paper Fig. 9)",
        "",
        _md_table(sel_head, sel_rows),
        "",
        "## Pareto set (accuracy up, memory down, modelled inference energy down)",
        "",
        _md_table(HEADERS, table_rows(front3)),
        "",
        *hv_md,
        "## All design points",
        "",
        _md_table(HEADERS, summary),
        "",
        "## Figures",
        "",
    ]
    md += [f"![{p.stem}]({p.name})\n" for p in figs]
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(md) + "\n")
    css = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}"
        "table{border-collapse:collapse;font-size:12px;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "th{background:#f0f0f0}tr.sel td{background:#fff3b0;font-weight:bold}"
        "img{max-width:100%;border:1px solid #eee;margin:1em 0}"
        "code{background:#f4f4f4;padding:1px 4px}"
    )
    sel_html = (
        f"<code>{html.escape(selected['design_key'])}</code> (trial {selected['trial']}): "
        f"accuracy {selected['accuracy'] * 100:.2f} %, memory {selected['memory_kb']:,.1f} KiB, "
        f"M {selected['normalized_memory']:.4f}, reward {selected['reward']:.4f}"
        if selected
        else "none meets the constraints"
    )
    body = [
        f"<h1>tinysnn report: study <code>{html.escape(study)}</code></h1>",
        f"<p>{len(rows)} completed design points. Reward R = A - mu&middot;M with mu = {mu:g}; "
        f"{html.escape(reference_text(reference))}. Constraints: {html.escape(cons_txt)}.</p>",
        f"<p><b>Selected model</b>: {sel_html}.</p>",
        "<p>Energy: <i>modelled</i> = event counts &times; per-operation energies (Horowitz, "
        "ISSCC 2014, 45 nm); <i>measured</i> by: "
        f"{html.escape(', '.join(methods))}.</p>",
        "<h2>Selection over mu (paper Fig. 9)</h2>",
        _html_table(sel_head, sel_rows),
        "<h2>Pareto set</h2>",
        _html_table(HEADERS, table_rows(front3)),
        "<h2>Figures</h2>",
        *[f'<figure><img src="{p.name}" alt="{p.stem}"></figure>' for p in figs],
        "<h2>All design points</h2><p>(selected model highlighted; also in "
        '<a href="trials.csv">trials.csv</a>)</p>',
        _html_table(HEADERS, summary, sel_idx),
    ]
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>tinysnn report: {html.escape(study)}</title><style>{css}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
    html_path = out_dir / "index.html"
    html_path.write_text(page)
    (out_dir / "selected.json").write_text(json.dumps(selected, indent=2, default=str) + "\n")
    return Report(out_dir, md_path, html_path, csv_path, figs, selected)
