"""Replay a finished paper-mnist study's trial times through two workers, in the space's
order and in SearchSpace.queue_order (a projection, docs/results.md).

Usage: .venv/bin/python benchmarks/grid_schedule.py runs/paper/paper.db
"""

import sqlite3
import statistics
import sys
from datetime import datetime

import yaml

from tinysnn_dse.explore.space import parse_space

db = sqlite3.connect(sys.argv[1])
rows = db.execute("""select t.number, a.value_json, t.datetime_start, t.datetime_complete from trials t
 join trial_user_attributes a on a.trial_id=t.trial_id and a.key='design_key' where t.state='COMPLETE'""").fetchall()
f = lambda s: datetime.fromisoformat(s).timestamp()
dur = {k.strip('"'): f(c) - f(s) for _n, k, s, c in rows}
start = {k.strip('"'): f(s) for _n, k, s, c in rows}
sp = parse_space(
    yaml.safe_load(
        open(
            __import__("pathlib").Path(__file__).resolve().parents[1]
            / "search_spaces/paper-mnist.yaml"
        )
    ),
    "x",
)


def starter_of(p):
    g = sp.itq_group(p)
    return g if len(g) > 1 else None


# the trial that trained each group: the earliest-started member
trainer = {}
for p in sp.points:
    g = starter_of(p)
    if g:
        first = min(g, key=lambda q: start.get(q.key, 1e18))
        trainer[p.key] = first.key


# members that waited on a lock: their time overlaps the training; take the median of the rest
def ev(p):
    t, s = trainer[p.key], start[p.key]
    train_end = start[t] + dur[t]
    return dur[p.key] if s >= train_end - 1 else None


plain = [
    ev(p)
    for p in sp.points
    if p.key in trainer and trainer[p.key] != p.key and p.key in dur and ev(p) is not None
]
med = statistics.median(plain)
by_class = {}
for p in sp.points:
    if (
        p.key in dur
        and not (p.key in trainer and trainer[p.key] == p.key)
        and p.key not in ("baseline-n400-fp32", "sl-stdp-n400-fp32", "tinysnn-n400-fp32")
    ):
        e = ev(p) if p.key in trainer else dur[p.key]
        if e is not None:
            by_class.setdefault(p.rounding, []).append(e)


def cost(p):
    if p.key not in dur:
        return statistics.median(by_class.get(p.rounding) or [med])
    if p.key in trainer and trainer[p.key] != p.key:
        e = ev(p)
        return e if e is not None else med
    return dur[p.key]


def simulate(order, workers=2):
    free = [0.0] * workers
    done_train = {}  # group trainer key -> time its training ends (trainer trial end minus its eval ~ med)
    end = 0.0
    for p in order:
        w = min(range(workers), key=lambda i: free[i])
        t0 = free[w]
        if (
            p.model == "tinysnn" and not p.is_fp32
        ):  # PTQ points and ITQ ranges need the FP32 network
            t0 = max(t0, done_train.get("fp32", float("inf")))
        if p.key in trainer and trainer[p.key] != p.key:
            t0 = max(t0, done_train.get(trainer[p.key], float("inf")))
        elif p.key in trainer:
            done_train[p.key] = t0 + dur[p.key] - med
        if p.key == "tinysnn-n400-fp32":
            done_train["fp32"] = t0 + dur[p.key] - 20
        free[w] = t0 + cost(p)
        end = max(end, free[w])
    return end


for name, order in [("space order", sp.points), ("queue_order", sp.queue_order())]:
    try:
        print(f"{name}: {simulate(order) / 60:.1f} min")
    except Exception as e:
        print(name, e)
print(
    "evaluation medians",
    {k: round(statistics.median(v), 1) for k, v in by_class.items()},
    {k: len(v) for k, v in by_class.items()},
)
print(
    "median member evaluation",
    round(med, 1),
    "s;",
    "sum of trial CPU",
    round(sum(cost(p) for p in sp.points) / 60, 1),
    "eval-only CPU",
    round(
        sum(
            cost(p)
            for p in sp.points
            if not (p.key in trainer and trainer[p.key] == p.key)
            and p.key not in ("baseline-n400-fp32", "sl-stdp-n400-fp32", "tinysnn-n400-fp32")
        )
        / 60,
        1,
    ),
    "min",
)
