#!/usr/bin/env bash
# Builds the GPU binaries HERE (no GPU needed: nvcc cross-compiles for sm_90) and packs them with
# the few non-CUDA shared libraries they need into .carry/gpu (git-ignored), small enough to travel
# to the lent GPU machine, which has the CUDA toolkit but no Debian -dev packages. There:
#   bash scripts/gpu_check.sh --bundle .carry/gpu
#
# Usage: bash scripts/gpu_bundle.sh [BUILD_DIR]   (default build-gpu-bundle)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-gpu-bundle}
DEST=.carry/gpu
# MPI and BLAS off: fewer libraries to carry; the CPU reference in the parity tests is tiny.
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNORMGPT_MPI=OFF -DNORMGPT_BLAS=OFF \
  -DCMAKE_CUDA_ARCHITECTURES=90 > /dev/null
cmake --build "$BUILD" -j"$(nproc)" --target normgpt test_cuda
rm -rf "$DEST"
mkdir -p "$DEST/bin" "$DEST/lib"
cp "$BUILD/normgpt" "$BUILD/tests/test_cuda" "$DEST/bin/"
# Non-system, non-CUDA libraries (the GPU machine brings its own CUDA, cuBLAS and NCCL).
for bin in "$DEST"/bin/*; do
  ldd "$bin" | awk '$3 ~ /^\// {print $3}'
done | sort -u | grep -Ev '/libc\.so|/libm\.so|/libstdc\+\+|/libgcc_s|/ld-linux|/libpthread|/libdl\.so|/librt\.so|/cuda/|libcudart|libcublas|libnccl' |
  while read -r lib; do cp -L "$lib" "$DEST/lib/"; done
du -sh "$DEST"
ls "$DEST/bin" "$DEST/lib"
