#!/usr/bin/env bash
# The GPU checks (docs/gpu.md), in two steps because the GPU machine has the CUDA toolkit, CMake,
# Ninja and g++ but none of Kiln's other dependencies and no package registry:
#   scripts/gpu_check.sh prepare   on a Debian 12 machine with the CUDA toolkit (this one):
#                                  builds the GPU test binaries into .gpu/ with the shared
#                                  libraries they need that the GPU machine lacks (spdlog, fmt)
#   scripts/gpu_check.sh run       on the GPU machine, from the repository root with .gpu/
#                                  carried there: correctness first (every [.cuda] test), then
#                                  the GPU timings: `kiln bench --gpu`, bench/gpu_reference.py
#                                  (PyTorch and JAX) and bench/gpu_compare.py's table; logs and
#                                  JSON go to $OUT when set (the device tool)
#   scripts/gpu_check.sh check     on the GPU machine: the correctness tests alone
#   scripts/gpu_check.sh bench     on the GPU machine: the timings alone
# The binaries are built without LLVM and oneDNN, so nothing large travels (traced functions
# called on the CPU run on the interpreter there, on the GPU on the CUDA backend; the CPU results
# the GPU is compared with use Kiln's own matmul),
# and for x86-64-v3 (AVX2), since the GPU machine's processor may lack AVX-512.
set -euo pipefail
cd "$(dirname "$0")/.."

cmd=${1:-run}
# the test binaries with [.cuda] tests
tests="test_ops test_compiler test_conformance test_autodiff"
case "$cmd" in
prepare)
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WITH_LLVM=OFF -DKILN_WITH_ONEDNN=OFF \
    -DKILN_BUILD_BENCH=OFF -DKILN_WITH_CUDA=ON -DKILN_ARCH=x86-64-v3 >build-gpu.configure.log 2>&1 || { cat build-gpu.configure.log; exit 1; }
  grep -q "building the GPU runtime" build-gpu.configure.log || { echo "no CUDA toolkit found" >&2; exit 1; }
  cmake --build build-gpu -j "$(nproc)" --target $tests kiln
  rm -rf .gpu && mkdir -p .gpu/lib
  for t in $tests; do cp build-gpu/tests/$t .gpu/; done
  cp build-gpu/tools/kiln .gpu/
  # no symbol tables: .gpu stays under 50 MB (the dynamic symbols stay)
  (cd .gpu && strip $tests kiln)
  # the libraries a plain Ubuntu/Debian machine with the CUDA toolkit does not have
  for lib in $(cd .gpu && ldd $tests kiln | awk '/=>/ {print $3}' | sort -u); do
    case "$(basename "$lib")" in
    libspdlog* | libfmt* | libgomp*) cp -L "$lib" .gpu/lib/ ;;
    esac
  done

  du -sh .gpu
  echo "carry .gpu to the GPU machine and run: scripts/gpu_check.sh run"
  ;;
run | check | bench)
  [ -x .gpu/test_ops ] && [ -x .gpu/kiln ] || { echo ".gpu/ is missing: run 'scripts/gpu_check.sh prepare' first and carry .gpu" >&2; exit 1; }
  export LD_LIBRARY_PATH="$PWD/.gpu/lib:${LD_LIBRARY_PATH:-}"
  out=${OUT:-.gpu}
  log=$out/gpu_check.log
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$log" || true
  status=0
  if [ "$cmd" != bench ]; then
    echo "== correctness: [.cuda] tests" | tee -a "$log"
    for t in $tests; do
      echo "-- $t" | tee -a "$log"
      # a hung kernel must not take the whole lease: 120 s a binary, 300 s for the conformance
      # run (about 900 NVRTC compiles of ~0.1 s on a cold cache)
      limit=120
      [ "$t" = test_conformance ] && limit=300
      timeout $limit .gpu/$t "[.cuda]" 2>&1 | tail -300 | tee -a "$log" || status=1
    done
  fi
  [ "$cmd" = check ] && exit $status
  # the timings (docs/gpu.md, Benchmarks): about 2 minutes; a wrong Kiln result fails the check,
  # a missing or failing PyTorch/JAX only leaves its columns empty
  echo "== benchmarks: kiln bench --gpu" | tee -a "$log"
  timeout 180 .gpu/kiln bench --gpu --json "$out/kiln_gpu.json" 2>&1 | tee -a "$log" || status=1
  echo "== benchmarks: PyTorch and JAX (bench/gpu_reference.py)" | tee -a "$log"
  timeout 330 python3 bench/gpu_reference.py --json "$out/reference_gpu.json" 2>&1 | tee -a "$log" || true
  echo "== benchmarks: side by side (bench/gpu_compare.py)" | tee -a "$log"
  python3 bench/gpu_compare.py "$out/kiln_gpu.json" "$out/reference_gpu.json" 2>&1 | tee -a "$log" || true
  exit $status
  ;;
*)
  echo "usage: scripts/gpu_check.sh prepare|run|check|bench" >&2
  exit 2
  ;;
esac
