"""The robustness tables of docs/results.md (issue 25) from finished studies: adversarial
accuracy against leak, T and encoding for both families and the ANN, averaged over the
seeds' studies given, and the crossing of init, T, leak and encoding with precision.

    .venv/bin/python benchmarks/robust_tables.py sqlite:///rob-s0.db:robustness-mnist \\
        sqlite:///rob-s1.db:robustness-fp32-mnist-s1 sqlite:///rob-s2.db:robustness-fp32-mnist-s2

Each argument is STORAGE:STUDY (the study's name after the last colon).
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from typing import Any

from tinysnn_dse.explore import load_records

KEYS = ("clean", "white-fgsm-0.1", "white-pgd-0.1", "transfer-fgsm-0.1", "transfer-pgd-0.1",
        "white-pgd-0.2", "transfer-pgd-0.2", "transfer-pgd-0.3")  # fmt: skip


def _fmt(vals: list[float]) -> str:
    if not vals:
        return ""
    m = statistics.mean(vals) * 100
    if len(vals) == 1:
        return f"{m:.1f}"
    return f"{m:.1f} ± {statistics.stdev(vals) * 100:.1f}"


def label(dp: dict[str, Any]) -> tuple[str, ...]:
    if dp["model"] == "diet":
        params = dict(dp.get("params") or {})
        leak = dp["leak"]
        if "leak_init" in params and dp["trainable"] in ("threshold", "none"):
            leak = f"lif, λ {params['leak_init']:g} held"
        elif leak == "lif" and dp["trainable"] in ("leak", "both"):
            leak = "lif, λ learned from 1"
        return ("diet", dp["init"], leak, f"T={dp['timesteps']:02d}", dp["encoding"])
    return (dp["model"], "-", dp["leak"], "250 ms", "poisson rate")


def main(args: list[str]) -> None:
    per: dict[tuple[str, ...], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    ann_by_seed: dict[int, dict[str, float]] = {}
    crossing = []
    for arg in args:
        storage, study = arg.rsplit(":", 1)
        _name, records = load_records(storage, study)
        for r in records:
            dp = r.design_point.to_dict()
            rob = dict(r.outcome.robustness)
            if not rob:
                continue
            seed = int(r.config["run"]["seed"])  # one ANN per seed (every study shares it)
            src = r.config.get("robustness", {}).get("source", {}).get("accuracy", {})
            ann_by_seed.setdefault(seed, dict(src))
            if r.design_point.is_fp32:
                key = label(dp)
                per[key]["accuracy"].append(r.accuracy)
                for k in KEYS:
                    if k in rob:
                        per[key][k].append(rob[k])
            if arg == args[0]:
                crossing.append((r, rob))
    ann: dict[str, list[float]] = defaultdict(list)
    for src in ann_by_seed.values():
        for k, v in src.items():
            ann[k].append(v)
    n = len(ann_by_seed)
    print(f"## FP32 points, {n} seed(s): accuracy on the test set, adversarial accuracy on "
          "the first 1,000 test images, %\n")  # fmt: skip
    head = ["family", "init", "leak", "T", "input", "test acc", *KEYS]
    print("| " + " | ".join(head) + " |")
    print("| " + " | ".join(["---"] * 5 + ["---:"] * (len(head) - 5)) + " |")
    for key in sorted(per):
        row = per[key]
        print("| " + " | ".join([*key, _fmt(row["accuracy"]), *(_fmt(row[k]) for k in KEYS)])
              + " |")  # fmt: skip
    print("| ANN 784-400-10 (source) | - | - | - | direct | | "
          + " | ".join(_fmt(ann.get(k.replace("transfer", "white"), [])) if k != "clean"
                       else _fmt(ann["clean"]) for k in KEYS) + " |")  # fmt: skip
    print(f"\n## Every point of {args[0]} (accuracy, transfer-pgd-0.1, white-pgd-0.1), %\n")
    print("| design point | acc | transfer-pgd-0.1 | white-pgd-0.1 | KiB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r, rob in sorted(crossing, key=lambda x: x[0].key):
        w = rob.get("white-pgd-0.1")
        print(
            f"| {r.key} | {r.accuracy * 100:.2f} | {rob['transfer-pgd-0.1'] * 100:.1f} | "
            f"{'' if w is None else f'{w * 100:.1f}'} | {r.memory.kib:,.1f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
