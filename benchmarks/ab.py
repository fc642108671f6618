"""The `make bench` rows for two commits, back to back, on one machine: the ratio table.

    TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/ab.py BASE [HEAD] \
        [--rounds 2] [--checkpoint model.pt] [--baseline-checkpoint model.pt] [--rows 0,1,2]

BASE (and HEAD, default: the working tree) are checked out with ``git worktree`` under
``/tmp/tinysnn-ab/`` and run from this environment with ``PYTHONPATH`` pointing at each
``src/`` (so both use the same torch and numba); each row alternates BASE, HEAD for
``--rounds`` rounds and reports the best rate of each, as machines drift 10-20 % within an
hour. ``--checkpoint`` times the tinySNN rows from a trained network (late in a pass)
instead of a fresh one, ``--baseline-checkpoint`` the baseline row (either given: only the
rows with a checkpoint run). Prints a markdown table: train and inference images/s and HEAD / BASE.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: the rows of `make bench` (Makefile), in order; its late rows are rows 1, 4 and 6 with
#: ``--checkpoint`` and ``--baseline-checkpoint`` (runs/bench-late/{tinysnn,baseline}/)
ROWS: list[list[str]] = [
    ["--threads", "2", "--train-images", "300", "--infer-images", "10000"],
    ["--threads", "1", "--train-images", "300", "--infer-images", "10000"],
    ["--threads", "1", "--train-images", "300", "--infer-images", "10000", "--scheme", "itq",
     "--rounding", "nearest", "--weight-bits", "8"],
    ["--threads", "1", "--train-images", "200", "--infer-images", "5000", "--scheme", "itq",
     "--rounding", "stochastic", "--weight-bits", "8", "--vmem-bits", "16", "--vth-bits", "16"],
    ["--threads", "1", "--train-images", "100", "--infer-images", "1000", "--model", "baseline"],
    ["--threads", "2", "--train-images", "100", "--infer-images", "10000", "--scheme", "itq",
     "--rounding", "nearest", "--weight-bits", "8", "--design-points", "8"],
    ["--threads", "1", "--train-images", "60", "--infer-images", "1000", "--scheme", "itq",
     "--rounding", "nearest", "--weight-bits", "8", "--design-points", "9"],
]  # fmt: skip


def checkout(rev: str) -> Path:
    """A worktree of ``rev`` (a commit) under /tmp/tinysnn-ab/; the repo itself for HEAD."""
    if rev == "WORKTREE":
        return REPO
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    path = Path("/tmp/tinysnn-ab") / sha[:12]
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), sha],
            check=True, capture_output=True,
        )  # fmt: skip
    return path


def bench(tree: Path, args: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    cmd = [sys.executable, "-m", "tinysnn_dse.cli", "bench", "--json", *args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tree)
    if out.returncode != 0:
        raise SystemExit(f"{tree}: bench {' '.join(args)} failed: {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout)


def rates(rec: dict) -> tuple[float, float, float]:
    """(train images/s, or the design batch's aggregate; inference images/s; training
    presentations per image, which differ where the two commits learn differently)."""
    train = (rec.get("design_batch") or rec)["train_images_per_s"]
    return train, rec["infer_images_per_s"], rec["presentations_per_train_image"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("head", nargs="?", default="WORKTREE")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--checkpoint")
    ap.add_argument("--baseline-checkpoint",
                    help="a baseline model.pt for the --model baseline row (late in a pass)")
    ap.add_argument("--rows", help="comma-separated row numbers (default: all)")
    a = ap.parse_args()
    trees = {"base": checkout(a.base), "head": checkout(a.head)}
    rows = [int(r) for r in a.rows.split(",")] if a.rows else range(len(ROWS))
    print(
        f"| row | {a.base} train | head train | ratio | {a.base} infer | head infer | ratio "
        "| presentations / train image (base, head) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        ckpt = a.baseline_checkpoint if "--model" in ROWS[r] else a.checkpoint
        if (a.checkpoint or a.baseline_checkpoint) and not ckpt:
            continue  # late rows only: a checkpoint fixes the model
        args = [*ROWS[r], "--checkpoint", ckpt] if ckpt else ROWS[r]
        if ckpt and "--model" in args:  # the checkpoint fixes the model
            i = args.index("--model")
            args = args[:i] + args[i + 2 :]
        best = {"base": (0.0, 0.0, 0.0), "head": (0.0, 0.0, 0.0)}
        for _ in range(a.rounds):
            for name in ("base", "head"):
                tr, inf, pres = rates(bench(trees[name], args))
                best[name] = (max(best[name][0], tr), max(best[name][1], inf), pres)
        (bt, bi, bp), (ht, hi, hp) = best["base"], best["head"]
        print(
            f"| {' '.join(ROWS[r])} | {bt:,.1f} | {ht:,.1f} | {ht / bt:.3f} | {bi:,.0f} | "
            f"{hi:,.0f} | {hi / bi:.3f} | {bp:.2f}, {hp:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
