#!/usr/bin/env bash
# The second README command (and what CI runs): install what is missing, build with
# ASan + UBSan and warnings as errors, and run every test through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# Node packages of each test suite, pinned by its lockfile.
for lock in tests/*/package-lock.json; do
  (cd "$(dirname "$lock")" && npm ci --no-audit --no-fund --loglevel=error)
done
scripts/build.sh asan
# halt_on_error keeps a sanitizer finding from scrolling past as a warning.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd build-asan
set +e
ctest --output-on-failure --timeout 600 -j 2
status=$?
set -e
echo
echo "ctest exit status: $status"
exit $status
