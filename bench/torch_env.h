// Which BLAS LibTorch runs on and how many threads both libraries use, for the peer benchmarks
// (bench_cpu_backend, bench_fit): OpenBLAS's core type, its description, one thread count for all.
#pragma once

#include <ATen/Version.h>
#include <dlfcn.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "kiln/kiln.h"

namespace kiln::bench {

// LibTorch from Debian calls BLAS through libblas.so.3 (an alternatives link); when that is
// OpenBLAS, its pthreads pool is separate from OpenMP and torch::set_num_threads may not reach it.
using OpenblasSetThreads = void (*)(int);
using OpenblasGetConfig = char* (*)();

/// Which BLAS libblas.so.3 is and which kernels it loaded, and what LibTorch was built with.
inline std::string blas_description() {
  std::string s;
  std::error_code ec;
  auto real = std::filesystem::canonical("/usr/lib/x86_64-linux-gnu/libblas.so.3", ec);
  s += "libblas.so.3 -> " + (ec ? std::string("(missing)") : real.string());
  if (auto get_config = reinterpret_cast<OpenblasGetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    std::string cfg = get_config();
    s += "; loaded: " + cfg;
    if (cfg.find("Prescott") != std::string::npos)
      s += "\n  (OpenBLAS's generic SSE3 kernels, kept by --openblas-default)";
    else if (const char* core = std::getenv("OPENBLAS_CORETYPE"))
      s += std::string("\n  (OPENBLAS_CORETYPE=") + core +
           ": OpenBLAS 0.3.21 runs its SSE3 kernels on CPUs it does not know)";
  }
  std::string cfg = at::show_config();
  for (const char* key : {"BLAS_INFO=", "LAPACK_INFO="}) {
    size_t p = cfg.find(key);
    if (p != std::string::npos) s += "; torch " + cfg.substr(p, cfg.find_first_of(",\n", p) - p);
  }
  return s;
}

/// OpenBLAS 0.3.21 (Debian 12) does not recognise recent Xeons and falls back to its SSE3
/// "Prescott" kernels, several times slower than what the CPU can run; OPENBLAS_CORETYPE is read
/// when the library loads, so the benchmark sets it and starts itself again. Returns only when
/// nothing needed doing (or exec failed).
inline void fix_openblas_core(char** argv) {
  auto get_config = reinterpret_cast<OpenblasGetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  if (!get_config || std::getenv("OPENBLAS_CORETYPE") || !std::strstr(get_config(), "Prescott")) return;
  const char* core = __builtin_cpu_supports("avx512f") ? "SkylakeX"
                     : __builtin_cpu_supports("avx2")  ? "Haswell"
                                                       : nullptr;
  if (!core) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  std::fflush(stdout);
  execv("/proc/self/exe", argv);
}

/// Sets the thread count of Kiln, oneDNN, LibTorch and OpenBLAS's own pool.
inline void set_threads(int n) {
  kiln::set_num_threads(n);  // Kiln and oneDNN (one OpenMP runtime)
  torch::set_num_threads(n);
  if (auto f = reinterpret_cast<OpenblasSetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
}

}  // namespace kiln::bench
