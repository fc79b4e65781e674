#!/usr/bin/env bash
# Builds HERE (no GPU needed: nvcc cross-compiles for sm_90) everything scripts/gpu_check.sh runs
# on the lent GPU machine, which has the CUDA toolkit, PyTorch and its CUDA Python packages but no
# Debian -dev packages and no time to build (15 minutes of device time per session). Carry the
# result (git-ignored) with the device call:
#
#   DEST/bin/normgpt, bin/test_cuda   device code for sm_90 (H100/H200); host code for
#                                     NORMGPT_CPU_ARCH=x86-64-v2, not this machine's -march=native
#                                     (AVX-512 here: an illegal instruction on another CPU)
#   DEST/lib/                         the non-CUDA shared libraries they need (spdlog, fmt, libgomp)
#   DEST/lib/fallback/                libstdc++ and libgcc_s, put on the library path there only
#                                     when the system's are older than the ones built against
#   DEST/configs/                     the configs gpu_check.sh runs (the binary's own version)
#   DEST/MANIFEST                     commit, build flags, date and sizes
#
# Not carried: the CUDA runtime, cuBLAS and NCCL (hundreds of MB); gpu_check.sh takes them from
# the machine's PyTorch packages or its toolkit. MPI and BLAS are off: fewer libraries to carry,
# and the CPU reference in the parity tests is tiny.
#
# Usage: bash scripts/gpu_bundle.sh [--build-dir DIR] [--dest DIR]
#        (defaults build-gpu-bundle and .carry/gpu); then, with DEST carried:
#        bash scripts/gpu_check.sh --bundle .carry/gpu
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build-gpu-bundle DEST=.carry/gpu
# The device tool carries 64 MiB per call, the working tree included: stay well under it.
MAX_MIB=32
die() { echo "gpu_bundle: $*" >&2; exit 2; }
while (($#)); do
  case "$1" in
    --build-dir) [[ $# -ge 2 ]] || die "--build-dir needs a value"; BUILD=$2; shift 2 ;;
    --dest) [[ $# -ge 2 ]] || die "--dest needs a value"; DEST=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

mkdir -p "$BUILD"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNORMGPT_MPI=OFF -DNORMGPT_BLAS=OFF \
  -DNORMGPT_CPU_ARCH=x86-64-v2 -DCMAKE_CUDA_ARCHITECTURES=90 >"$BUILD/configure.log"
grep -q "CUDA=ON" "$BUILD/configure.log" || die "no CUDA toolkit found (see $BUILD/configure.log)"
cmake --build "$BUILD" -j"$(nproc)" --target normgpt test_cuda

# x86-64-v2 has no AVX: any ymm/zmm register in the host code means a flag did not take.
if command -v objdump >/dev/null; then
  for bin in "$BUILD/normgpt" "$BUILD/tests/test_cuda"; do
    if objdump -d "$bin" | grep -qE '%[yz]mm'; then die "$bin has AVX instructions: not portable"; fi
  done
fi

rm -rf "$DEST"
mkdir -p "$DEST/bin" "$DEST/lib/fallback" "$DEST/configs"
cp "$BUILD/normgpt" "$BUILD/tests/test_cuda" "$DEST/bin/"
cp configs/tiny.json "$DEST/configs/"
cp -r configs/gpt2_124m "$DEST/configs/"

# Shared libraries from outside the system's core and the CUDA stack.
for bin in "$DEST"/bin/*; do
  ldd "$bin" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  case "$lib" in
    */libc.so*|*/libm.so*|*/ld-linux*|*/libpthread*|*/libdl.so*|*/librt.so*) ;;  # glibc: the system's
    */libcudart*|*/libcublas*|*/libnccl*|*/cuda/*) ;;                                # CUDA: the machine's
    */libstdc++*|*/libgcc_s*) cp -L "$lib" "$DEST/lib/fallback/" ;;
    *) cp -L "$lib" "$DEST/lib/" ;;
  esac
done

size_kib=$(du -sk "$DEST" | cut -f1)
{
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $(nvcc --version 2>/dev/null | tail -1 || echo 'nvcc ?')"
  echo "flags CMAKE_BUILD_TYPE=Release NORMGPT_CPU_ARCH=x86-64-v2 CMAKE_CUDA_ARCHITECTURES=90 MPI=OFF BLAS=OFF"
  echo "size_kib $size_kib"
  (cd "$DEST" && find bin lib configs -type f | sort)
} >"$DEST/MANIFEST"
((size_kib <= MAX_MIB * 1024)) || die "$DEST is $((size_kib / 1024)) MiB, over the $MAX_MIB MiB this kit allows"
echo "gpu_bundle: $DEST ($((size_kib / 1024)) MiB):"
cat "$DEST/MANIFEST"
