#!/usr/bin/env bash
# Checks that every C++ file (*.cpp, *.h) under sidecar/, bridge/ and tests/ matches the
# repository's .clang-format. CTest runs it as style.clang_format; it works by hand too.
#
#   scripts/check-format.sh          list the files that differ (exit 1), or exit 0
#   scripts/check-format.sh --fix    reformat them in place (clang-format -i)
#
# The files are the git-tracked ones when the source tree is a git checkout, else all
# matching files found on disk. CLANG_FORMAT=/path/to/clang-format picks another binary
# (the files were formatted with Debian's clang-format 14; other versions may disagree).
set -uo pipefail

fix=0
case "${1:-}" in
  "") ;;
  --fix) fix=1 ;;
  -h | --help)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: $0 [--fix]" >&2
    exit 2
    ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$root" || exit 2

clang_format=${CLANG_FORMAT:-clang-format}
if ! command -v "$clang_format" >/dev/null 2>&1; then
  echo "check-format: FAIL: '$clang_format' not found, so the C++ formatting cannot be checked." >&2
  echo "check-format: install it: scripts/install-deps.sh (or: apt-get install clang-format)" >&2
  exit 1
fi
if [ ! -f .clang-format ]; then
  echo "check-format: FAIL: $root/.clang-format is missing" >&2
  exit 1
fi

# The file list, relative to the root.
files=()
toplevel=$(git rev-parse --show-toplevel 2>/dev/null || true)
if [ -n "$toplevel" ] && [ "$(cd "$toplevel" && pwd -P)" = "$root" ]; then
  source_of_list="git ls-files"
  while IFS= read -r -d '' f; do
    # A tracked file deleted in the work tree (mid-refactor) has nothing to check.
    [ -f "$f" ] && files+=("$f")
  done < <(git ls-files -z -- 'sidecar/*.cpp' 'sidecar/*.h' 'bridge/*.cpp' 'bridge/*.h' \
    'tests/*.cpp' 'tests/*.h')
else
  source_of_list="find (not a git checkout)"
  while IFS= read -r -d '' f; do
    files+=("${f#./}")
  done < <(find ./sidecar ./bridge ./tests \( -name node_modules -o -name artifacts \) -prune \
    -o -type f \( -name '*.cpp' -o -name '*.h' \) -print0 2>/dev/null | sort -z)
fi
if [ ${#files[@]} -eq 0 ]; then
  echo "check-format: FAIL: no C++ files found under sidecar/, bridge/, tests/ of $root" >&2
  exit 1
fi

if [ $fix -eq 1 ]; then
  "$clang_format" --style=file -i -- "${files[@]}" || exit 1
  echo "check-format: formatted ${#files[@]} files with $("$clang_format" --version)"
  exit 0
fi

# One clang-format run over all files (a run per file costs ~40 ms each).
if out=$("$clang_format" --style=file --dry-run --Werror -- "${files[@]}" 2>&1 >/dev/null); then
  echo "check-format: ${#files[@]} files (from $source_of_list) match .clang-format"
  exit 0
fi

# The files that differ are those named by a -Wclang-format-violations report.
differ=()
while IFS= read -r f; do
  [ -n "$f" ] && differ+=("$f")
done < <(sed -n 's/^\(.*\):[0-9]*:[0-9]*: [a-z]*: code should be clang-formatted \[-Wclang-format-violations\]$/\1/p' \
  <<<"$out" | sort -u)
if [ ${#differ[@]} -gt 0 ]; then
  echo "check-format: FAIL: ${#differ[@]} of ${#files[@]} files differ from .clang-format" \
    "($("$clang_format" --version)):"
  printf '  %s\n' "${differ[@]}"
  echo
  echo "Fix them with:"
  printf '  cd %q && %q -i' "$root" "$clang_format"
  printf ' %q' "${differ[@]}"
  echo
  echo "(or: scripts/check-format.sh --fix)"
  exit 1
fi
# Not a formatting difference (unreadable file, bad .clang-format...): show what it said.
echo "check-format: FAIL: clang-format failed (its distinct messages, at most 20 lines):" >&2
awk '!seen[$0]++' <<<"$out" | head -n 20 >&2
exit 1
