// OpenMP-backed parallel_for. libgomp is the runtime Debian's oneDNN links, so setting the
// OpenMP thread count sets oneDNN's too. Built without OpenMP (KILN_WITH_OPENMP=OFF, e.g. the
// clang-19 fuzzing build), everything runs serially on the calling thread.
#include "runtime/parallel.h"

#if KILN_HAVE_OPENMP
#include <omp.h>
#endif

#include "runtime/errors.h"

namespace kiln {

#if KILN_HAVE_OPENMP

namespace {
int g_threads = 0;  // 0: OpenMP's default
}

void set_num_threads(int n) {
  if (n < 1) fail<InvalidArgument>("set_num_threads", "thread count must be >= 1, got ", n);
  g_threads = n;
  omp_set_num_threads(n);
}

int get_num_threads() {
  if (g_threads == 0) g_threads = omp_get_max_threads();
  return g_threads;
}

bool in_parallel_region() { return omp_in_parallel() != 0; }

KILN_CALLS_GENERATED_CODE void detail::parallel_run(int64_t n, int64_t grain, void (*body)(void*, int64_t, int64_t),
                                                    void* ctx) {
  int64_t max_chunks = (n + grain - 1) / grain;
  int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), max_chunks));
#pragma omp parallel num_threads(threads)
  {
    int64_t t = omp_get_thread_num();
    int64_t nt = omp_get_num_threads();
    int64_t chunk = (n + nt - 1) / nt;
    int64_t b = t * chunk;
    int64_t e = std::min(n, b + chunk);
    if (b < e) body(ctx, b, e);
  }
}

#else

// The thread count is still validated so that callers see the same errors in both builds.
void set_num_threads(int n) {
  if (n < 1) fail<InvalidArgument>("set_num_threads", "thread count must be >= 1, got ", n);
}

int get_num_threads() { return 1; }

bool in_parallel_region() { return false; }

KILN_CALLS_GENERATED_CODE void detail::parallel_run(int64_t n, int64_t grain, void (*body)(void*, int64_t, int64_t),
                                                    void* ctx) {
  body(ctx, 0, n);
}

#endif

}  // namespace kiln
