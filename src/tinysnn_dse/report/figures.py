"""Figures of the report (matplotlib, Agg backend): the paper's Figs. 6-9 and a Pareto front.

Each function takes selection rows (:func:`tinysnn_dse.report.select.row`), draws one
figure and writes it as PNG and SVG; it returns the PNG path.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

from tinysnn_dse.axes import BITS, ROUNDINGS, is_fp32

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MODEL_COLORS = {"baseline": "#7f7f7f", "sl-stdp": "#9467bd", "tinysnn": "#1f77b4",
                "diet": "#d62728"}  # fmt: skip
NEURON_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#8c564b", "#e377c2"]


def _save(fig: Any, out: Path, name: str) -> Path:
    png = out / f"{name}.png"
    try:
        fig.savefig(png, dpi=110, bbox_inches="tight")
        fig.savefig(out / f"{name}.svg", bbox_inches="tight")
    finally:
        plt.close(fig)
    return png


def _bits(b: int | None) -> str:
    return "FP32" if b is None else f"{b}"


def _fp32_refs(rows: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """FP32 points as reference lines: 'baseline FP32 (400)' etc."""
    out = []
    for r in rows:
        dp = r["design_point"]
        if is_fp32(dp):
            out.append((f"{dp['model']} FP32 ({dp['neurons']})", r))
    return out


def grouped(
    rows: list[dict[str, Any]], metric: str, ylabel: str, title: str, out: Path, name: str,
    scale: float = 1.0,
) -> Path:  # fmt: skip
    """One panel per (scheme, rounding); bars over weight bits, one colour per neuron
    precision; FP32 points as horizontal reference lines in every panel."""
    quantized = [r for r in rows if not is_fp32(r["design_point"])]
    panels: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in quantized:
        dp = r["design_point"]
        panels[(dp["scheme"], dp["rounding"])].append(r)
    keys = sorted(panels) or [("fp32", "-")]
    schemes = sorted({k[0] for k in keys})
    roundings = sorted({k[1] for k in keys}, key=_ROUND_ORDER.index)
    fig, axes = plt.subplots(
        len(schemes), len(roundings), figsize=(4.2 * len(roundings), 3.2 * len(schemes)),
        squeeze=False, sharey=True,
    )  # fmt: skip
    refs = _fp32_refs(rows)
    all_nb = sorted({_nbits(p) for p in quantized}, reverse=True)  # one colour each, everywhere
    for i, sch in enumerate(schemes):
        for j, rnd in enumerate(roundings):
            ax = axes[i][j]
            pts = panels.get((sch, rnd), [])
            wb = sorted({_wbits(p) for p in pts}, reverse=True)
            nb = sorted({_nbits(p) for p in pts}, reverse=True)
            width = 0.8 / max(1, len(nb))
            for k, n in enumerate(nb):
                color = NEURON_COLORS[all_nb.index(n) % len(NEURON_COLORS)]
                xs, ys = [], []
                for x, w in enumerate(wb):
                    for p in pts:
                        if (_wbits(p), _nbits(p)) == (w, n):
                            xs.append(x + (k - (len(nb) - 1) / 2) * width)
                            ys.append(p[metric] * scale)
                label = f"Vmem {_b33(n[0])} / Vth {_b33(n[1])}"
                ax.bar(xs, ys, width=width, label=label, color=color)
            for m, (lab, r) in enumerate(refs):
                ax.axhline(r[metric] * scale, ls="--", lw=1, color=_ref_color(lab, m), label=lab)
            ax.set_xticks(range(len(wb)), [_b33(w) for w in wb])
            ax.set_title(f"{sch.upper()}, {rnd}", fontsize=10)
            ax.set_xlabel("weight bits")
            if j == 0:
                ax.set_ylabel(ylabel)
            ax.grid(axis="y", alpha=0.3)
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for h_, lab_ in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(lab_, h_)
    fig.legend(list(legend.values()), list(legend), loc="upper center",
               ncol=min(6, len(legend)), fontsize=8,
               bbox_to_anchor=(0.5, 1.0 + 0.06 / len(schemes)))  # fmt: skip
    fig.suptitle(title, y=1.0 + 0.12 / len(schemes))
    fig.tight_layout()
    return _save(fig, out, name)


_BITS_KEYS = BITS
_ROUND_ORDER = ["-", *ROUNDINGS]  # the axis table's order


def _wbits(r: dict[str, Any]) -> int:
    """Weight bits with FP32 as 33, so that it sorts above every fixed-point width."""
    return r["design_point"]["weight_bits"] or 33


def _nbits(r: dict[str, Any]) -> tuple[int, int]:
    dp = r["design_point"]
    return (dp["vmem_bits"] or 33, dp["vth_bits"] or 33)


def _b33(b: int) -> str:
    return "FP32" if b == 33 else str(b)


def _ref_color(label: str, m: int) -> str:
    return MODEL_COLORS.get(label.split()[0], "black")


def memory(rows: list[dict[str, Any]], out: Path) -> Path:
    """Fig. 7: memory footprint of each distinct (model, size, precision)."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        dp = r["design_point"]
        seen.setdefault((dp["model"], dp["neurons"], *(dp[k] for k in _BITS_KEYS)), r)
    items = sorted(seen.items(), key=lambda kv: -kv[1]["memory_bits"])
    labels = [f"{k[0]} n{k[1]} W{_bits(k[2])}/V{_bits(k[3])}/T{_bits(k[4])}" for k, _ in items]
    kb = [r["memory_kb"] for _, r in items]
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(items) + 1.2))
    ax.barh(range(len(items)), kb, color=[MODEL_COLORS.get(k[0], "C0") for k, _ in items])
    ax.set_yticks(range(len(items)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("memory footprint (KiB)")
    for i, (_k, r) in enumerate(items):
        ax.text(kb[i], i, f" {kb[i]:,.0f} KiB ({r['normalized_memory']:.2f})", va="center",
                fontsize=6)  # fmt: skip
    ax.set_title("Fig. 7: memory footprint (normalized memory M in brackets)")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, out, "fig7_memory")


def reward_vs_mu(rows: list[dict[str, Any]], mus: list[float], chosen_mu: float, out: Path) -> Path:
    """Fig. 9: R(mu) of the models that any mu in range selects; selections marked."""
    grid = [i * max(mus + [chosen_mu]) / 100 for i in range(101)]

    def best(mu: float) -> dict[str, Any]:
        return max(
            rows,
            key=lambda r: (r["accuracy"] - mu * r["normalized_memory"], -r["memory_bits"]),
        )

    winners = {best(mu)["design_key"]: best(mu) for mu in grid + mus + [chosen_mu]}
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, (key, r) in enumerate(sorted(winners.items())):
        ys = [r["accuracy"] - mu * r["normalized_memory"] for mu in grid]
        ax.plot(grid, ys, color=NEURON_COLORS[i % 6], lw=1.5, label=key)
    for mu in mus:
        r = best(mu)
        ax.plot([mu], [r["accuracy"] - mu * r["normalized_memory"]], "o", color="black", ms=5)
        ax.annotate(f"mu={mu:g}", (mu, r["accuracy"] - mu * r["normalized_memory"]),
                    textcoords="offset points", xytext=(4, 6), fontsize=7)  # fmt: skip
    r = best(chosen_mu)
    label = f"selected at mu={chosen_mu:g}: {r['design_key']}"
    ax.plot([chosen_mu], [r["accuracy"] - chosen_mu * r["normalized_memory"]], "*",
            color="red", ms=14, label=label)  # fmt: skip
    ax.set_xlabel("mu")
    ax.set_ylabel("reward R = A - mu * M")
    ax.set_title("Fig. 9: reward of the selected models over mu")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out, "fig9_reward")


def accuracy_against(rows: list[dict[str, Any]], axis: str, label: str, out: Path) -> Path:
    """Accuracy against one ordered design axis (e.g. presentation time), one line per
    precision (W/Vmem/Vth) and the other axes' values; the best of repeats per x."""
    lines: dict[str, dict[Any, float]] = defaultdict(dict)
    unpruned: dict[str, dict[Any, float]] = defaultdict(dict)  # axis "prune": x = 0
    for r in rows:
        dp = r["design_point"]
        others = [
            f"{k}={dp[k]}" for k in ("model", "neurons", "leak", "t_present_ms")
            if k in dp and k != axis
        ]  # fmt: skip
        prec = "FP32" if is_fp32(dp) else (
            f"{dp['scheme']} {dp['rounding']} W{_bits(dp['weight_bits'])}/"
            f"V{_bits(dp['vmem_bits'])}/T{_bits(dp['vth_bits'])}"
        )  # fmt: skip
        key = f"{prec}, {', '.join(others)}"
        x = dp[axis]
        if axis == "prune":  # one line per pruning method, each starting at the unpruned point
            if not x:
                unpruned[key][x] = max(unpruned[key].get(x, 0.0), r["accuracy"] * 100)
                continue
            key += f", {dp.get('prune_method', 'stdp')}"
        lines[key][x] = max(lines[key].get(x, 0.0), r["accuracy"] * 100)
    for key, vals in lines.items():
        base = key.rsplit(", ", 1)[0]
        if axis == "prune" and base in unpruned:
            vals.update(unpruned[base])
    fig, ax = plt.subplots(figsize=(8, 5))
    best = sorted(lines, key=lambda k: -max(lines[k].values()))
    for k in best[:12]:  # the twelve best lines; the CSV has them all
        xs = sorted(lines[k])
        ax.plot(xs, [lines[k][x] for x in xs], "-o", ms=3, lw=1, label=k)
    ax.set_xlabel(label)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Accuracy against {label}\n(the 12 best precision/network lines)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    return _save(fig, out, f"accuracy_vs_{axis}")


def accuracy_vs_latency(rows: list[dict[str, Any]], out: Path) -> Path:
    """Accuracy against latency (ms per image: the STDP family's presentation time, the
    gradient-trained family's steps x dt), every point a marker coloured by model (filled:
    FP32; open: fixed point), and each model's accuracy-latency Pareto front joined."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model, color in MODEL_COLORS.items():
        pts = [r for r in rows if r["design_point"]["model"] == model and r.get("latency_ms")]
        if not pts:
            continue
        for fp32 in (True, False):
            sel = [r for r in pts if is_fp32(r["design_point"]) == fp32]
            if sel:
                kind = "FP32" if fp32 else "fixed point"
                ax.scatter([r["latency_ms"] for r in sel], [r["accuracy"] * 100 for r in sel],
                           s=22, color=color if fp32 else "none", edgecolors=color,
                           alpha=0.8, label=f"{model} {kind}")  # fmt: skip
        front, best = [], -1.0
        for r in sorted(pts, key=lambda r: (r["latency_ms"], -r["accuracy"])):
            if r["accuracy"] > best:
                front.append(r)
                best = r["accuracy"]
        ax.plot([r["latency_ms"] for r in front], [r["accuracy"] * 100 for r in front], "-",
                color=color, lw=1)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms per image, log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy against latency, both families\n(lines: each model's best accuracy "
                 "at or below a latency)", fontsize=10)  # fmt: skip
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return _save(fig, out, "accuracy_vs_latency")


def hypervolume(history: list[tuple[int, float]], ref: tuple[float, ...], out: Path) -> Path:
    """Hypervolume of the completed trials against the number of trials run."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(range(1, len(history) + 1), [h for _, h in history], "-", color="#1f77b4")
    ax.set_xlabel("completed trials")
    ax.set_ylabel("hypervolume (accuracy x KiB x uJ)")
    ax.set_title(f"Hypervolume; reference point accuracy {ref[0]:g}, {ref[1]:,.1f} KiB, "
                 f"{ref[2]:,.3g} uJ/image", fontsize=9)  # fmt: skip
    ax.grid(alpha=0.3)
    return _save(fig, out, "hypervolume")


def pareto_front(rows: list[dict[str, Any]], front: list[dict[str, Any]], out: Path) -> Path:
    """Accuracy against memory for every point, the accuracy-memory Pareto front joined."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model, color in MODEL_COLORS.items():
        pts = [r for r in rows if r["design_point"]["model"] == model]
        if pts:
            ax.scatter([r["memory_kb"] for r in pts], [r["accuracy"] * 100 for r in pts],
                       s=18, color=color, alpha=0.7, label=model)  # fmt: skip
    f = sorted(front, key=lambda r: r["memory_bits"])
    ax.plot([r["memory_kb"] for r in f], [r["accuracy"] * 100 for r in f], "-o", color="red",
            ms=4, lw=1, label="Pareto front (accuracy-memory)")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("memory footprint (KiB, log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy against memory")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, out, "pareto")
