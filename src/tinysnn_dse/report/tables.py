"""The report's tables: each design point's row as table cells (Markdown and HTML), and
``trials.csv`` (one column per design axis, from the axis table)."""

from __future__ import annotations

import csv
import html
import math
from pathlib import Path
from typing import Any

from tinysnn_dse.axes import AXES, NAMES, is_fp32
from tinysnn_dse.records import NEUROBENCH, Record

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
    "family",
    *(f"nb_{k}" for k in NEUROBENCH),  # NeuroBench's metrics where the family counts them
]


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


def _fmt_bits(b: int | None) -> str:
    return "FP32" if b is None else str(b)


def _precision(dp: dict[str, Any]) -> str:
    return f"W{_fmt_bits(dp['weight_bits'])}/V{_fmt_bits(dp['vmem_bits'])}/T{_fmt_bits(dp['vth_bits'])}"  # noqa: E501


def _scheme(dp: dict[str, Any]) -> str:
    if is_fp32(dp):
        return "FP32"
    return f"{dp['scheme'].upper()} {dp['rounding']}"


def _seeds_axes(dp: dict[str, Any]) -> str:
    """The presentation time, leak and pruning axes in one cell: ``250 lif``,
    ``100 if, 0.5 stdp``."""
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


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def html_table(headers: list[str], rows: list[list[str]], mark: int | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, r in enumerate(rows):
        cls = ' class="sel"' if mark is not None and i == mark else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_csv(path: Path, rows: list[dict[str, Any]], records: dict[str, Record]) -> None:
    with open(path, "w", newline="") as fh:
        # one column per adversarial accuracy any row measured (runner.robustness)
        adv = sorted({k for r in rows for k in r.get("robustness") or {}})
        w = csv.DictWriter(fh, fieldnames=[*CSV_FIELDS, *(f"adv_{k}" for k in adv)])
        w.writeheader()
        for r in rows:
            dp = r["design_point"]
            rec = records[r["design_key"]]
            w.writerow(
                {
                    **{k: r.get(k) for k in CSV_FIELDS if k in r},
                    # an axis of another family than the point's is an empty cell
                    **{
                        a.name: a.label(dp.get(a.name, a.default))
                        if a.applies_to(dp["model"])
                        else ""
                        for a in AXES
                    },  # fmt: skip
                    "train_seconds": rec.outcome.train_seconds,
                    "shared_training": rec.study.get("shared_training"),
                    "train_batch_points": rec.study.get("train_batch_points", 1),
                    **{f"adv_{k}": v for k, v in (r.get("robustness") or {}).items()},
                }
            )
