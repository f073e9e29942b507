#!/usr/bin/env bash
# The README's quick start in one script. `scripts/kiln.sh tour` installs what is missing, builds
# and runs the walkthrough tour; `scripts/kiln.sh test` does the same set-up and runs the test
# suite twice, a release build and an AddressSanitizer + UndefinedBehaviorSanitizer build, then
# runs each fuzz target for KILN_FUZZ_SECONDS (default 20) seconds.
# `scripts/kiln.sh fuzz [SECONDS]` also installs clang-19 and libFuzzer and runs scripts/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ cmake ninja-build ccache pkg-config libdnnl-dev catch2 libspdlog-dev nlohmann-json3-dev zlib1g-dev llvm-19-dev libsleef-dev)

install_missing() {  # extra packages...
  local missing=()
  for p in "${packages[@]}" "$@"; do
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

# The handwritten digits (examples/digits): committed under examples/data; fetched again from
# Debian's python3-sklearn package (only that file is unpacked; no Python) when missing.
digits=examples/data/digits.csv.gz
digits_sha256=46abec6b12486ad9e51943373abcf22bbea1b5a51a1619b361570d8893f1464a
fetch_digits() {
  [ -f "$digits" ] && return
  echo "== fetching $digits from Debian's python3-sklearn"
  local tmp
  tmp=$(mktemp -d)
  chmod a+rwx "$tmp"  # apt-get download runs as the _apt user
  (cd "$tmp" && apt-get download python3-sklearn >/dev/null)
  dpkg-deb --fsys-tarfile "$tmp"/python3-sklearn_*.deb |
    tar -x -C "$tmp" ./usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
  echo "$digits_sha256  $tmp/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz" | sha256sum -c --quiet
  mkdir -p "$(dirname "$digits")"
  cp "$tmp/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz" "$digits"
  rm -rf "$tmp"
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
    fetch_digits
    configure_build build/release -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_TESTS=OFF
    for ex in tensors variables autodiff training_loop functions modules keras_training gpu; do
      echo "==================== walkthrough: $ex ===================="
      if [ "$ex" = functions ]; then "build/release/examples/$ex" --time; else "build/release/examples/$ex"; fi
    done
    echo "==================== a real-data example: digits ===================="
    build/release/examples/digits --time
    echo "==================== kiln bench ===================="
    build/release/tools/kiln bench
    echo "==================== kiln bench --gpu ===================="
    build/release/tools/kiln bench --gpu  # says why when there is no GPU
    ;;
  test)
    install_missing
    fetch_digits
    # tests on explicitly: a tour before leaves KILN_BUILD_TESTS=OFF in this tree's cache
    configure_build build/release -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_BENCH=OFF -DKILN_BUILD_TESTS=ON
    echo "== release tests"
    ctest --test-dir build/release --output-on-failure -j "$jobs"
    # -O1: sanitizers need no more, and the build fits CI's two cores
    configure_build build/asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DKILN_BUILD_BENCH=OFF \
      -DKILN_SANITIZE=address,undefined
    echo "== AddressSanitizer + UndefinedBehaviorSanitizer tests"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --test-dir build/asan --output-on-failure -j "$jobs"
    # a short run of every fuzz target (clang-19 + libFuzzer, build/fuzz: the fuzz binaries and
    # the libraries they link, nothing else); a crash, leak or sanitizer report fails the command
    echo "== fuzz targets: ${KILN_FUZZ_SECONDS:-20} s each"
    install_missing clang-19 libfuzzer-19-dev
    scripts/fuzz.sh "${KILN_FUZZ_SECONDS:-20}"
    ;;
  fuzz)
    install_missing clang-19 libfuzzer-19-dev
    exec scripts/fuzz.sh "${2:-60}"
    ;;
  fetch-digits)
    rm -f "$digits"
    fetch_digits
    ;;
  *)
    echo "usage: scripts/kiln.sh [tour|test|fuzz [SECONDS]|fetch-digits]" >&2
    exit 2
    ;;
esac
