#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) in build/fuzz with clang-19, without OpenMP and oneDNN
# (DESIGN.md §8), and runs each for SECONDS (default 60): `scripts/fuzz.sh [SECONDS] [TARGET...]`.
# Each target's corpus grows in build/fuzz/corpus/<target>, starting from the checked-in seeds
# in fuzz/corpus/<target> and the inputs that once found bugs in fuzz/regressions/<target>;
# crashes land in build/fuzz/artifacts/<target>/ and make the script fail. Installing clang-19
# and libfuzzer-19-dev is `scripts/kiln.sh fuzz`'s (and `scripts/kiln.sh test`'s) job.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(npy safetensors ir_parser checkpoint saved_model ops model_json)

export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
mkdir -p build
CC=clang-19 CXX=clang++-19 cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DKILN_SANITIZE=address,undefined -DKILN_BUILD_FUZZERS=ON \
  -DKILN_WITH_OPENMP=OFF -DKILN_WITH_ONEDNN=OFF -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_BENCH=OFF \
  >build/fuzz.configure.log 2>&1 || { cat build/fuzz.configure.log; exit 1; }
cmake --build build/fuzz -j "$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}")

export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p build/fuzz/logs
failed=()
printf '%-12s %8s %12s %10s  %s\n' target seconds executions exec/s result
for t in "${targets[@]}"; do
  corpus=build/fuzz/corpus/$t
  artifacts=build/fuzz/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  seeds=("fuzz/corpus/$t")
  [ -d "fuzz/regressions/$t" ] && seeds+=("fuzz/regressions/$t")
  log=build/fuzz/logs/$t.log
  rc=0
  "build/fuzz/fuzz/fuzz_$t" "$corpus" "${seeds[@]}" "${dict[@]}" -max_total_time="$seconds" -timeout=25 \
    -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  time=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="FAILED (rc $rc, see $log)"
    failed+=("$t")
  fi
  printf '%-12s %8s %12s %10s  %s\n' "$t" "${time:-?}" "${runs:-?}" "${speed:-?}" "$result"
done
if ((${#failed[@]})); then
  for t in "${failed[@]}"; do
    echo "== $t"
    grep -E 'ERROR|SUMMARY|invariant|Test unit written|uncaught|deadly' "build/fuzz/logs/$t.log" | head -20
  done
  exit 1
fi
