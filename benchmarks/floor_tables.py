"""The membrane floor's tables of docs/results.md (issue 28) from finished studies.

    .venv/bin/python benchmarks/floor_tables.py seeds sqlite:///floor-s0.db:floor-mnist \\
        sqlite:///floor-s1.db:floor-ptq-mnist-s1 sqlite:///floor-s2.db:floor-ptq-mnist-s2
    .venv/bin/python benchmarks/floor_tables.py grid sqlite:///p2k.db:paper-mnist-2k-floor-ptq

``seeds``: every point's test accuracy per seed (without and with the floor), its mean and
spread, and its distance from the FP32 network of the same floor. ``grid``: per scheme,
rounding and weight width, the 8-bit-neuron point against its 16-bit-neuron twin, without
and with the floor, and the median gap.
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict

from tinysnn_dse.explore import load_records


def _records(args: list[str]) -> list[tuple[int, object]]:
    out = []
    for arg in args:
        storage, study = arg.rsplit(":", 1)
        _name, recs = load_records(storage, study)
        out += [(int(r.config["run"]["seed"]), r) for r in recs]
    return out


def seeds(args: list[str]) -> None:
    acc: dict[tuple[str, bool], dict[int, float]] = defaultdict(dict)
    for seed, r in _records(args):
        dp = r.design_point  # type: ignore[attr-defined]
        label = dp.quant_label
        acc[(label, dp.vmem_floor > 0)][seed] = r.accuracy  # type: ignore[attr-defined]
    print("| design | floor | " + " | ".join(f"seed {s}" for s in (0, 1, 2))
          + " | mean | spread (max - min) | - FP32 (same floor), mean |")  # fmt: skip
    print("| --- | --- | " + "---: | " * 6)
    for (label, floor), by_seed in sorted(acc.items()):
        fp = acc.get(("fp32", floor), {})
        vals = [by_seed[s] for s in sorted(by_seed)]
        gaps = [by_seed[s] - fp[s] for s in by_seed if s in fp]
        cells = [f"{by_seed[s] * 100:.2f}" if s in by_seed else "" for s in (0, 1, 2)]
        print(f"| {label} | {'auto' if floor else 'none'} | " + " | ".join(cells)
              + f" | {statistics.mean(vals) * 100:.2f} | {(max(vals) - min(vals)) * 100:.2f} | "
              f"{statistics.mean(gaps) * 100:+.2f} |")  # fmt: skip


def grid(args: list[str]) -> None:
    acc: dict[tuple[str, str, int, int, bool], float] = {}
    floors = set()
    for _seed, r in _records(args):
        dp = r.design_point  # type: ignore[attr-defined]
        if dp.is_fp32 or dp.vmem_bits is None:
            continue
        floors.add(dp.vmem_floor)
        key = (dp.scheme, dp.rounding, dp.weight_bits, dp.vmem_bits, dp.vmem_floor > 0)
        acc[key] = r.accuracy  # type: ignore[attr-defined]
    print("| scheme | rounding | W | 16-bit neurons | 8-bit | gap | with the floor: 16-bit "
          "| 8-bit | gap |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    gaps: dict[bool, list[float]] = defaultdict(list)
    for scheme, rnd, w in sorted({(k[0], k[1], k[2]) for k in acc}):
        cells = []
        for floor in (False, True):
            a16, a8 = acc.get((scheme, rnd, w, 16, floor)), acc.get((scheme, rnd, w, 8, floor))
            if a16 is None or a8 is None:
                cells += ["", "", ""]
                continue
            gaps[floor].append(a8 - a16)
            cells += [f"{a16 * 100:.1f}", f"{a8 * 100:.1f}", f"{(a8 - a16) * 100:+.1f}"]
        print(f"| {scheme} | {rnd} | {w} | " + " | ".join(cells) + " |")
    for floor in (False, True):
        if gaps[floor]:
            g = gaps[floor]
            print(f"\n{'with' if floor else 'without'} the floor: median 8-bit minus 16-bit "
                  f"{statistics.median(g) * 100:+.1f} points, worst {min(g) * 100:+.1f} "
                  f"({len(g)} pairs)")  # fmt: skip
    print(f"floors: {sorted(floors)}")


if __name__ == "__main__":
    {"seeds": seeds, "grid": grid}[sys.argv[1]](sys.argv[2:])
