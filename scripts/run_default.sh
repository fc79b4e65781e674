#!/usr/bin/env bash
# Set up this machine (scripts/setup.sh), train the default model (configs/default.json: GPT-2 BPE
# on the Brown corpus) into a new run directory under runs/, then print a short sample from it.
#
# Usage: bash scripts/run_default.sh [extra train args, e.g. --set train.steps=100]
# Environment: CONFIG (default configs/default.json), RUN_DIR (default runs/default, or
# runs/default-<timestamp> when that exists), BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
CONFIG=${CONFIG:-configs/default.json}
NORMGPT="$BUILD_DIR/normgpt"

bash scripts/setup.sh

if [[ -n "${RUN_DIR:-}" ]]; then
  RUN=$RUN_DIR
else
  RUN=runs/default
  [[ -e "$RUN" ]] && RUN="runs/default-$(date +%Y%m%d-%H%M%S)"
fi
[[ -e "$RUN" ]] && { echo "[run_default] error: $RUN already exists" >&2; exit 2; }
mkdir -p "$(dirname "$RUN")"

echo "[run_default] training $CONFIG -> $RUN"
"$NORMGPT" train -c "$CONFIG" -o "$RUN" "$@"

echo "[run_default] run directory: $RUN"
[[ -f "$RUN/summary.json" ]] && echo "[run_default] summary: $(cat "$RUN/summary.json")"

LATEST_FILE="$RUN/checkpoints/latest"
if [[ ! -f "$LATEST_FILE" ]]; then
  echo "[run_default] no checkpoint written (checkpoint.every = 0?); skipping the sample"
  exit 0
fi
CKPT="$RUN/checkpoints/$(tr -d '[:space:]' <"$LATEST_FILE")/model.bin"
echo "[run_default] sample from $CKPT (prompt \"The\", 64 tokens):"
"$NORMGPT" sample --checkpoint "$CKPT" --prompt "The" -n 64
echo
