#!/usr/bin/env bash
# Configures and builds into a build directory.
#   scripts/build.sh release   -> build/          (optimised, for running)
#   scripts/build.sh asan      -> build-asan/     (ASan + UBSan, warnings as errors, for tests)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
jobs=$(nproc 2>/dev/null || echo 2)
case "$kind" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF) ;;
  asan) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DCOMET_SANITIZE=ON -DCOMET_WERROR=ON) ;;
  *) echo "usage: $0 [release|asan]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
