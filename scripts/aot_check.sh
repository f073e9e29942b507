#!/usr/bin/env bash
# The out-of-tree ahead-of-time check (docs/aot.md; ctest aot_out_of_tree): installs a built Kiln
# into a temporary prefix, exports the example classifier, builds examples/aot_app against the
# installed package, runs it, and checks with ldd that it links nothing of Kiln, LLVM, oneDNN,
# spdlog or OpenMP. Everything it writes lives in one temporary directory, removed on exit.
#   usage: scripts/aot_check.sh BUILD_DIR   (a configured and built Kiln tree: kiln, aot_export)
#   environment: CMAKE (default: cmake), KEEP=1 keeps the temporary directory and prints it
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
cmake=${CMAKE:-cmake}
for exe in tools/kiln examples/aot_export; do
  if [[ ! -x "$build/$exe" ]]; then
    echo "aot_check: $build/$exe is missing (build the kiln and aot_export targets first)" >&2
    exit 1
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln_aot_check.XXXXXX")
cleanup() {
  if [[ "${KEEP:-0}" == 1 ]]; then
    echo "aot_check: kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs a command with its output in a log, printing the log only when it fails.
quiet() {
  local log="$tmp/step.log"
  if ! "$@" >"$log" 2>&1; then
    cat "$log"
    echo "aot_check: FAILED: $*" >&2
    return 1
  fi
}

echo "== export the classifier"
"$build/examples/aot_export" "$tmp/model"

echo "== install $build into a temporary prefix"
quiet "$cmake" --install "$build" --prefix "$tmp/prefix"
config=$(find "$tmp/prefix" -name kilnConfig.cmake -print -quit)
if [[ -z "$config" ]]; then
  echo "aot_check: the install has no kilnConfig.cmake" >&2
  exit 1
fi

echo "== configure and build examples/aot_app against $(dirname "$config")"
# the same C++ compiler as the Kiln build; Ninja when there is one
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
quiet "$cmake" -S "$src/examples/aot_app" -B "$tmp/app" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  ${cxx:+-DCMAKE_CXX_COMPILER="$cxx"} -Dkiln_DIR="$(dirname "$config")" -DMODEL_DIR="$tmp/model"
quiet "$cmake" --build "$tmp/app"

echo "== run aot_app"
start=$(date +%s%N)
"$tmp/app/aot_app" "$tmp/model"
end=$(date +%s%N)
echo "aot_app: $(stat -c %s "$tmp/app/aot_app") bytes (stripped: $(strip -o "$tmp/stripped" "$tmp/app/aot_app" && stat -c %s "$tmp/stripped")), whole run including the timing loops $(( (end - start) / 1000000 )) ms"

echo "== ldd aot_app"
ldd "$tmp/app/aot_app" | tee "$tmp/ldd.txt"
if grep -E 'libLLVM|libkiln|libdnnl|libspdlog|libfmt|libgomp|libiomp|libomp' "$tmp/ldd.txt"; then
  echo "aot_check: FAILED: aot_app links the libraries above" >&2
  exit 1
fi
echo "aot_check: passed"
