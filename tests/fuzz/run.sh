#!/usr/bin/env bash
# Builds the libFuzzer targets in a separate clang tree and runs them on a copy of their
# seed corpora (tests/fuzz/README.md).
#
#   tests/fuzz/run.sh [--seconds N] [--jobs J] [TARGET...] [-- LIBFUZZER_FLAGS...]
#   tests/fuzz/run.sh --build-only        configure (once) and build, run nothing
#   tests/fuzz/run.sh --no-build TARGET   run what is already built
#
#   --seconds N   fuzzing time per target (default 60; CTest uses 20)
#   --jobs J      run up to J targets at once, one process each (default 1)
#   --keep        keep each run's grown corpus and log (the path is printed)
#   TARGET        http_request ws_frame cursor redis_payload token (default: all)
#
# Environment: BUILD_ROOT (default build-fuzz/ at the repository root) is the clang
# tree; FUZZ_CXX (default clang++) its compiler; FUZZ_ARTIFACTS (default
# $BUILD_ROOT/findings) where crashing inputs go, one folder per target.
# Exit status: 0 when every target ran its time without a finding; 1 on a crash,
# sanitizer report, leak, timeout (10 s per input) or out-of-memory (2 GiB); 2 on a
# usage or build error.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd -P)
fuzz_dir=$root/tests/fuzz
all_targets=(http_request ws_frame cursor redis_payload token)
# Longest input per target: past the sidecar's header limit for HTTP, past
# kMaxTokenBytes for tokens, a few frames / entries / replies for the rest.
declare -A max_len=([http_request]=12288 [ws_frame]=4096 [cursor]=2048 [redis_payload]=4096
  [token]=5000)

seconds=60
jobs=1
build=1
run=1
keep=0
targets=()
extra=()
usage() {
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
}
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --jobs) jobs=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --build-only) run=0; shift ;;
    --no-build) build=0; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "run.sh: --seconds needs a positive integer" >&2; exit 2; }
[[ "$jobs" =~ ^[0-9]+$ && "$jobs" -gt 0 ]] || { echo "run.sh: --jobs needs a positive integer" >&2; exit 2; }
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -n "${max_len[$t]:-}" ] || { echo "run.sh: unknown target '$t' (known: ${all_targets[*]})" >&2; exit 2; }
done

build_root=${BUILD_ROOT:-$root/build-fuzz}
mkdir -p "$build_root" && build_root=$(cd "$build_root" && pwd -P)
artifacts_root=${FUZZ_ARTIFACTS:-$build_root/findings}
cxx=${FUZZ_CXX:-clang++}
packages_hint="install the Debian packages clang and libclang-rt-14-dev (scripts/install-deps.sh does)"

# Fails unless $cxx can link a libFuzzer program with the sanitizers: clang (package
# clang) and its runtimes (libclang-rt-14-dev) are separate packages on Debian.
check_toolchain() {
  if ! command -v "$cxx" >/dev/null 2>&1; then
    echo "run.sh: FAIL: '$cxx' not found, so the fuzz targets cannot be built: $packages_hint" >&2
    return 1
  fi
  local probe
  probe=$(mktemp -d "${TMPDIR:-/tmp}/comet-fuzz-probe.XXXXXX") || return 1
  printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
    'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' >"$probe/p.cpp"
  if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" >"$probe/log" 2>&1; then
    echo "run.sh: FAIL: '$cxx' cannot link a libFuzzer program (-fsanitize=fuzzer,address,undefined);" \
      "the libFuzzer/sanitizer runtimes are probably missing: $packages_hint. The compiler said:" >&2
    head -n 15 "$probe/log" >&2
    rm -rf "$probe"
    return 1
  fi
  rm -rf "$probe"
}

# Configures the clang tree once (the repository's CMake with -DCOMET_FUZZ=ON; the
# instrumentation flags go to every library so libFuzzer sees the product code's
# coverage) and builds the requested targets. A lock keeps two runs from building at once.
build_targets() {
  check_toolchain || return 1
  exec 9>"$build_root/.build-lock"
  flock 9
  local flags="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined"
  flags+=" -fno-sanitize-recover=undefined -fsanitize-ignorelist=$fuzz_dir/ubsan_ignorelist.txt"
  flags+=" -D_GLIBCXX_ASSERTIONS"
  # Configured again only when the tree is new or was set up with other flags.
  if ! grep -qs '^COMET_FUZZ:BOOL=ON$' "$build_root/CMakeCache.txt" ||
    ! grep -qsxF "CMAKE_CXX_FLAGS:STRING=$flags" "$build_root/CMakeCache.txt"; then
    echo "run.sh: configuring the clang tree in $build_root"
    if ! cmake -S "$root" -B "$build_root" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE= \
      -DCMAKE_CXX_FLAGS="$flags" -DCOMET_FUZZ=ON -DBUILD_TESTING=ON -DCOMET_SANITIZE=OFF \
      -DCOMET_WERROR=OFF >"$build_root/configure.log" 2>&1; then
      echo "run.sh: FAIL: configuring $build_root failed:" >&2
      tail -n 30 "$build_root/configure.log" >&2
      rm -f "$build_root/CMakeCache.txt"
      return 1
    fi
  fi
  local names=()
  for t in "${targets[@]}"; do names+=("${t}_fuzz"); done
  echo "run.sh: building ${names[*]} in $build_root"
  if ! cmake --build "$build_root" -j "$(nproc 2>/dev/null || echo 2)" --target "${names[@]}"; then
    echo "run.sh: FAIL: building the fuzz targets failed" >&2
    return 1
  fi
  exec 9>&-
}

# Runs one target for $seconds on a copy of its seed corpus; prints one summary line
# (and, on a finding, the reproducer and the report). Returns 1 on a finding.
run_target() {
  local name=$1
  local bin=$build_root/tests/fuzz/${name}_fuzz
  local seeds=$fuzz_dir/corpus/$name
  if [ ! -x "$bin" ]; then
    echo "fuzz $name: FAIL: $bin is not built (run tests/fuzz/run.sh --build-only; in CTest the fuzz.build test builds it)"
    return 1
  fi
  if [ ! -d "$seeds" ]; then
    echo "fuzz $name: FAIL: no seed corpus at $seeds"
    return 1
  fi
  local work artifacts
  work=$(mktemp -d "${TMPDIR:-/tmp}/comet-fuzz-$name.XXXXXX") || return 1
  mkdir -p "$work/corpus"
  cp -R "$seeds/." "$work/corpus/"
  artifacts=$artifacts_root/$name
  mkdir -p "$artifacts"
  local args=(-max_len="${max_len[$name]}" -timeout=10 -rss_limit_mb=2048
    -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts/")
  [ -f "$fuzz_dir/$name.dict" ] && args+=(-dict="$fuzz_dir/$name.dict")
  local start end status
  # Straight to the terminal (stderr): the summary below is printed when the run ends.
  echo "fuzz $name: fuzzing for $seconds s (log: $work/log)" >&2
  start=$(date +%s)
  (cd "$work" && "$bin" "${args[@]}" "${extra[@]}" "$work/corpus" >"$work/log" 2>&1)
  status=$?
  end=$(date +%s)
  local execs units repro
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  units=$(find "$work/corpus" -type f | wc -l)
  repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$work/log" | tail -n 1)
  if [ $status -eq 0 ] && [ -z "$repro" ]; then
    echo "fuzz $name: ${execs:-?} executions in $((end - start)) s, 0 findings" \
      "(corpus $(find "$seeds" -type f | wc -l) seeds -> $units units)"
    if [ $keep -eq 1 ]; then echo "fuzz $name: kept $work (corpus/ and log)"; else rm -rf "$work"; fi
    return 0
  fi
  local kind="libFuzzer exit status $status"
  if grep -q 'ERROR: libFuzzer: timeout' "$work/log"; then
    kind="timeout (an input ran over 10 s)"
  elif grep -q 'ERROR: libFuzzer: out-of-memory' "$work/log"; then
    kind="out of memory (over 2048 MB)"
  elif grep -q 'ERROR: LeakSanitizer' "$work/log"; then
    kind="memory leak"
  elif grep -q 'fuzz invariant failed' "$work/log"; then
    kind="invariant failed"
  elif grep -q 'runtime error:' "$work/log"; then
    kind="undefined behaviour"
  elif grep -q 'ERROR: AddressSanitizer' "$work/log"; then
    kind="AddressSanitizer: $(sed -n 's/.*ERROR: AddressSanitizer: \([a-z-]*\).*/\1/p' "$work/log" | head -n 1)"
  elif grep -q 'ERROR: libFuzzer: deadly signal' "$work/log"; then
    kind="crash (deadly signal)"
  fi
  echo "fuzz $name: FAILED: $kind after ${execs:-?} executions in $((end - start)) s"
  if [ -n "$repro" ]; then
    echo "fuzz $name: reproducer: $repro"
    echo "fuzz $name: replay it with: $bin $repro"
  fi
  echo "fuzz $name: log: $work/log (last 60 lines follow)"
  tail -n 60 "$work/log" | sed "s/^/  | /"
  return 1
}

if [ $build -eq 1 ]; then
  build_targets || exit 2
fi
[ $run -eq 1 ] || exit 0

results=$(mktemp -d "${TMPDIR:-/tmp}/comet-fuzz-results.XXXXXX") || exit 2
trap 'rm -rf "$results"' EXIT
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  (
    out=$(run_target "$t")
    echo $? >"$results/$t"
    printf '%s\n' "$out"
  ) &
done
wait
failed=0
for t in "${targets[@]}"; do
  [ "$(cat "$results/$t" 2>/dev/null)" = 0 ] || failed=1
done
exit $failed
