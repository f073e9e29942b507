// A small timing harness for benchmarks: runs a callable in batches until enough time has passed
// and reports the median time per call over several batches (robust on a shared, noisy machine).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace kiln::bench {

/// Median nanoseconds per call of `f`, over `reps` batches of at least `min_batch_ns` each.
template <class F>
double time_ns(F&& f, int reps = 7, double min_batch_ns = 2e7) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < 3; ++i) f();  // warm caches and allocators
  int64_t iters = 1;
  while (true) {
    auto t0 = clock::now();
    for (int64_t i = 0; i < iters; ++i) f();
    double ns = std::chrono::duration<double, std::nano>(clock::now() - t0).count();
    if (ns >= min_batch_ns / 4 || iters >= (int64_t{1} << 30)) break;
    iters *= 2;
  }
  std::vector<double> per_call;
  for (int r = 0; r < reps; ++r) {
    auto t0 = clock::now();
    for (int64_t i = 0; i < iters; ++i) f();
    per_call.push_back(std::chrono::duration<double, std::nano>(clock::now() - t0).count() / iters);
  }
  std::nth_element(per_call.begin(), per_call.begin() + reps / 2, per_call.end());
  return per_call[reps / 2];
}

/// "123 ns", "4.56 us", "7.89 ms": a duration for benchmark tables.
inline std::string format_ns(double ns) {
  char b[32];
  if (ns < 1e3)
    std::snprintf(b, sizeof b, "%.0f ns", ns);
  else if (ns < 1e6)
    std::snprintf(b, sizeof b, "%.2f us", ns / 1e3);
  else
    std::snprintf(b, sizeof b, "%.2f ms", ns / 1e6);
  return std::string(b);
}

/// Keeps a value alive so the optimizer cannot drop the computation that made it.
template <class T>
void keep(const T& v) {
  asm volatile("" : : "g"(&v) : "memory");
}

}  // namespace kiln::bench
