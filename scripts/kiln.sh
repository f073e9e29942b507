#!/usr/bin/env bash
# The README's quick start in one script. `scripts/kiln.sh tour` installs what is missing, builds
# and runs the walkthrough tour; `scripts/kiln.sh test` does the same set-up and runs the test
# suite twice: a release build, and an AddressSanitizer + UndefinedBehaviorSanitizer build.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ cmake ninja-build ccache pkg-config libdnnl-dev catch2 libspdlog-dev nlohmann-json3-dev zlib1g-dev)

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

jobs=$(nproc)
# ccache (used when installed) hits across clones in other folders: paths are hashed relative to
# the repository root, and the working directory is left out of the hash
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true

configure_build() {  # dir, extra cmake args...
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; exit 1; }
  cmake --build "$dir" -j "$jobs"
}

cmd=${1:-tour}
mkdir -p build
case "$cmd" in
  tour)
    install_missing
    configure_build build/release -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_TESTS=OFF
    for ex in tensors variables autodiff training_loop functions; do
      echo "==================== walkthrough: $ex ===================="
      if [ "$ex" = functions ]; then "build/release/examples/$ex" --time; else "build/release/examples/$ex"; fi
    done
    echo "==================== kiln bench ===================="
    build/release/tools/kiln bench
    ;;
  test)
    install_missing
    configure_build build/release -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_BENCH=OFF
    echo "== release tests"
    ctest --test-dir build/release --output-on-failure -j "$jobs"
    # -O1: sanitizers need no more, and the build fits CI's two cores
    configure_build build/asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DKILN_BUILD_BENCH=OFF \
      -DKILN_SANITIZE=address,undefined
    echo "== AddressSanitizer + UndefinedBehaviorSanitizer tests"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --test-dir build/asan --output-on-failure -j "$jobs"
    ;;
  *)
    echo "usage: scripts/kiln.sh [tour|test]" >&2
    exit 2
    ;;
esac
