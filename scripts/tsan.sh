#!/usr/bin/env bash
# ThreadSanitizer run of the concurrency tests (Catch2 tag [threads]): builds build/tsan with
# g++ -fsanitize=thread and runs the [threads] cases of test_compiler (traced functions) and
# test_nn (eager ops, variables, fit while predicting, checkpoint writes). OpenMP is pinned to
# one thread: GCC's libgomp is not instrumented, so its own synchronization would be reported.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
binaries=(test_compiler test_nn)
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
mkdir -p build
cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DKILN_SANITIZE=thread -DKILN_BUILD_BENCH=OFF >/dev/null
ninja -C build/tsan -j "$jobs" "${binaries[@]}"
export OMP_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
for t in "${binaries[@]}"; do
  echo "== ThreadSanitizer: $t [threads]"
  "build/tsan/tests/$t" "[threads]"
done
