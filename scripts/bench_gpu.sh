#!/usr/bin/env bash
# GPU training throughput of normgpt per normalization strategy, beside PyTorch on the same GPU.
# GPT-2 124M (configs/gpt2_124m/<strategy>.json: 12 layers, d 768, 12 heads, T 1024), micro-batch
# B with gradient accumulation to ~524,288 tokens per step, random tokens (no network needed).
# Per strategy: `normgpt train` (peak memory by polling nvidia-smi), then
# scripts/bench_gpu_torch.py (bf16 autocast, torch.compile, flash attention, fused AdamW), then
# scripts/bench_gpu_report.py prints tokens/s, MFU, step ms (and vs pre), peak memory and the
# ratio to PyTorch, and records the run in --out (<date>-<device>-<commit>.json and .md).
#
# Usage: bash scripts/bench_gpu.sh [options]
#   --strategies LIST  strategies to run, comma- or space-separated (default: pre post peri
#                      reordered mixln lns deepnorm b2t geonorm dyt)
#   --add LIST         strategies run after those (e.g. --add residual,ngpt)
#   --steps N          optimizer steps per run (default 30; smoke 6)
#   --warmup K         first steps left out of the timing (default 5; smoke 2)
#   --batch-size B     micro-batch (default 16; smoke 4); halved on out-of-memory (B x accum kept)
#   --accum A          micro-batches per step (default: ceil(524288 / (B x T)); smoke 1)
#   --function F       norm.function: layernorm (default) or rmsnorm
#   --no-torch         skip the PyTorch runs (pytorch_tokens_per_s is then null)
#   --out DIR          where the record goes (default docs/benchmarks; smoke /tmp/normgpt-bench-smoke)
#   --gpu I            GPU index (sets CUDA_VISIBLE_DEVICES; default: the first GPU)
#   --peak-tflops X    dense bf16 peak for MFU when the GPU is not in bench_gpu_report.py's table
#   --build-dir DIR    where normgpt is (default build, or $BUILD_DIR); it is not rebuilt here
#   --config-dir DIR   the GPT-2 124M configs (default configs/gpt2_124m; gpu_check.sh passes the
#                      bundle's copy, the binary's own version)
#   --commit C         the commit the record names (default: asked from git, "unknown" without it)
#   --keep             keep the run directories (printed at the end)
#   --smoke            a tiny CPU run of the whole pipeline (L2 d64 T64, byte vocabulary, device
#                      cpu; PyTorch in eager fp32 on the CPU when torch imports): a test, not a benchmark
# Environment: TORCH_PYTHON = the Python with CUDA PyTorch (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's interpreter here; a machine without one (the lent GPU machine) has a plain python3.
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)
TORCH_PY=${TORCH_PYTHON:-/usr/bin/python3}
BUILD_DIR=${BUILD_DIR:-build}
DEFAULT_STRATEGIES="pre post peri reordered mixln lns deepnorm b2t geonorm dyt"
TOKENS_TARGET=524288
STRATEGIES="" ADD="" STEPS="" WARMUP="" B="" ACCUM="" FUNCTION=layernorm NO_TORCH=0 OUT=""
GPU="" PEAK="" KEEP=0 SMOKE=0 GPU_INFO="" CONFIG_DIR=configs/gpt2_124m COMMIT=""

die() { echo "bench_gpu: $*" >&2; exit 2; }
need_arg() { [[ $# -ge 2 ]] || die "$1 needs a value (see --help)"; }
while (($#)); do
  case "$1" in
    --strategies) need_arg "$@"; STRATEGIES=$2; shift 2 ;;
    --add) need_arg "$@"; ADD=$2; shift 2 ;;
    --steps) need_arg "$@"; STEPS=$2; shift 2 ;;
    --warmup) need_arg "$@"; WARMUP=$2; shift 2 ;;
    --batch-size) need_arg "$@"; B=$2; shift 2 ;;
    --accum) need_arg "$@"; ACCUM=$2; shift 2 ;;
    --function) need_arg "$@"; FUNCTION=$2; shift 2 ;;
    --no-torch) NO_TORCH=1; shift ;;
    --out) need_arg "$@"; OUT=$2; shift 2 ;;
    --gpu) need_arg "$@"; GPU=$2; shift 2 ;;
    --peak-tflops) need_arg "$@"; PEAK=$2; shift 2 ;;
    --build-dir) need_arg "$@"; BUILD_DIR=$2; shift 2 ;;
    --config-dir) need_arg "$@"; CONFIG_DIR=$2; shift 2 ;;
    --commit) need_arg "$@"; COMMIT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --smoke) SMOKE=1; shift ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

# ---------------------------------------------------------------------------- settings
if [[ $SMOKE == 1 ]]; then
  : "${STEPS:=6}" "${WARMUP:=2}" "${B:=4}" "${ACCUM:=1}" "${OUT:=/tmp/normgpt-bench-smoke}"
  L=2 D=64 H=2 T=64 V=257 VP=320 DEVICE=cpu MODE=smoke
  # one thread unless told otherwise: tiny models gain nothing from more, and a busy machine's
  # OpenMP spin-waiting can make them 50x slower
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
else
  : "${STEPS:=30}" "${WARMUP:=5}" "${B:=16}" "${OUT:=docs/benchmarks}"
  L=12 D=768 H=12 T=1024 V=50257 VP=50304 DEVICE=cuda MODE=gpu
fi
is_int() { [[ $1 =~ ^[0-9]+$ ]]; }
is_int "$STEPS" && is_int "$WARMUP" && [[ $STEPS -ge 2 && $WARMUP -lt $STEPS ]] ||
  die "--steps must be an integer >= 2 and --warmup an integer below it"
is_int "$B" && [[ $B -ge 1 ]] || die "--batch-size must be an integer >= 1"
if [[ -z "$ACCUM" ]]; then ACCUM=$(((TOKENS_TARGET + B * T - 1) / (B * T))); fi
is_int "$ACCUM" && [[ $ACCUM -ge 1 ]] || die "--accum must be an integer >= 1"
[[ $FUNCTION == layernorm || $FUNCTION == rmsnorm ]] || die "--function must be layernorm or rmsnorm"
[[ -z "$GPU" ]] || is_int "$GPU" || die "--gpu must be a GPU index"
[[ -z "$PEAK" || $PEAK =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--peak-tflops must be a number"
LIST=()
for s in ${STRATEGIES:-$DEFAULT_STRATEGIES} ${ADD}; do
  s=${s//,/ }
  for t in $s; do LIST+=("$t"); done
done
for s in "${LIST[@]}"; do [[ $s =~ ^[a-z0-9_]+$ ]] || die "bad strategy name: '$s'"; done
NORMGPT="$BUILD_DIR/normgpt"
[[ -x "$NORMGPT" ]] || die "$NORMGPT not found; build it first (GPU: cmake -S . -B $BUILD_DIR -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build $BUILD_DIR -j), or pass --build-dir"
[[ -n "$GPU" ]] && export CUDA_VISIBLE_DEVICES=$GPU
SMI_ARGS=(--format=csv,noheader,nounits -i "${GPU:-0}")
HAVE_SMI=0
if [[ $SMOKE == 0 ]]; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    HAVE_SMI=1
    GPU_INFO=$(nvidia-smi --query-gpu=name,driver_version "${SMI_ARGS[@]}" | head -1)
    echo "[bench_gpu] GPU: $GPU_INFO"
  elif [[ ${NORMGPT_BENCH_NO_GPU_OK:-0} == 1 ]]; then  # (tests: the failure path without a GPU)
    echo "[bench_gpu] warning: nvidia-smi finds no GPU; normgpt's peak memory will be null" >&2
  else
    die "nvidia-smi finds no GPU (a CPU-only machine? --smoke runs the pipeline on the CPU)"
  fi
fi

WORK=$(mktemp -d /tmp/normgpt-bench-gpu.XXXXXX)
MEMPID=""
cleanup() {
  if [[ -n "$MEMPID" ]]; then kill "$MEMPID" 2>/dev/null || true; fi
  if [[ $KEEP == 0 ]]; then rm -rf "$WORK"; else echo "[bench_gpu] runs kept in $WORK"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------------------- data
# llm.c's shard format (data/README.md): 256 int32 header (magic 20240520, version 1, count), then
# uint16 tokens. Two steps' worth of uniform random ids below V; the loader wraps around.
DATA="$WORK/data/train_000000.bin"
mkdir -p "$WORK/data"
$PY - "$DATA" "$V" $((B * T * ACCUM * 2 + 1)) <<'PYEOF'
import array, random, struct, sys
path, vocab, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    import numpy as np
    toks = np.random.default_rng(1337).integers(0, vocab, n, dtype=np.uint16).tobytes()
except ImportError:
    rng = random.Random(1337)
    toks = array.array("H", (rng.randrange(vocab) for _ in range(n))).tobytes()
header = [0] * 256
header[0], header[1], header[2] = 20240520, 1, n
with open(path, "wb") as f:
    f.write(struct.pack("<256i", *header))
    f.write(toks)
PYEOF

COMMON=(--set "device=$DEVICE" --set "train.steps=$STEPS" --set "data.train=$DATA"
        --set "data.val=[]" --set eval.every=0 --set eval.batches=0 --set log.every=1
        --set log.layer_stats_every=0 --set checkpoint.every=0 --set checkpoint.keep=1
        --set "norm.function=$FUNCTION")
if [[ $SMOKE == 1 ]]; then
  COMMON+=(--set model.n_layer=$L --set model.d_model=$D --set model.n_head=$H
           --set model.seq_len=$T --set model.vocab_size=$V --set model.padded_vocab=$VP)
  TORCH_EXTRA=(--device cpu --no-compile --dtype fp32)
else
  TORCH_EXTRA=()
fi
printf '{"mode": "%s", "config_dir": "%s", "n_layer": %d, "d_model": %d, "n_head": %d, "seq_len": %d, "vocab_size": %d, "padded_vocab": %d, "norm_function": "%s", "batch_size": %d, "grad_accum": %d, "tokens_per_step": %d, "steps": %d, "warmup_steps": %d, "device_setting": "%s", "data": "uniform random token ids (llm.c shard)", "no_torch": %s}\n' \
  "$MODE" "$CONFIG_DIR" $L $D $H $T $V $VP "$FUNCTION" "$B" "$ACCUM" $((B * T * ACCUM)) "$STEPS" "$WARMUP" \
  "$DEVICE" "$([[ $NO_TORCH == 1 ]] && echo true || echo false)" >"$WORK/bench.json"
echo "[bench_gpu] $MODE: ${LIST[*]}; B $B x T $T x accum $ACCUM = $((B * T * ACCUM)) tokens/step," \
  "$STEPS steps (first $WARMUP left out)"

# ---------------------------------------------------------------------------- runs
order=0
for s in "${LIST[@]}"; do
  order=$((order + 1))
  d="$WORK/$(printf '%02d' $order)-$s"
  mkdir -p "$d"
  cfg="$CONFIG_DIR/$s.json"
  sets=()
  if [[ ! -f "$cfg" ]]; then cfg=$CONFIG_DIR/base.json; sets=(--set "norm.strategy=$s"); fi
  b=$B a=$ACCUM
  while :; do
    rm -rf "$d/normgpt"
    if [[ $HAVE_SMI == 1 ]]; then
      nvidia-smi --query-gpu=memory.used "${SMI_ARGS[@]}" >"$d/mem_baseline.txt" 2>/dev/null || true
      nvidia-smi --query-gpu=memory.used "${SMI_ARGS[@]}" -lms 200 >"$d/mem.csv" 2>/dev/null &
      MEMPID=$!
    fi
    set +e
    "$NORMGPT" train -c "$cfg" -o "$d/normgpt" "${COMMON[@]}" "${sets[@]}" \
      --set "train.batch_size=$b" --set "train.grad_accum=$a" >"$d/normgpt.log" 2>&1
    rc=$?
    set -e
    if [[ -n "$MEMPID" ]]; then kill "$MEMPID" 2>/dev/null || true; wait "$MEMPID" 2>/dev/null || true; MEMPID=""; fi
    if [[ $rc != 0 && $b -gt 1 ]] && grep -qi "out of memory" "$d/normgpt.log"; then
      echo "[bench_gpu] $s: normgpt out of memory at B $b; trying B $((b / 2)) x accum $((a * 2))"
      b=$((b / 2)) a=$((a * 2))
      continue
    fi
    break
  done
  echo "$rc" >"$d/normgpt.rc"
  "$NORMGPT" info -c "$cfg" "${COMMON[@]}" "${sets[@]}" >"$d/info.txt" 2>&1 || true
  rm -rf "$d/normgpt/checkpoints"  # hundreds of MB at 124M; the report needs the metrics only
  printf '{"order": %d, "strategy": "%s", "config": "%s", "batch_size": %d, "grad_accum": %d}\n' \
    "$order" "$s" "$cfg" "$b" "$a" >"$d/spec.json"
  if [[ $rc == 0 ]]; then
    echo "[bench_gpu] $s: normgpt done (B $b x accum $a); $(grep -o '[0-9.]* ms | [0-9]* tok/s' "$d/normgpt.log" | tail -1)"
  else
    echo "[bench_gpu] $s: normgpt failed (exit $rc): $(tail -1 "$d/normgpt.log")" >&2
  fi
  if [[ $NO_TORCH == 0 ]]; then
    set +e
    "$TORCH_PY" scripts/bench_gpu_torch.py --strategy "$s" --function "$FUNCTION" --n-layer $L \
      --n-head $H --d-model $D --seq-len $T --vocab-size $V --padded-vocab $VP --batch-size "$B" \
      --accum "$ACCUM" --steps "$STEPS" --warmup "$WARMUP" --out "$d/torch.json" \
      "${TORCH_EXTRA[@]}" >"$d/torch.log" 2>&1
    trc=$?
    set -e
    if [[ $trc == 0 ]]; then
      echo "[bench_gpu] $s: PyTorch done"
    else
      echo "[bench_gpu] $s: PyTorch gave no measurement (exit $trc): $(tail -1 "$d/torch.log" | cut -c1-300)" >&2
    fi
  fi
done

# ---------------------------------------------------------------------------- report
REPORT=(--runs-dir "$WORK" --out "$OUT")
if [[ $HAVE_SMI == 1 ]]; then  # the GPU that ran (--gpu), not necessarily nvidia-smi's first
  REPORT+=(--device "$(sed 's/, *[^,]*$//' <<<"$GPU_INFO")" --driver "$(sed 's/.*, *//' <<<"$GPU_INFO")")
fi
[[ -n "$PEAK" ]] && REPORT+=(--peak-tflops "$PEAK")
[[ -n "$COMMIT" ]] && REPORT+=(--commit "$COMMIT")
echo
set +e
$PY scripts/bench_gpu_report.py "${REPORT[@]}"
rc=$?
set -e
exit $rc
