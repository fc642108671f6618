"""The report's pages: what they say (:class:`Summary`, computed once from the records)
as ``report.md`` and as ``index.html``."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinysnn_dse.records import Record
from tinysnn_dse.report.select import (
    Constraints,
    pareto,
    rank,
    reference_text,
    row,
    selections,
)
from tinysnn_dse.report.tables import HEADERS, html_table, md_table, table_rows

#: the mu values of the paper's Fig. 9, each with its selection
PAPER_MUS = [0.1, 0.5, 1.0, 2.0]
#: (reference point, the study's hypervolume after each trial)
Hypervolume = tuple[tuple[float, float, float], list[tuple[int, float]]]
SELECTION_HEADERS = ["mu", "selected design point", "accuracy %", "memory KiB", "M", "reward"]
CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}"
    "table{border-collapse:collapse;font-size:12px;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
    "th{background:#f0f0f0}tr.sel td{background:#fff3b0;font-weight:bold}"
    "img{max-width:100%;border:1px solid #eee;margin:1em 0}"
    "code{background:#f4f4f4;padding:1px 4px}"
)


@dataclass(frozen=True)
class Summary:
    """What the pages say: every design point's row (in trial order), the selected one,
    the Pareto set, the selection at each of :data:`PAPER_MUS`, the constraints and the
    energy measurement methods, in words."""

    study: str
    source: str
    mu: float
    reference: str
    rows: list[dict[str, Any]]
    selected: dict[str, Any] | None
    front: list[dict[str, Any]]  # accuracy up, memory down, modelled inference energy down
    selection_rows: list[list[str]]
    constraints: str
    methods: list[str]
    #: the adversarial accuracy the Pareto set also maximizes (``--robust-key``), or None
    robust_key: str | None = None

    @property
    def selected_index(self) -> int | None:
        """The selected point's position in :attr:`rows`."""
        sel = self.selected
        return next((i for i, r in enumerate(self.rows) if sel and r["trial"] == sel["trial"]),
                    None)  # fmt: skip


def summarize(
    records: list[Record],
    study: str,
    mu: float,
    constraints: Constraints | None,
    reference: str,
    source: str,
) -> Summary:
    """The :class:`Summary` of ``records`` under reward weight ``mu`` and ``constraints``."""
    rows = sorted((row(r, mu, reference) for r in records), key=lambda r: r["trial"] or 0)
    ranked = rank(records, mu, constraints, reference)
    sel_rows = [
        [f"{m:g}", s["design_key"], f"{s['accuracy'] * 100:.2f}", f"{s['memory_kb']:,.1f}",
         f"{s['normalized_memory']:.4f}", f"{s['reward']:.4f}"] if s else
        [f"{m:g}", "(none admissible)", "", "", "", ""]
        for m, s in selections(records, PAPER_MUS, constraints, reference)
    ]  # fmt: skip
    return Summary(
        study=study,
        source=source,
        mu=mu,
        reference=reference,
        rows=rows,
        selected=ranked[0] if ranked else None,
        front=pareto(
            rows, "infer_energy_modelled_uj_per_sample", (constraints or Constraints()).robust_key
        ),  # fmt: skip
        selection_rows=sel_rows,
        constraints=constraints_text(constraints or Constraints()),
        methods=sorted({str(r["infer_energy_measured_method"]) for r in rows}),
        robust_key=(constraints or Constraints()).robust_key,
    )


def constraints_text(cons: Constraints) -> str:
    """The constraints that are set, in words ("none" where none is)."""
    return (
        ", ".join(
            f"{k} {v}"
            for k, v in (
                ("min accuracy", cons.min_accuracy),
                ("max memory KiB", cons.max_memory_kb),
                (f"max {cons.energy_phase} energy ({cons.energy_source}) mJ", cons.max_energy_mj),
                ("max latency ms", cons.max_latency_ms),
                (f"min {cons.robust} accuracy", cons.min_robust_accuracy),
            )
            if v is not None
        )
        or "none"
    )


def markdown(s: Summary, figs: list[Path], hypervolume: Hypervolume | None) -> str:
    """``report.md``."""
    sel = s.selected
    md = [
        f"# tinysnn report: study `{s.study}`",
        "",
        f"{len(s.rows)} completed design points{f' from `{s.source}`' if s.source else ''}. "
        f"Reward R = A - mu * M with mu = {s.mu:g}; {reference_text(s.reference)}. "
        f"Constraints: {s.constraints}.",
        "",
        "**Selected model**: "
        + (
            f"`{sel['design_key']}` (trial {sel['trial']}): accuracy "
            f"{sel['accuracy'] * 100:.2f} %, memory {sel['memory_kb']:,.1f} KiB, "
            f"M {sel['normalized_memory']:.4f}, reward {sel['reward']:.4f}."
            if sel
            else "none meets the constraints."
        ),
        "",
        "Energy: *modelled* = event counts x per-operation energies (Horowitz, ISSCC 2014, "
        f"45 nm; docs/energy.md); *measured* by: {', '.join(s.methods)}.",
        "",
        "## Selection over mu (paper Fig. 9)",
        "",
        md_table(SELECTION_HEADERS, s.selection_rows),
        "",
        "## Pareto set (accuracy up, memory down, modelled inference energy down"
        + (f", {s.robust_key} accuracy up)" if s.robust_key else ")"),
        "",
        md_table(HEADERS, table_rows(s.front)),
        "",
        *robustness_section(s.rows),
        *hypervolume_section(hypervolume),
        "## All design points",
        "",
        md_table(HEADERS, table_rows(s.rows)),
        "",
        "## Figures",
        "",
    ]
    md += [f"![{p.stem}]({p.name})\n" for p in figs]
    return "\n".join(md) + "\n"


def robustness_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the adversarial accuracies the rows measured (%): one column per
    ``THREAT-ATTACK-EPSILON`` any of them has, ``clean`` on the same images first."""
    keys = sorted({k for r in rows for k in r.get("robustness") or {}} - {"clean"},
                  key=lambda k: (k.split("-")[0] != "transfer", k))  # fmt: skip
    have = [r for r in rows if r.get("robustness")]
    if not have:
        return [], []
    out = [
        [str(r["trial"]), r["design_key"],
         *(f"{r['robustness'][k] * 100:.1f}" if k in r["robustness"] else ""
           for k in ("clean", *keys))]
        for r in have
    ]  # fmt: skip
    return ["trial", "design point", "clean", *keys], out


def robustness_section(rows: list[dict[str, Any]]) -> list[str]:
    """The Markdown lines of the adversarial accuracies (none where no row has them)."""
    headers, body = robustness_table(rows)
    if not body:
        return []
    return [
        "## Adversarial accuracy (%)",
        "",
        "On the first test images (`clean`: the same images unattacked), each adversarial "
        "image on the 8-bit pixel grid within epsilon (infinity norm); *white*: through the "
        "design's own gradients (surrogate BPTT), *transfer*: crafted on the ANN "
        "(runner/robustness.py).",
        "",
        md_table(headers, body),
        "",
    ]


def hypervolume_section(hypervolume: Hypervolume | None) -> list[str]:
    """The Markdown lines on the study's hypervolume at 10, 25, 50 and 100 % of its
    trials (none without a history)."""
    if not (hypervolume and hypervolume[1]):
        return []
    ref, hist = hypervolume
    n = len(hist)
    marks = sorted({max(1, round(n * f)) for f in (0.1, 0.25, 0.5, 1.0)})
    return [
        "## Hypervolume (accuracy up; memory and modelled inference energy down)",
        "",
        f"Reference point: accuracy {ref[0]:g}, memory {ref[1]:,.1f} KiB, inference "
        f"energy {ref[2]:,.4g} uJ per image (modelled). Computed by Optuna over the "
        "study's completed trials, repeats of a point included, in trial order.",
        "",
        md_table(
            ["trials", "hypervolume", "of the final"],
            [
                [
                    str(k),
                    f"{hist[k - 1][1]:.6g}",
                    f"{hist[k - 1][1] / hist[-1][1]:.1%}" if hist[-1][1] else "n/a",
                ]
                for k in marks
            ],
        ),
        "",
    ]


def html_page(s: Summary, figs: list[Path]) -> str:
    """``index.html``: the Markdown page's content, the selected model highlighted."""
    sel = s.selected
    sel_html = (
        f"<code>{html.escape(sel['design_key'])}</code> (trial {sel['trial']}): "
        f"accuracy {sel['accuracy'] * 100:.2f} %, memory {sel['memory_kb']:,.1f} KiB, "
        f"M {sel['normalized_memory']:.4f}, reward {sel['reward']:.4f}"
        if sel
        else "none meets the constraints"
    )
    adv = robustness_table(s.rows)  # (headers, rows); no rows: no section
    body = [
        f"<h1>tinysnn report: study <code>{html.escape(s.study)}</code></h1>",
        f"<p>{len(s.rows)} completed design points. Reward R = A - mu&middot;M with mu = "
        f"{s.mu:g}; {html.escape(reference_text(s.reference))}. Constraints: "
        f"{html.escape(s.constraints)}.</p>",
        f"<p><b>Selected model</b>: {sel_html}.</p>",
        "<p>Energy: <i>modelled</i> = event counts &times; per-operation energies (Horowitz, "
        "ISSCC 2014, 45 nm); <i>measured</i> by: "
        f"{html.escape(', '.join(s.methods))}.</p>",
        "<h2>Selection over mu (paper Fig. 9)</h2>",
        html_table(SELECTION_HEADERS, s.selection_rows),
        "<h2>Pareto set</h2>",
        html_table(HEADERS, table_rows(s.front)),
        *(["<h2>Adversarial accuracy (%)</h2>", html_table(*adv)] if adv[1] else []),
        "<h2>Figures</h2>",
        *[f'<figure><img src="{p.name}" alt="{p.stem}"></figure>' for p in figs],
        "<h2>All design points</h2><p>(selected model highlighted; also in "
        '<a href="trials.csv">trials.csv</a>)</p>',
        html_table(HEADERS, table_rows(s.rows), s.selected_index),
    ]
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>tinysnn report: {html.escape(s.study)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
