#!/usr/bin/env bash
# Everything to run on a machine with a GPU, in one command, logs under $OUT (the device tool's
# output folder) or ./gpu_check_logs:
#   1. the binaries: built here (CMake + the Debian -dev packages), or taken from a bundle made
#      elsewhere with scripts/gpu_bundle.sh (the lent GPU machine has no -dev packages);
#   2. test_cuda: every CUDA op against its CPU twin (fp32 and bf16), then the whole-step checks
#      (fp32 losses within 1e-4 of the CPU for 20 steps per strategy, bf16 within 2e-2, bitwise
#      determinism, one-process NCCL);
#   3. compute-sanitizer memcheck and racecheck over the op tests;
#   4. a short `normgpt train` on device cuda (configs/tiny.json), fp32 and bf16;
#   5. with --bench: scripts/bench_gpu.sh, short (--bench-steps, default 8, accumulation 1).
#
# Usage: bash scripts/gpu_check.sh [--bundle DIR | --build-dir DIR] [--no-sanitizer] [--bench]
#                                  [--bench-only] [--strategies LIST] [--bench-steps N]
set -uo pipefail
cd "$(dirname "$0")/.."
BUNDLE="" BUILD=build-gpu SANITIZE=1 BENCH=0 TESTS=1 STRATS="pre,post,peri,geonorm,dyt" BSTEPS=8
while [[ $# -gt 0 ]]; do
  case $1 in
    --bundle) BUNDLE=$2; shift 2 ;;
    --build-dir) BUILD=$2; shift 2 ;;
    --no-sanitizer) SANITIZE=0; shift ;;
    --bench) BENCH=1; shift ;;
    --bench-only) BENCH=1; TESTS=0; SANITIZE=0; shift ;;
    --strategies) STRATS=$2; shift 2 ;;
    --bench-steps) BSTEPS=$2; shift 2 ;;
    *) echo "gpu_check: unknown option $1" >&2; exit 2 ;;
  esac
done
LOGS=${OUT:-gpu_check_logs}
mkdir -p "$LOGS"
nvidia-smi > "$LOGS/nvidia-smi.txt" 2>&1 || echo "[gpu_check] nvidia-smi failed (no GPU?)"
head -15 "$LOGS/nvidia-smi.txt"

if [[ -n "$BUNDLE" ]]; then
  BIN=$BUNDLE/bin
  # cuBLAS from the toolkit, NCCL wherever it is installed (e.g. inside the Python packages)
  NCCL_DIR=$(dirname "$(find / -name libnccl.so.2 -not -path '*/proc/*' 2>/dev/null | head -1)" 2>/dev/null)
  export LD_LIBRARY_PATH="$BUNDLE/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${NCCL_DIR:-}:${LD_LIBRARY_PATH:-}"
  ldd "$BIN/normgpt" | grep "not found" && { echo "[gpu_check] missing libraries"; exit 1; }
else
  BIN=$BUILD
  echo "[gpu_check] configure + build ($BUILD)"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNORMGPT_MPI=OFF > "$LOGS/configure.log" 2>&1 &&
    cmake --build "$BUILD" -j"$(nproc)" --target normgpt test_cuda > "$LOGS/build.log" 2>&1 ||
    { tail -40 "$LOGS/build.log"; exit 1; }
  cp "$BUILD/tests/test_cuda" "$BUILD/test_cuda"
fi
rc=0
if [[ $TESTS == 1 ]]; then
  echo "[gpu_check] test_cuda: ops"
  "$BIN/test_cuda" --gtest_filter='-*CudaTraining*' > "$LOGS/test_cuda_ops.log" 2>&1 || rc=1
  grep -E "^\[  (PASSED|FAILED|SKIPPED) \]|tests ran" "$LOGS/test_cuda_ops.log" | head -40
  echo "[gpu_check] test_cuda: whole training steps"
  "$BIN/test_cuda" --gtest_filter='*CudaTraining*' > "$LOGS/test_cuda_training.log" 2>&1 || rc=1
  grep -E "\[ parity \]|^\[  (PASSED|FAILED) \]|tests ran" "$LOGS/test_cuda_training.log" | head -60
fi
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [[ $SANITIZE == 1 && -x "$SAN" ]]; then
  for tool in memcheck racecheck; do
    echo "[gpu_check] compute-sanitizer --tool $tool (op tests)"
    timeout 300 "$SAN" --tool "$tool" --error-exitcode 9 "$BIN/test_cuda" --gtest_filter='-*CudaTraining*' \
      > "$LOGS/sanitizer_$tool.log" 2>&1 || rc=1
    tail -4 "$LOGS/sanitizer_$tool.log"
  done
fi
if [[ $TESTS == 1 ]]; then
  for prec in fp32 bf16; do
    echo "[gpu_check] normgpt train on device cuda, precision $prec (configs/tiny.json, 40 steps)"
    rm -rf "$LOGS/run_tiny_$prec"
    "$BIN/normgpt" train -c configs/tiny.json -o "$LOGS/run_tiny_$prec" --set device=cuda --set precision=$prec \
      --set train.steps=40 > "$LOGS/train_tiny_$prec.log" 2>&1 || rc=1
    grep -E "device:|step +(1|40)/|error" "$LOGS/train_tiny_$prec.log"
  done
fi
if [[ $BENCH == 1 ]]; then
  for py in /usr/bin/python3 python3 /opt/conda/bin/python; do
    if command -v "$py" > /dev/null && "$py" -c "import torch; assert torch.cuda.is_available()" 2> /dev/null; then
      export TORCH_PYTHON=$(command -v "$py")
      break
    fi
  done
  echo "[gpu_check] bench_gpu.sh --strategies $STRATS --steps $BSTEPS (PyTorch: ${TORCH_PYTHON:-none})"
  bash scripts/bench_gpu.sh --build-dir "$BIN" --strategies "$STRATS" --steps "$BSTEPS" --warmup 3 --accum 1 \
    --out "$LOGS/benchmarks" > "$LOGS/bench.log" 2>&1 || rc=1
  tail -25 "$LOGS/bench.log"
fi
echo "[gpu_check] logs in $LOGS; exit $rc"
exit $rc
