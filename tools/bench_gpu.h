// `kiln bench --gpu`: traced functions and eager code on GPU:0, timed the way the PyTorch and
// JAX reference (bench/gpu_reference.py) times the same workloads; bench/gpu_compare.py puts
// the two JSON files side by side (docs/gpu.md, "Benchmarks").
#pragma once

#include <string>
#include <vector>

namespace kiln::tools {

/// Runs the GPU benchmarks: power(x, 100) on a 10x10 float32 matrix, relu(x * a + b) * c on
/// 64M float32 against a device-to-device copy of the same bytes, and the MLP training step
/// at batch 64 and 4096, each traced and eager, after checking the GPU results against the
/// CPU. `args`: `--quick` (tiny sizes and few iterations, for the CUDA emulator), `--json
/// FILE` (every number as {name, impl, metric, value, unit}). Without a GPU it says why and
/// returns 0; a result that differs from the CPU's makes it return 1 (after timing).
int bench_gpu(const std::vector<std::string>& args);

}  // namespace kiln::tools
