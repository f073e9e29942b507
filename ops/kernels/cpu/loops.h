// Broadcasting loops for elementwise kernels: collapse contiguous dims, then run an inner
// loop over the last dim with per-operand element strides (0 for a broadcast operand), spread
// over threads for large outputs.
#pragma once

#include <array>
#include <cstdint>

#include "runtime/parallel.h"
#include "runtime/tensor.h"

namespace kiln::cpu {

/// Elements below which an elementwise op stays on the calling thread.
inline constexpr int64_t kParallelGrain = 1 << 15;

/// Iteration plan for an output of `out` shape and N operands (output first).
template <size_t N>
struct BroadcastPlan {
  int rank = 0;                                      // after collapsing
  std::array<int64_t, 16> dims{};                    // collapsed dims
  std::array<std::array<int64_t, 16>, N> strides{};  // element strides per operand per dim
  int64_t total = 0;
};

/// Builds a plan: operand k of shape `shapes[k]` broadcasts to `out`. Throws Unimplemented naming
/// `op` when more than 16 axes remain after merging contiguous ones.
template <size_t N>
BroadcastPlan<N> make_plan(std::string_view op, const Shape& out, const std::array<const Shape*, N>& shapes) {
  BroadcastPlan<N> p;
  p.total = out.num_elements();
  const int64_t r = out.rank();
  // full-rank strides
  SmallVector<int64_t, 8> d(static_cast<size_t>(r));
  SmallVector<std::array<int64_t, N>, 8> st(static_cast<size_t>(r));
  for (int64_t i = 0; i < r; ++i) d[i] = out.dim(i);
  for (size_t k = 0; k < N; ++k) {
    const Shape& s = *shapes[k];
    int64_t off = r - s.rank();
    int64_t acc = 1;
    for (int64_t i = r - 1; i >= 0; --i) {
      int64_t sd = i >= off ? s.dim(i - off) : 1;
      st[i][k] = (sd == 1 && d[i] != 1) ? 0 : acc;
      acc *= sd;
    }
  }
  // drop size-1 dims, then merge dim i into i+1 when every operand is contiguous across them
  SmallVector<int64_t, 8> cd;
  SmallVector<std::array<int64_t, N>, 8> cs;
  for (int64_t i = 0; i < r; ++i) {
    if (d[i] == 1) continue;
    if (!cd.empty()) {
      bool merge = true;
      for (size_t k = 0; k < N; ++k) merge &= (cs.back()[k] == st[i][k] * d[i]);
      if (merge) {
        cd.back() *= d[i];
        cs.back() = st[i];
        continue;
      }
    }
    cd.push_back(d[i]);
    cs.push_back(st[i]);
  }
  if (cd.empty()) {  // scalar output
    cd.push_back(1);
    std::array<int64_t, N> one{};
    for (auto& v : one) v = 1;
    cs.push_back(one);
  }
  if (cd.size() > 16)
    fail<Unimplemented>(
        op, "shapes whose broadcast needs more than 16 non-contiguous axes are not supported: ", out.to_list_string());
  p.rank = static_cast<int>(cd.size());
  for (int i = 0; i < p.rank; ++i) {
    p.dims[i] = cd[i];
    for (size_t k = 0; k < N; ++k) p.strides[k][i] = cs[i][k];
  }
  return p;
}

/// Runs `inner(n, ptrs, strides)` over rows of the innermost dim. `base[k]` is operand k's first
/// element (as char*), `esize[k]` its element size. Rows are split across threads when large.
template <size_t N, class Inner>
void run_plan(const BroadcastPlan<N>& p, const std::array<char*, N>& base, const std::array<int64_t, N>& esize,
              Inner&& inner) {
  const int last = p.rank - 1;
  const int64_t n = p.dims[last];
  const int64_t rows = p.total / (n ? n : 1);
  std::array<int64_t, N> in_st;
  for (size_t k = 0; k < N; ++k) in_st[k] = p.strides[k][last];
  if (p.total == 0) return;
  if (rows == 1) {
    // a single row: split it directly
    parallel_for(n, kParallelGrain, [&](int64_t b, int64_t e) {
      std::array<char*, N> ptr;
      for (size_t k = 0; k < N; ++k) ptr[k] = base[k] + b * in_st[k] * esize[k];
      inner(e - b, ptr, in_st);
    });
    return;
  }
  int64_t grain_rows = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(n, 1));
  parallel_for(rows, grain_rows, [&](int64_t rb, int64_t re) {
    std::array<int64_t, 16> idx{};
    int64_t rem = rb;
    for (int i = last - 1; i >= 0; --i) {
      idx[i] = rem % p.dims[i];
      rem /= p.dims[i];
    }
    for (int64_t row = rb; row < re; ++row) {
      std::array<char*, N> ptr;
      for (size_t k = 0; k < N; ++k) {
        int64_t off = 0;
        for (int i = 0; i < last; ++i) off += idx[i] * p.strides[k][i];
        ptr[k] = base[k] + off * esize[k];
      }
      inner(n, ptr, in_st);
      for (int i = last - 1; i >= 0; --i) {
        if (++idx[i] < p.dims[i]) break;
        idx[i] = 0;
      }
    }
  });
}

}  // namespace kiln::cpu
