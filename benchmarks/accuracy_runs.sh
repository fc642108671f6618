#!/usr/bin/env bash
# The accuracy runs recorded in docs/results.md: 400 excitatory neurons, one pass over all
# 60,000 training images, labels assigned on them, tested on all 10,000 test images.
# Usage: benchmarks/accuracy_runs.sh [RUN ...]   (default: all); outputs under runs/results/.
# Each run takes 10-25 minutes on one core of the 2-core reference machine.
set -euo pipefail
cd "$(dirname "$0")/.."
T=.venv/bin/tinysnn
OUT=runs/results
mkdir -p "$OUT"
COMMON=(--neurons 400 --threads 1 --device cpu --json)
run() {  # name, then tinysnn arguments
  local name=$1; shift
  echo "== $name: tinysnn $*" >&2
  "$T" "$@" > "$OUT/$name.json"
}
want() { [ $# -eq 0 ] || [[ " ${SELECTED[*]} " == *" $1 "* ]]; }
SELECTED=("$@")
if want tinysnn-fp32 ${SELECTED[@]+"${SELECTED[@]}"}; then
  run tinysnn-fp32 train --dataset mnist --model tinysnn "${COMMON[@]}" --out "$OUT/tinysnn-fp32"
fi
if want tinysnn-ptq8 ${SELECTED[@]+"${SELECTED[@]}"}; then
  run tinysnn-ptq8 evaluate "$OUT/tinysnn-fp32/model.pt" --scheme ptq --rounding nearest \
    --weight-bits 8 --json
fi
if want tinysnn-itq8 ${SELECTED[@]+"${SELECTED[@]}"}; then
  run tinysnn-itq8 train --dataset mnist --model tinysnn --scheme itq --rounding stochastic \
    --weight-bits 8 "${COMMON[@]}" --out "$OUT/tinysnn-itq8"
fi
if want baseline-fp32 ${SELECTED[@]+"${SELECTED[@]}"}; then
  run baseline-fp32 train --dataset mnist --model baseline "${COMMON[@]}" --out "$OUT/baseline-fp32"
fi
if want fashion-tinysnn-fp32 ${SELECTED[@]+"${SELECTED[@]}"}; then
  run fashion-tinysnn-fp32 train --dataset fashion-mnist --model tinysnn "${COMMON[@]}" \
    --out "$OUT/fashion-tinysnn-fp32"
fi
