"""Replay a finished paper-mnist study's trial times through two workers, in the space's
order and in SearchSpace.queue_order: a projection, quoted in docs/results.md.

Usage: .venv/bin/python benchmarks/grid_schedule.py runs/paper/paper.db

A trial that trains also evaluates; an evaluation that waited on its group's lock is
costed at the median of the evaluations that did not wait.
"""

import sqlite3
import statistics
import sys
from datetime import datetime
from pathlib import Path

import yaml

from tinysnn_dse.explore.space import DesignPoint, parse_space

if len(sys.argv) != 2 or not Path(sys.argv[1]).is_file():
    sys.exit("usage: grid_schedule.py STUDY.db (a finished paper-mnist SQLite study)")
SPACE = Path(__file__).resolve().parents[1] / "search_spaces/paper-mnist.yaml"
sp = parse_space(yaml.safe_load(SPACE.read_text()), str(SPACE))
FP32_KEY = "tinysnn-n400-fp32"
FP32_EVAL_S = 20.0  # the FP32 network's own evaluation, before PTQ points may start

db = sqlite3.connect(sys.argv[1])
rows = db.execute(
    "select a.value_json, t.datetime_start, t.datetime_complete from trials t"
    " join trial_user_attributes a on a.trial_id = t.trial_id and a.key = 'design_key'"
    " where t.state = 'COMPLETE'"
).fetchall()


def ts(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


start = {k.strip('"'): ts(s) for k, s, _c in rows}
dur = {k.strip('"'): ts(c) - ts(s) for k, s, c in rows}

# each grouped point -> the member whose trial trained the group (the first to start)
trainer = {
    p.key: min(sp.itq_group(p), key=lambda q: start[q.key]).key
    for p in sp.points
    if len(sp.itq_group(p)) > 1
}


def trains(p: DesignPoint) -> bool:
    return p.is_fp32 or trainer.get(p.key) == p.key


def waited(p: DesignPoint) -> bool:
    t = trainer.get(p.key)
    return t is not None and t != p.key and start[p.key] < start[t] + dur[t] - 1


by_rounding: dict[str, list[float]] = {}
for p in sp.points:
    if not trains(p) and not waited(p):
        by_rounding.setdefault(p.rounding, []).append(dur[p.key])
median = {r: statistics.median(v) for r, v in by_rounding.items()}


def cost(p: DesignPoint) -> float:
    return median[p.rounding] if waited(p) else dur[p.key]


def simulate(order: tuple[DesignPoint, ...], workers: int = 2) -> float:
    """List scheduling: each point goes to the first free worker, which waits for the
    training the point needs (the FP32 network, or its ITQ group's)."""
    free = [0.0] * workers
    ready: dict[str, float] = {}
    for p in order:
        w = min(range(workers), key=free.__getitem__)
        t0 = free[w]
        if p.model == "tinysnn" and not p.is_fp32:
            t0 = max(t0, ready[FP32_KEY])
        t = trainer.get(p.key)
        if t is not None and t != p.key:
            t0 = max(t0, ready[t])
        free[w] = t0 + cost(p)
        if p.key == FP32_KEY:
            ready[p.key] = free[w] - FP32_EVAL_S
        elif t == p.key:
            ready[p.key] = free[w] - median[p.rounding]
    return max(free)


for name, order in [("space order", sp.points), ("queue_order", sp.queue_order())]:
    print(f"{name}: {simulate(order) / 60:.1f} min")
print("evaluation medians (s):", {r: round(m, 1) for r, m in median.items()})
tot = sum(cost(p) for p in sp.points) / 60
print(
    f"trial CPU: {tot:.1f} min in all,",
    f"{sum(cost(p) for p in sp.points if not trains(p)) / 60:.1f} min evaluation-only",
)
