#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/CMakeLists.txt, clang, ASan + UBSan) into build-fuzz/, runs
# each for a bounded time, then replays fuzz/regressions/<target>/* and the seed corpus
# fuzz/corpus/<target>/ as a regression check. Prints a summary table (target, seconds,
# executions, new findings) and exits non-zero on any finding. See docs/fuzzing.md.
#
#   scripts/fuzz.sh [-t SECONDS] [-j JOBS] [--replay-only] [--make-seeds] [TARGET...]
#     -t SECONDS     fuzzing time per target (default 60; FUZZ_SECONDS)
#     -j JOBS        targets fuzzed side by side (default 1; each uses one core)
#     --replay-only  skip fuzzing: build, then replay regressions and seeds
#     --make-seeds   rewrite the binary seeds of fuzz/corpus/{shard,model_file} and exit
#     TARGET         config | shard | model_file (default: all three)
#
# A finding is a crash, a sanitizer report, an exception other than ng::UserError, a broken
# harness oracle, an input slower than 2 s (-timeout) or one using more than 2 GiB (-rss_limit_mb).
# Its input is saved under build-fuzz/artifacts/<target>/; after fixing the bug, copy it to
# fuzz/regressions/<target>/ so that every later run replays it.
set -uo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
JOBS=1
REPLAY_ONLY=0
MAKE_SEEDS=0
TARGETS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -t) SECONDS_PER_TARGET=$2; shift 2 ;;
    -j) JOBS=$2; shift 2 ;;
    --replay-only) REPLAY_ONLY=1; shift ;;
    --make-seeds) MAKE_SEEDS=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    config|shard|model_file) TARGETS+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[[ ${#TARGETS[@]} -eq 0 ]] && TARGETS=(config shard model_file)

BUILD=build-fuzz
FLAGS=(-rss_limit_mb=2048 -timeout=2 -max_len=4096 -print_final_stats=1)

if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ not found; install Debian 'clang' and 'libclang-rt-14-dev'" >&2
  exit 2
fi
echo "[fuzz] building $BUILD (clang, -fsanitize=fuzzer,address,undefined)"
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  CC=clang CXX=clang++ cmake -S fuzz -B "$BUILD" >/dev/null || exit 2
fi
cmake --build "$BUILD" -j"$(nproc)" >"$BUILD/build.log" 2>&1 || { tail -30 "$BUILD/build.log"; exit 2; }

if [[ $MAKE_SEEDS == 1 ]]; then
  "$BUILD/fuzz_make_seeds" fuzz/corpus && echo "[fuzz] wrote fuzz/corpus/{shard,model_file}"
  exit $?
fi

# Number of findings libFuzzer left in a directory (crash-, leak-, timeout-, oom-, slow-unit-).
count_artifacts() {
  find "$1" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \
    -o -name 'slow-unit-*' \) 2>/dev/null | wc -l
}

fuzz_one() {
  local t=$1 work=$BUILD/work/$t art=$BUILD/artifacts/$t/
  mkdir -p "$work" "$art"
  local dict=()
  [[ -f fuzz/$t.dict ]] && dict=(-dict="fuzz/$t.dict")
  local before; before=$(count_artifacts "$art")
  local t0; t0=$(date +%s)
  # The working corpus lives in build-fuzz/work/<t> and grows across runs; fuzz/corpus/<t> (the
  # committed seeds) is read but never written.
  "$BUILD/fuzz_$t" "${FLAGS[@]}" "${dict[@]}" -max_total_time="$SECONDS_PER_TARGET" \
    -artifact_prefix="$art" "$work" "fuzz/corpus/$t" >"$BUILD/fuzz_$t.log" 2>&1
  local rc=$?
  local secs=$(($(date +%s) - t0)) execs
  execs=$(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$BUILD/fuzz_$t.log" | awk '{print $2}' | tail -1)
  local found=$(($(count_artifacts "$art") - before))
  [[ $rc != 0 && $found == 0 ]] && found=1  # died without leaving an input: still a finding
  echo "$t $secs ${execs:-?} $found $rc" >"$BUILD/fuzz_$t.result"
}

status=0
if [[ $REPLAY_ONLY == 0 ]]; then
  echo "[fuzz] fuzzing ${TARGETS[*]} for ${SECONDS_PER_TARGET} s each, $JOBS at a time"
  running=0
  for t in "${TARGETS[@]}"; do
    rm -f "$BUILD/fuzz_$t.result"
    fuzz_one "$t" &
    running=$((running + 1))
    if [[ $running -ge $JOBS ]]; then wait -n; running=$((running - 1)); fi
  done
  wait
fi

# Replay: every regression input on its own (so one crash does not hide the next), then the seeds.
echo "[fuzz] replaying fuzz/regressions and fuzz/corpus"
declare -A replay_fail
for t in "${TARGETS[@]}"; do
  replay_fail[$t]=0
  for f in fuzz/regressions/"$t"/*; do
    [[ -f $f ]] || continue
    if ! "$BUILD/fuzz_$t" -rss_limit_mb=2048 -timeout=2 "$f" >"$BUILD/replay_$t.log" 2>&1; then
      echo "[fuzz] REGRESSION: $t $f"
      tail -20 "$BUILD/replay_$t.log"
      replay_fail[$t]=$((replay_fail[$t] + 1))
    fi
  done
  if ! "$BUILD/fuzz_$t" -rss_limit_mb=2048 -timeout=2 -runs=0 "fuzz/corpus/$t" >"$BUILD/replay_$t.log" 2>&1; then
    echo "[fuzz] SEED FAILS: $t (see $BUILD/replay_$t.log)"
    tail -20 "$BUILD/replay_$t.log"
    replay_fail[$t]=$((replay_fail[$t] + 1))
  fi
done

printf '\n%-12s %8s %12s %13s %16s\n' target seconds executions new_findings replay_failures
for t in "${TARGETS[@]}"; do
  secs=- execs=- found=0
  if [[ $REPLAY_ONLY == 0 ]]; then
    read -r _ secs execs found _ <"$BUILD/fuzz_$t.result"
  fi
  printf '%-12s %8s %12s %13s %16s\n' "$t" "$secs" "$execs" "$found" "${replay_fail[$t]}"
  if [[ $found != 0 ]]; then
    status=1
    echo "    inputs: $(find "$BUILD/artifacts/$t" -maxdepth 1 -type f -newer "$BUILD/build.log" | tr '\n' ' ')"
    echo "    log:    $BUILD/fuzz_$t.log"
  fi
  [[ ${replay_fail[$t]} != 0 ]] && status=1
done
[[ $status == 0 ]] && echo "[fuzz] ok: no findings" || echo "[fuzz] FINDINGS (see above)"
exit $status
