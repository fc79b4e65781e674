#!/usr/bin/env bash
# The GPU check kit: the one command to run first on a lent GPU machine (docs/cuda.md, "GPU check
# kit"), over the bundle that scripts/gpu_bundle.sh built elsewhere and the call carried:
#
#   bash scripts/gpu_check.sh --bundle .carry/gpu
#
# It builds nothing and reads nothing from data/. Each step runs as its own process under its own
# timeout, so a hang or crash in one still leaves the others' results; the most telling checks
# come first:
#   env        the GPU, the bundle, the libraries (NCCL and cuBLAS from PyTorch's packages), tools
#   parity     whole training steps against the CPU (test_cuda *CudaTraining*, *Nccl*)
#   ops        every op against its CPU twin (the rest of test_cuda)
#   memcheck   compute-sanitizer memcheck over a short list of op tests
#   racecheck  compute-sanitizer racecheck over the shared-memory kernels' tests
#   train      normgpt train, GPT-2 124M shape, bf16, per-op timing on, over a byte shard made here
#              (normgpt tokenize) from the repository's own text
#   bench      scripts/bench_gpu.sh: `pre` beside PyTorch, short
# In all at most 540 s (9 minutes: a rerun still fits a 15-minute lease); each step's timeout is
# cut to what is left of that. docs/cuda.md gives the budget step by step.
#
# Output, in $OUT (the device tool's folder) or --out: gpu_check_summary.json (every step's
# status, time and headline, the GPU, the libraries, the op timing table and the benchmark
# record) and gpu_check_logs.tar.gz (every log), both rewritten after every step so that a call
# cut short still returns what ran. Nothing else, and no folders: the tool returns at most 8 files.
# Exit code 0 when every step passed, 1 when one did not, 2 for bad arguments.
#
# Usage: bash scripts/gpu_check.sh [--bundle DIR] [--out DIR] [--only LIST] [--skip LIST]
#                                  [--dry-run] [--timeout-scale F]
#   --bundle DIR        the bundle (default .carry/gpu)
#   --only/--skip LIST  steps to run or leave out, comma-separated (env always runs)
#   --dry-run           record the plan (steps, timeouts, commands) and run nothing
#   --timeout-scale F   multiply every timeout by F (for the tests of this script)
# Environment: TORCH_PYTHON, COMPUTE_SANITIZER: the Python with PyTorch and the sanitizer, when
# the probe should not look for them.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SELF=$ROOT/scripts/gpu_check.sh

STEPS=(env parity ops memcheck racecheck train bench)
# Seconds per step: what each may take at most (expected times are in docs/cuda.md).
declare -A BUDGET=([env]=30 [parity]=90 [ops]=60 [memcheck]=70 [racecheck]=70 [train]=60 [bench]=150)
TOTAL_S=540    # the whole run
RESERVE_S=10   # kept for writing the summary and the tarball at the end
GRACE_S=5      # a step that ignores SIGTERM is killed this long after its timeout
PARITY_FILTER='*CudaTraining*:*Nccl*'
MEMCHECK_FILTER='*CudaFlashAttention.*:*CudaAttention.*:*CudaNorm.*:*CudaLinear.*:*CudaEncoder.*:*CudaCrossEntropy.*:*CudaGeodesic.*:*CudaOptim.*'
RACECHECK_FILTER='*CudaFlashAttention.*:*CudaNorm.*:*CudaCrossEntropy.*:*CudaGeodesic.*:*CudaOptim.SumSquares*:*CudaScaleColumns.*'
TRAIN_STEPS=12

die() { echo "gpu_check: $*" >&2; exit 2; }
in_list() { [[ ",$2," == *",$1,"* ]]; }

# ------------------------------------------------------------------------------------------------
# One step, run as `gpu_check.sh --run-step NAME` under `timeout` by the main part below. The
# probe's findings (env.vars, written by the env step) reach the later steps through the file.
run_step() {
  local name=$1
  # shellcheck disable=SC1091
  [[ -f "$WORK/env.vars" ]] && source "$WORK/env.vars"
  local bin=$BUNDLE/bin
  case $name in
    env) step_env ;;
    parity)
      # NCCL's one-process tests bind to the loopback interface: the machine has no other to agree on.
      NCCL_SOCKET_IFNAME=lo LD_LIBRARY_PATH=$LIBPATH "$bin/test_cuda" --gtest_filter="$PARITY_FILTER" \
        --gtest_output="json:$LOGS/parity.json" ;;
    ops)
      LD_LIBRARY_PATH=$LIBPATH "$bin/test_cuda" --gtest_filter="-$PARITY_FILTER" --gtest_output="json:$LOGS/ops.json" ;;
    memcheck | racecheck)
      local filter=$MEMCHECK_FILTER
      [[ $name == racecheck ]] && filter=$RACECHECK_FILTER
      LD_LIBRARY_PATH=$LIBPATH "$SANITIZER" --tool "$name" --error-exitcode 9 --print-limit 50 \
        "$bin/test_cuda" --gtest_filter="$filter" ;;
    train) step_train ;;
    bench)
      # normgpt through its wrapper (the library path set for it alone); PyTorch in the plain
      # environment, with its own CUDA libraries.
      TORCH_PYTHON=$TORCH_PY bash "$ROOT/scripts/bench_gpu.sh" --build-dir "$WORK/bin" \
        --config-dir "$BUNDLE/configs/gpt2_124m" --strategies pre --steps 8 --warmup 3 --accum 1 \
        --out "$LOGS/bench" --commit "$COMMIT" ;;
  esac
}

# The directory holding library $2 (e.g. libnccl.so.2), as PyTorch's Python packages have it:
# NVIDIA's cuda.pathfinder when installed, else the wheels' folders (nvidia/<package>/lib; CUDA 13
# wheels share nvidia/cu13/lib, NCCL keeps nvidia/nccl/lib). No disk-wide search.
python_lib_dir() {
  [[ -n "$TORCH_PY" ]] || return 0
  timeout 15 "$TORCH_PY" - "$1" "$2" 2>/dev/null <<'PYEOF'
import glob, os, site, sys
name, soname = sys.argv[1], sys.argv[2]
try:
    from cuda.pathfinder import load_nvidia_dynamic_lib
    print(os.path.dirname(load_nvidia_dynamic_lib(name).abs_path))
    sys.exit(0)
except Exception:
    pass
roots = set(site.getsitepackages())
try:
    import nvidia
    roots.update(os.path.dirname(p) for p in nvidia.__path__)
except Exception:
    pass
for root in sorted(roots):
    for d in sorted(glob.glob(os.path.join(root, "nvidia", "*", "lib"))):
        if os.path.exists(os.path.join(d, soname)):
            print(d)
            sys.exit(0)
PYEOF
}

# The same from the system: the loader's cache, then the toolkit.
system_lib_dir() {
  local hit
  hit=$(ldconfig -p 2>/dev/null | awk -v so="$1" '$1 == so {print $NF; exit}')
  if [[ -n "$hit" ]]; then dirname "$hit"; return; fi
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib; do
    if [[ -e "$d/$1" ]]; then echo "$d"; return; fi
  done
}

# What the probe found, for the later steps; saved after each finding, so that a probe cut short
# by its timeout still passes on what it had.
save_env() {
  printf 'HAVE_GPU=%q\nHAVE_BUNDLE=%q\nGPU_NAME=%q\nTORCH_PY=%q\nLIBPATH=%q\nSANITIZER=%q\n' \
    "$HAVE_GPU" "$HAVE_BUNDLE" "$GPU_NAME" "$TORCH_PY" "$LIBPATH" "$SANITIZER" >"$WORK/env.vars"
  printf 'NCCL_DIR=%q\nCUBLAS_DIR=%q\nCUDART_DIR=%q\n' "$NCCL_DIR" "$CUBLAS_DIR" "$CUDART_DIR" >>"$WORK/env.vars"
}

step_env() {
  local ok=0 b py dir spec var name so
  HAVE_GPU=0 HAVE_BUNDLE=1 GPU_NAME="" TORCH_PY="" LIBPATH=$BUNDLE/lib SANITIZER="" NCCL_DIR="" CUBLAS_DIR="" CUDART_DIR=""
  echo "== machine"; uname -a; nproc; free -g 2>/dev/null | head -2
  echo "== nvidia-smi"
  nvidia-smi 2>&1 | head -20
  GPU_NAME=$(nvidia-smi -L 2>/dev/null | sed -n '1s/^GPU 0: \(.*\) (UUID.*/\1/p')
  if [[ -n "$GPU_NAME" ]]; then HAVE_GPU=1; else echo "no GPU: nvidia-smi -L lists none"; ok=1; fi
  echo "== bundle $BUNDLE"
  head -4 "$BUNDLE/MANIFEST" 2>/dev/null
  for b in normgpt test_cuda; do
    [[ -x "$BUNDLE/bin/$b" ]] || { echo "missing: $BUNDLE/bin/$b (run scripts/gpu_bundle.sh, carry it)"; HAVE_BUNDLE=0 ok=1; }
  done
  save_env
  echo "== python with PyTorch"
  for py in "${TORCH_PYTHON:-}" python3 /usr/bin/python3 /opt/torch/.venv/bin/python3; do
    [[ -n "$py" ]] && command -v "$py" >/dev/null || continue
    if timeout 20 "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" 2>&1; then
      TORCH_PY=$(command -v "$py")
      break
    fi
  done
  echo "python: ${TORCH_PY:-none with torch}"
  save_env
  echo "== libraries (Python packages first, then the system)"
  for spec in NCCL_DIR:nccl:libnccl.so.2 CUBLAS_DIR:cublas:libcublas.so.13 CUDART_DIR:cudart:libcudart.so.13; do
    IFS=: read -r var name so <<<"$spec"
    dir=$(python_lib_dir "$name" "$so")
    [[ -n "$dir" ]] || dir=$(system_lib_dir "$so")
    echo "$so: ${dir:-not found}"
    printf -v "$var" '%s' "$dir"
    [[ -n "$dir" && ":$LIBPATH:" != *":$dir:"* ]] && LIBPATH=$LIBPATH:$dir
  done
  # The machine's own path (it may name the driver's libraries) stays, after ours.
  [[ -n "${LD_LIBRARY_PATH:-}" ]] && LIBPATH=$LIBPATH:$LD_LIBRARY_PATH
  # The bundle's libstdc++ only when the system's is older than the one it was built against.
  if [[ -x "$BUNDLE/bin/normgpt" ]] &&
    LD_LIBRARY_PATH=$LIBPATH ldd "$BUNDLE/bin/normgpt" 2>&1 | grep -q "version .GLIBCXX\|version .GCC_\|version .CXXABI"; then
    echo "system libstdc++ too old: using the bundle's"
    LIBPATH=$BUNDLE/lib/fallback:$LIBPATH
  fi
  for b in normgpt test_cuda; do
    [[ -x "$BUNDLE/bin/$b" ]] || continue
    if LD_LIBRARY_PATH=$LIBPATH ldd "$BUNDLE/bin/$b" 2>&1 | grep "not found"; then ok=1; fi
  done
  save_env
  echo "== tools"
  for b in "${COMPUTE_SANITIZER:-}" "$(command -v compute-sanitizer)" /usr/local/cuda/bin/compute-sanitizer; do
    [[ -n "$b" && -x "$b" ]] && { SANITIZER=$b; break; }
  done
  echo "compute-sanitizer: ${SANITIZER:-not found}"
  # Wrappers that give normgpt and test_cuda their library path: bench_gpu.sh runs PyTorch beside
  # them, which must keep the machine's environment (and so its own CUDA libraries).
  mkdir -p "$WORK/bin"
  for b in normgpt test_cuda; do
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%q exec %q "$@"\n' "$LIBPATH" "$BUNDLE/bin/$b" >"$WORK/bin/$b"
    chmod +x "$WORK/bin/$b"
  done
  save_env
  cat "$WORK/env.vars"
  return $ok
}

step_train() {
  local run=$WORK/train_run shard=$WORK/shard
  # A byte-level shard from the repository's own text (about 0.9 MB): no data/ needed.
  LD_LIBRARY_PATH=$LIBPATH "$BUNDLE/bin/normgpt" tokenize --tokenizer byte --val-fraction 0.05 \
    --output-dir "$shard" --input "$ROOT"/README.md "$ROOT"/docs/*.md "$ROOT"/src/*/*.cpp \
    "$ROOT"/src/*/*.hpp "$ROOT"/scripts/*.py || return 1
  NORMGPT_OP_TIMING=1 LD_LIBRARY_PATH=$LIBPATH "$BUNDLE/bin/normgpt" train \
    -c "$BUNDLE/configs/gpt2_124m/pre.json" -o "$run" --set device=cuda --set precision=bf16 \
    --set train.steps=$TRAIN_STEPS --set train.batch_size=8 --set train.grad_accum=1 \
    --set optim.warmup_steps=2 --set "data.train=$shard/train_*.bin" --set "data.val=$shard/val_*.bin" \
    --set eval.every=0 --set eval.batches=2 --set log.every=1 --set log.layer_stats_every=0 \
    --set checkpoint.every=0 --set checkpoint.keep=1
  local rc=$?
  # the run's text files into the logs; its checkpoint (1.5 GB at 124M) stays behind
  mkdir -p "$LOGS/train"
  cp "$run"/*.json "$run"/*.jsonl "$run"/*.log "$LOGS/train/" 2>/dev/null
  [[ $rc == 0 && -f "$run/op_timing.json" ]]
}

# ------------------------------------------------------------------------------------------------
# The summary: every step's status, time and headline, as JSON written by hand (this must work
# when nothing else does: no Python needed), with few subprocesses (it is rewritten after every step).

# js VAR TEXT: VAR = TEXT as a JSON string literal (control characters other than newline and tab
# dropped).
js() {
  local s=$2
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//[[:cntrl:]]/}
  printf -v "$1" '"%s"' "$s"
}

# A file's JSON when it parses (any python checks it), else null.
json_file() {
  local py
  py=$(command -v python3 || echo "${TORCH_PY:-python3}")
  if [[ -s "$1" ]] && "$py" -c 'import json, sys; json.load(open(sys.argv[1]))' "$1" 2>/dev/null; then
    cat "$1"
  else
    printf 'null'
  fi
}

headline() {
  local log=$LOGS/$1.log
  [[ -f "$log" ]] || return 0
  case $1 in
    env) printf 'GPU: %s; nccl: %s; cublas: %s; sanitizer: %s' "${GPU_NAME:-none}" "${NCCL_DIR:-not found}" \
           "${CUBLAS_DIR:-not found}" "${SANITIZER:-not found}" ;;
    parity | ops) grep -E '^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ test' "$log" | tr '\n' ' ' ;;
    memcheck | racecheck) grep -E 'ERROR SUMMARY|^\[  (PASSED|FAILED) +\] [0-9]+ test' "$log" | tr '\n' ' ' ;;
    train) grep -Eo 'op timing \(.*|done: .*|error: .*' "$log" | head -2 | tr '\n' ' ' ;;
    bench) grep -E '^\[bench_gpu\] pre:' "$log" | tr '\n' ' ' ;;
  esac | cut -c1-400
}

write_outputs() {
  local s ok=true rows="" sep="" row name status log note head started bundle commit gpu py nccl cublas cudart libpath
  for s in "${STEPS[@]}"; do
    js name "$s"; js status "${STATUS[$s]}"; js log "logs/$s.log"; js note "${NOTE[$s]:-}"; js head "$(headline "$s")"
    printf -v row '%s\n    {"name": %s, "status": %s, "rc": %s, "seconds": %s, "timeout_s": %s, "log": %s, "note": %s, "headline": %s}' \
      "$sep" "$name" "$status" "${RC[$s]:-null}" "${SECS[$s]:-null}" "${TMO[$s]:-null}" "$log" "$note" "$head"
    rows+=$row sep=,
    case ${STATUS[$s]} in pass | planned) ;; skipped) [[ -n "${SELECTED_OUT[$s]:-}" ]] || ok=false ;; *) ok=false ;; esac
  done
  js started "$STARTED"; js bundle "$BUNDLE"; js commit "$COMMIT"; js gpu "${GPU_NAME:-}"; js py "${TORCH_PY:-}"
  js nccl "${NCCL_DIR:-}"; js cublas "${CUBLAS_DIR:-}"; js cudart "${CUDART_DIR:-}"; js libpath "${LIBPATH:-}"
  {
    printf '{\n  "kit": "gpu_check",\n  "dry_run": %s,\n  "started_utc": %s,\n  "elapsed_s": %d,\n' \
      "$([[ $DRY == 1 ]] && echo true || echo false)" "$started" $(($(date +%s) - START))
    printf '  "budget_s": %d,\n  "bundle": %s,\n  "bundle_commit": %s,\n  "gpu": %s,\n  "torch_python": %s,\n' \
      "$TOTAL" "$bundle" "$commit" "$gpu" "$py"
    printf '  "libraries": {"nccl": %s, "cublas": %s, "cudart": %s, "ld_library_path": %s},\n' \
      "$nccl" "$cublas" "$cudart" "$libpath"
    printf '  "steps": [%s\n  ],\n  "ok": %s,\n' "$rows" "$ok"
    printf '  "op_timing": %s,\n' "$(json_file "$LOGS/train/op_timing.json")"
    printf '  "bench": %s\n}\n' "$(json_file "$(ls "$LOGS"/bench/*.json 2>/dev/null | head -1)")"
  } >"$WORK/summary.json"
  cp "$WORK/summary.json" "$LOGS/summary.json"
  tar -czf "$WORK/logs.tar.gz" -C "$WORK" logs
  # into OUT by rename, so that a run cut short leaves whole files there
  cp "$WORK/summary.json" "$OUT/.gpu_check_summary.json.tmp" &&
    mv -f "$OUT/.gpu_check_summary.json.tmp" "$OUT/gpu_check_summary.json"
  cp "$WORK/logs.tar.gz" "$OUT/.gpu_check_logs.tar.gz.tmp" && mv -f "$OUT/.gpu_check_logs.tar.gz.tmp" "$OUT/gpu_check_logs.tar.gz"
  [[ $ok == true ]]
}

say() { echo "[gpu_check] $*" | tee -a "$LOGS/console.log"; }

# The command each step runs, for the plan (--dry-run) and the logs.
describe() {
  case $1 in
    env) echo "nvidia-smi; find PyTorch's python, NCCL/cuBLAS/cudart dirs, compute-sanitizer; ldd the bundle" ;;
    parity) echo "NCCL_SOCKET_IFNAME=lo test_cuda --gtest_filter='$PARITY_FILTER'" ;;
    ops) echo "test_cuda --gtest_filter='-$PARITY_FILTER'" ;;
    memcheck) echo "compute-sanitizer --tool memcheck test_cuda --gtest_filter='$MEMCHECK_FILTER'" ;;
    racecheck) echo "compute-sanitizer --tool racecheck test_cuda --gtest_filter='$RACECHECK_FILTER'" ;;
    train) echo "normgpt tokenize --tokenizer byte (repository text); NORMGPT_OP_TIMING=1 normgpt train gpt2_124m/pre.json bf16, $TRAIN_STEPS steps, B 8" ;;
    bench) echo "bench_gpu.sh --strategies pre --steps 8 --warmup 3 --accum 1 (PyTorch beside it)" ;;
  esac
}

# ------------------------------------------------------------------------------------------------
# Internal: the main part below runs each step as `gpu_check.sh --run-step NAME`.
if [[ ${1:-} == --run-step ]]; then
  run_step "$2"
  exit $?
fi

BUNDLE=.carry/gpu OUT=${OUT:-gpu_check_out} ONLY="" SKIP="" DRY=0 SCALE=1
while (($#)); do
  case "$1" in
    --bundle) [[ $# -ge 2 ]] || die "--bundle needs a value"; BUNDLE=$2; shift 2 ;;
    --out) [[ $# -ge 2 ]] || die "--out needs a value"; OUT=$2; shift 2 ;;
    --only) [[ $# -ge 2 ]] || die "--only needs a value"; ONLY=$2; shift 2 ;;
    --skip) [[ $# -ge 2 ]] || die "--skip needs a value"; SKIP=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --timeout-scale) [[ $# -ge 2 ]] || die "--timeout-scale needs a value"; SCALE=$2; shift 2 ;;
    -h | --help) sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ $SCALE =~ ^[0-9]*\.?[0-9]+$ ]] && awk -v s="$SCALE" 'BEGIN {exit !(s > 0)}' || die "--timeout-scale must be a number > 0"
for s in ${ONLY//,/ } ${SKIP//,/ }; do in_list "$s" "$(IFS=,; echo "${STEPS[*]}")" || die "unknown step '$s' (${STEPS[*]})"; done
scaled() { awk -v x="$1" -v s="$SCALE" 'BEGIN {v = int(x * s + 0.5); print (v < 1 ? 1 : v)}'; }

[[ $BUNDLE == /* ]] || BUNDLE=$ROOT/$BUNDLE
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
LOGS=$WORK/logs
mkdir -p "$LOGS"
trap 'rm -rf "$WORK"' EXIT
export WORK LOGS BUNDLE ROOT PARITY_FILTER MEMCHECK_FILTER RACECHECK_FILTER TRAIN_STEPS
COMMIT=$(sed -n 's/^commit //p' "$BUNDLE/MANIFEST" 2>/dev/null | cut -d' ' -f1)
COMMIT=${COMMIT:-unknown}
export COMMIT
START=$(date +%s)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
TOTAL=$(scaled $TOTAL_S)
DEADLINE=$((START + TOTAL - $(scaled $RESERVE_S)))
declare -A STATUS RC SECS TMO NOTE SELECTED_OUT
for s in "${STEPS[@]}"; do STATUS[$s]=pending; done

say "bundle $BUNDLE (commit $COMMIT), logs $WORK, output $OUT, budget ${TOTAL}s"
for s in "${STEPS[@]}"; do
  echo "$s	timeout $(scaled "${BUDGET[$s]}")s	$(describe "$s")" >>"$LOGS/plan.txt"
done
if [[ $DRY == 1 ]]; then
  cat "$LOGS/plan.txt"
  for s in "${STEPS[@]}"; do STATUS[$s]=planned TMO[$s]=$(scaled "${BUDGET[$s]}") NOTE[$s]=$(describe "$s"); done
  write_outputs
  exit 0
fi

for s in "${STEPS[@]}"; do
  # shellcheck disable=SC1091
  [[ -f "$WORK/env.vars" ]] && source "$WORK/env.vars"
  note=""
  if [[ $s != env ]] && { [[ -n "$ONLY" ]] && ! in_list "$s" "$ONLY" || in_list "$s" "$SKIP"; }; then
    note="not selected (--only/--skip)" SELECTED_OUT[$s]=1
  elif [[ $s != env && ${HAVE_GPU:-0} != 1 ]]; then
    note="no GPU"
  elif [[ $s != env && ${HAVE_BUNDLE:-0} != 1 ]]; then
    note="no bundle"
  elif [[ $s == memcheck || $s == racecheck ]] && [[ -z "${SANITIZER:-}" ]]; then
    note="compute-sanitizer not found"
  fi
  t=$(scaled "${BUDGET[$s]}")
  left=$((DEADLINE - $(date +%s) - GRACE_S))
  ((left < t)) && t=$left
  if [[ -z "$note" ]] && ((t < 1)); then note="out of time (the run's ${TOTAL}s budget)"; fi
  if [[ -n "$note" ]]; then
    STATUS[$s]=skipped NOTE[$s]=$note
    say "$s: skipped ($note)"
    write_outputs >/dev/null
    continue
  fi
  say "$s: $(describe "$s") (timeout ${t}s)"
  t0=$(date +%s)
  timeout -k "$GRACE_S" "$t" bash "$SELF" --run-step "$s" >"$LOGS/$s.log" 2>&1
  rc=$?
  RC[$s]=$rc SECS[$s]=$(($(date +%s) - t0)) TMO[$s]=$t
  case $rc in
    0) STATUS[$s]=pass ;;
    124 | 137) STATUS[$s]=timeout NOTE[$s]="stopped after ${t}s" ;;
    *) STATUS[$s]=fail ;;
  esac
  # On the GPU machine no CUDA test may skip: a skip there means the device was not usable.
  if [[ $rc == 0 && ($s == parity || $s == ops) ]] && grep -qE '^\[  SKIPPED \] [0-9]+ test' "$LOGS/$s.log"; then
    STATUS[$s]=fail NOTE[$s]="tests skipped: the device was not usable"
  fi
  [[ -f "$WORK/env.vars" ]] && source "$WORK/env.vars"
  say "$s: ${STATUS[$s]} in ${SECS[$s]}s $(headline "$s" | tr '\n' ' ')"
  write_outputs >/dev/null
done
[[ -f "$LOGS/train/op_timing.json" ]] && grep -A40 "op timing (" "$LOGS/train.log" | grep -v "done:" | tee -a "$LOGS/console.log"
write_outputs
rc=$?
say "done in $(($(date +%s) - START))s: $(for s in "${STEPS[@]}"; do printf '%s %s; ' "$s" "${STATUS[$s]}"; done)"
say "$OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
write_outputs >/dev/null
exit $((rc == 0 ? 0 : 1))
