#!/usr/bin/env bash
# Set up this machine (scripts/setup.sh: packages, data, Release build), then run the C++ tests
# (CTest, without the cuda and slow labels) and the Python tests (pytest). Exits non-zero when
# anything fails; the last line sums up both suites.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
PY=/usr/bin/python3
T0=$(date +%s)
LOGDIR=$(mktemp -d)
trap 'rm -rf "$LOGDIR"' EXIT

bash scripts/setup.sh

echo "[test] building $BUILD_DIR (all targets)"
cmake --build "$BUILD_DIR" -j"$JOBS"

echo "[test] ctest -LE 'cuda|slow'"
set +e
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS" -LE 'cuda|slow' 2>&1 \
  | tee "$LOGDIR/ctest.log"
ctest_rc=${PIPESTATUS[0]}

echo "[test] pytest tests/scripts scripts/reference"
$PY -m pytest -q -p no:cacheprovider tests/scripts scripts/reference 2>&1 | tee "$LOGDIR/pytest.log"
pytest_rc=${PIPESTATUS[0]}
set -e
# pytest exits 5 when it collected no tests: not a failure here.
[[ $pytest_rc == 5 ]] && pytest_rc=0

# Counts for the summary line, read from the runners' own closing lines.
ct=$(grep -Eo '[0-9]+ tests failed out of [0-9]+' "$LOGDIR/ctest.log" | tail -1 || true)
ctest_failed=$(awk '{print $1}' <<<"${ct:-0 x x x x 0}")
ctest_total=$(awk '{print $NF}' <<<"${ct:-0 x x x x 0}")
ctest_passed=$((ctest_total - ctest_failed))
pt=$(tail -1 "$LOGDIR/pytest.log")
py_passed=$(grep -Eo '[0-9]+ passed' <<<"$pt" | awk '{print $1}' || true)
py_failed=$(grep -Eo '[0-9]+ (failed|error|errors)' <<<"$pt" | awk '{s+=$1} END {print s+0}' || true)
py_skipped=$(grep -Eo '[0-9]+ skipped' <<<"$pt" | awk '{print $1}' || true)
py_passed=${py_passed:-0}
py_skipped=${py_skipped:-0}

status=ok
if [[ $ctest_rc != 0 || $pytest_rc != 0 ]]; then status=FAILED; fi
echo "[test] ctest: ${ctest_passed}/${ctest_total} passed (rc $ctest_rc); pytest: ${py_passed} passed," \
  "${py_failed} failed, ${py_skipped} skipped (rc $pytest_rc); $(($(date +%s) - T0)) s; $status"
echo "$((ctest_passed + py_passed)) passed, $((ctest_failed + py_failed)) failed"
[[ $status == ok ]]
