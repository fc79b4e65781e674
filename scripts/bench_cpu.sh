#!/usr/bin/env bash
# CPU training throughput of normgpt for a few model sizes (byte-level vocabulary).
# Builds Release, makes sure a byte-level dataset exists, trains each size for a few steps under
# /usr/bin/time -v, and prints a table (params, tokens/s, ms/step, peak memory) with the machine
# and the commit; the same table is written as JSON (bench/cpu_<date>.json unless --out is given).
#
# Usage: bash scripts/bench_cpu.sh [--steps N] [--out FILE.json] [--only NAME] [--keep]
#   --steps N   training steps per size (default 12; the first 2 are left out as warm-up)
#   --only NAME run only the sizes whose name contains NAME (e.g. L6)
#   --keep      keep the run directories (printed at the end)
# Threads: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS are passed through as set (reported).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
NORMGPT="$BUILD_DIR/normgpt"
PY=/usr/bin/python3
STEPS=12
OUT=""
ONLY=""
KEEP=0
while (($#)); do
  case "$1" in
    --steps) STEPS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_cpu: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$STEPS" =~ ^[0-9]+$ && "$STEPS" -ge 3 ]] || { echo "bench_cpu: --steps must be an integer >= 3" >&2; exit 2; }
[[ -n "$OUT" ]] || OUT="bench/cpu_$(date +%Y%m%d).json"
[[ -x /usr/bin/time ]] || { echo "bench_cpu: /usr/bin/time not found (apt-get install time)" >&2; exit 2; }

# Sizes: name n_layer d_model n_head seq_len batch_size (vocabulary 257, bytes).
SIZES=(
  "L2-d128-T64-B8 2 128 4 64 8"
  "L4-d256-T128-B8 4 256 4 128 8"
  "L6-d384-T256-B4 6 384 6 256 4"
)

# ---------------------------------------------------------------------------- build (Release)
if [[ -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
else
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
echo "[bench] building $NORMGPT (Release)"
build_log=$(mktemp /tmp/normgpt-bench-build.XXXXXX.log)
if ! cmake --build "$BUILD_DIR" -j"$(nproc)" --target normgpt >"$build_log" 2>&1; then
  tail -30 "$build_log" >&2
  echo "bench_cpu: build failed (log: $build_log)" >&2
  exit 1
fi
rm -f "$build_log"

# ---------------------------------------------------------------------------- data (bytes)
if compgen -G "data/brown_byte/train_*.bin" >/dev/null; then
  DATA=data/brown_byte
elif compgen -G "data/brown/*.txt" >/dev/null; then
  echo "[bench] tokenizing data/brown (bytes) -> data/brown_byte"
  "$NORMGPT" tokenize --input data/brown/*.txt --output-dir data/brown_byte --tokenizer byte \
    --val-fraction 0.05 >/dev/null
  DATA=data/brown_byte
else
  DATA=data/bench_byte
  if ! compgen -G "$DATA/train_*.bin" >/dev/null; then
    echo "[bench] no Brown corpus (run scripts/setup.sh); writing a synthetic text to $DATA"
    mkdir -p "$DATA"
    $PY - "$DATA/synthetic.txt" <<'PYEOF'
import random, sys
rng = random.Random(1337)
words = [''.join(rng.choice('etaoinshrdlucmfwypvbgkjqxz') for _ in range(rng.randint(1, 9)))
         for _ in range(3000)]
with open(sys.argv[1], 'w') as f:
    for _ in range(20000):
        f.write(' '.join(rng.choice(words) for _ in range(rng.randint(5, 25))).capitalize() + '.\n')
PYEOF
    "$NORMGPT" tokenize --input "$DATA/synthetic.txt" --output-dir "$DATA" --tokenizer byte \
      --val-fraction 0.05 >/dev/null
  fi
fi
echo "[bench] data: $DATA"

# ---------------------------------------------------------------------------- runs
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
echo "[bench] load average: $LOADAVG (other processes on these cores skew the numbers)"
RUNS=$(mktemp -d /tmp/normgpt-bench.XXXXXX)
cleanup() { if [[ $KEEP == 0 ]]; then rm -rf "$RUNS"; else echo "[bench] runs kept in $RUNS"; fi; }
trap cleanup EXIT
order=0
for size in "${SIZES[@]}"; do
  read -r name L D H T B <<<"$size"
  [[ -z "$ONLY" || "$name" == *"$ONLY"* ]] || continue
  order=$((order + 1))
  dir="$RUNS/$(printf '%02d' $order)-$name"
  mkdir -p "$dir"
  printf '{"order": %d, "config": "%s", "n_layer": %d, "d_model": %d, "n_head": %d, "seq_len": %d, "batch_size": %d, "vocab_size": 257, "steps": %d}\n' \
    "$order" "$name" "$L" "$D" "$H" "$T" "$B" "$STEPS" >"$dir/spec.json"
  echo "[bench] $name: $STEPS steps"
  set +e
  /usr/bin/time -v -o "$dir/time.txt" "$NORMGPT" train -c configs/tiny.json -o "$dir/run" \
    --set model.n_layer="$L" --set model.d_model="$D" --set model.n_head="$H" \
    --set model.seq_len="$T" --set model.vocab_size=257 --set train.batch_size="$B" \
    --set train.grad_accum=1 --set train.steps="$STEPS" --set eval.every=0 \
    --set checkpoint.every=0 --set "data.train=$DATA/train_*.bin" \
    --set "data.val=$DATA/val_*.bin" >"$dir/stdout.log" 2>&1
  rc=$?
  set -e
  echo "$rc" >"$dir/rc"
  if [[ $rc != 0 ]]; then
    echo "[bench] $name failed (exit $rc); last lines:" >&2
    tail -5 "$dir/stdout.log" >&2
    continue
  fi
  if [[ -f "$dir/run/config.json" ]]; then
    "$NORMGPT" info -c "$dir/run/config.json" >"$dir/info.txt" 2>&1 || true
  fi
done

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=()
[[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] && DIRTY=(--dirty)
echo
$PY scripts/bench_table.py --runs-dir "$RUNS" --out "$OUT" --skip 2 --commit "$COMMIT" \
  --loadavg-start "$LOADAVG" "${DIRTY[@]}"
