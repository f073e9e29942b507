// parallel_for over the OpenMP runtime that oneDNN also uses, so the two never oversubscribe.
// Without OpenMP (the KILN_WITH_OPENMP=OFF build) it runs everything serially.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace kiln {

/// Sets the number of threads Kiln and oneDNN use (both run on the one OpenMP runtime).
/// Throws InvalidArgument for n < 1. Without OpenMP it only validates n.
void set_num_threads(int n);
/// The number of threads parallel work uses (always 1 without OpenMP).
int get_num_threads();
/// True inside a parallel region (nested parallel_for then runs serially).
bool in_parallel_region();

namespace detail {
void parallel_run(int64_t n, int64_t grain, void (*body)(void*, int64_t, int64_t), void* ctx);

/// For functions that call code generated at run time through a pointer: clang's
/// -fsanitize=function checks such a call by reading a type signature stored just before the
/// callee, which generated code does not have (the read faults when the code starts a page).
#if defined(__clang__)
#define KILN_CALLS_GENERATED_CODE __attribute__((no_sanitize("function")))
#else
#define KILN_CALLS_GENERATED_CODE
#endif
}  // namespace detail

/// Calls `f(begin, end)` on disjoint chunks covering [0, n). Chunks are at least `grain`
/// elements; small ranges run inline on the calling thread. `f` must not throw.
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  if (n <= grain || in_parallel_region() || get_num_threads() == 1) {
    f(int64_t{0}, n);
    return;
  }
  detail::parallel_run(
      n, grain, [](void* c, int64_t b, int64_t e) { (*static_cast<std::remove_reference_t<F>*>(c))(b, e); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

}  // namespace kiln
