// Matmuls through cuBLASLt: D = alpha·op(A)op(B) + beta·C + bias in one library call, planned
// once (descriptors and the algorithms cuBLASLt's heuristics pick) and run many times. The CUDA
// backend's float32 matmul steps use it for the loops that only finished their result (a bias
// add, a residual add, a scale), and every float16/bfloat16 matmul runs on it (accumulating in
// float32, as the CPU does). cuBLASLt loads at run time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "runtime/dtype.h"

namespace kiln::ops::cuda {

/// What an LtMatmul computes, for `batches` row-major matrices of `dtype` (float32, float16 or
/// bfloat16; alpha, beta and the sums in float32): A is m x k (k x m when `ta`),
/// B k x n (n x k when `tb`), batch i of A at element i * a_stride (0: one matrix for every
/// batch), likewise B; C (read when beta != 0) and D are dense m x n per batch; the bias (when
/// `bias`) holds n elements added to every row, and only without batches.
struct LtMatmulShape {
  DType dtype = DType::Float32;
  int64_t m = 0, n = 0, k = 0, batches = 1;
  bool ta = false, tb = false;
  int64_t a_stride = 0, b_stride = 0;
  float alpha = 1, beta = 0;
  bool bias = false;
};

class LtMatmul {
 public:
  /// Plans `s` on GPU `device` (m, n, k and batches positive). Null, with `why` set, when
  /// cuBLASLt is missing or its heuristics offer no algorithm (the caller then keeps the
  /// epilogue as a kernel of its own, or runs its own matmul kernel).
  static std::unique_ptr<LtMatmul> plan(int device, const LtMatmulShape& s, std::string* why);
  ~LtMatmul();
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;

  /// Queues the matmul on the device's stream (a capture stream while capturing); `c` may be
  /// null when beta is 0, `bias` when there is none. Addresses need element alignment; when
  /// all are 16-byte aligned the faster algorithm runs. Thread-safe. Throws Internal naming `who`
  /// when cuBLASLt fails.
  void run(std::string_view who, const void* a, const void* b, const void* c, const void* bias, void* d) const;

 private:
  struct Impl;
  LtMatmul(int device, const LtMatmulShape& s);
  int device_;
  LtMatmulShape shape_;
  std::unique_ptr<Impl> impl_;
};

/// cuBLASLt plans made by this process (for tests and logs).
uint64_t lt_matmuls_planned();

}  // namespace kiln::ops::cuda
