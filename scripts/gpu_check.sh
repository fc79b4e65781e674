#!/usr/bin/env bash
# First thing to run on a machine with a GPU: build with CUDA (sm_90), run the cuda-labelled tests
# (every CUDA op against its CPU twin), then the same under compute-sanitizer (memcheck, racecheck).
# Logs go to $OUT (the device tool's output folder) or ./gpu_check_logs.
#
# Usage: bash scripts/gpu_check.sh [BUILD_DIR]   (default build-gpu)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-gpu}
LOGS=${OUT:-gpu_check_logs}
mkdir -p "$LOGS"
nvidia-smi > "$LOGS/nvidia-smi.txt" 2>&1 || echo "[gpu_check] nvidia-smi failed (no GPU?)"
echo "[gpu_check] configure + build ($BUILD)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNORMGPT_MPI=OFF > "$LOGS/configure.log" 2>&1 &&
  cmake --build "$BUILD" -j"$(nproc)" --target test_cuda > "$LOGS/build.log" 2>&1 ||
  { tail -40 "$LOGS/build.log"; exit 1; }
echo "[gpu_check] ctest -L cuda"
ctest --test-dir "$BUILD" -L cuda --output-on-failure > "$LOGS/ctest_cuda.log" 2>&1
rc=$?
tail -15 "$LOGS/ctest_cuda.log"
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [[ -x "$SAN" ]]; then
  for tool in memcheck racecheck; do
    echo "[gpu_check] compute-sanitizer --tool $tool"
    "$SAN" --tool "$tool" --error-exitcode 9 "$BUILD/tests/test_cuda" > "$LOGS/sanitizer_$tool.log" 2>&1 || rc=1
    tail -5 "$LOGS/sanitizer_$tool.log"
  done
else
  echo "[gpu_check] compute-sanitizer not found; skipped"
fi
echo "[gpu_check] logs in $LOGS; exit $rc"
exit $rc
