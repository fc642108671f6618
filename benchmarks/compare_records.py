"""Compare the records of two studies point by point: which fields differ, and where.

Usage: .venv/bin/python benchmarks/compare_records.py STORAGE_A STORAGE_B

STORAGE: a study database URL (sqlite:///a.db). Every COMPLETE trial's record
(`user_attrs`) is flattened and compared field by field between the trials of the same
design point; the measured fields (times, joules, rates, heartbeats, workers) are left
out, since they differ between any two runs. Prints each differing field with how many
points differ and two of them, then how many accuracies are equal.
"""

import sys

import optuna

MEASURED = ("measured", "seconds", "per_s", "heartbeat", "worker", "wall")


def load(url: str) -> dict[str, dict]:
    out = {}
    for summary in optuna.get_all_study_summaries(url):
        study = optuna.load_study(study_name=summary.study_name, storage=url)
        for t in study.trials:
            key = t.user_attrs.get("design_key")
            if key and t.state.name == "COMPLETE":
                out[key] = t.user_attrs
    return out


def flat(d: object, prefix: str = ""):  # type: ignore[no-untyped-def]
    if isinstance(d, dict):
        for k, v in d.items():
            yield from flat(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix, d


if len(sys.argv) != 3:
    sys.exit(__doc__)
optuna.logging.set_verbosity(optuna.logging.ERROR)
a, b = load(sys.argv[1]), load(sys.argv[2])
keys = sorted(set(a) & set(b))
print(f"{len(a)} and {len(b)} points, {len(keys)} in both")
diff: dict[str, list[str]] = {}
for k in keys:
    fa, fb = dict(flat(a[k])), dict(flat(b[k]))
    for f in sorted(set(fa) | set(fb)):
        if not any(m in f.lower() for m in MEASURED) and fa.get(f) != fb.get(f):
            diff.setdefault(f, []).append(k)
for f, ks in sorted(diff.items()):
    print(f"{f}: {len(ks)} points differ ({', '.join(ks[:2])})")
print(f"accuracy equal at {sum(a[k]['accuracy'] == b[k]['accuracy'] for k in keys)} of {len(keys)}")
