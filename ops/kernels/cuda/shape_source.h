// CUDA C source for the eager GPU kernels of the shape, indexing, creation and random ops.
// Ops that only move elements (copies, fills, where, gather, one_hot) have one kernel per element
// size, not per dtype (as the CPU kernels of ops/defs/shape.cpp); the rest one per dtype. Like
// source.h, nothing here needs a GPU, so tests compile every kernel with NVRTC anywhere.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/dtype.h"

namespace kiln::ops::cuda {

/// The maximum rank of a strided copy (KilnCopy) after merging dims.
inline constexpr int kMaxCopyRank = 16;

/// The host side of the prelude's KilnCopy: d[sum idx_k * dst_k] = s[sum idx_k * src_k] over the
/// index space `dims` (element strides; negative: reversed, 0: broadcast source).
struct CopyLayout {
  int rank = 0;
  long long dims[kMaxCopyRank] = {}, src[kMaxCopyRank] = {}, dst[kMaxCopyRank] = {};
};

/// The host side of the prelude's KilnBroadcast3 (where): output dims with the strides of the
/// condition, x and y (0 on broadcast axes); rank 0 means every operand has the output's shape.
struct Broadcast3 {
  int rank = 0;
  long long dims[8] = {}, s0[8] = {}, s1[8] = {}, s2[8] = {};
};

/// The prelude's additions for these kernels: the 16-byte element type, the layout structs and
/// Philox4x32-10 (runtime/philox.h) on the device.
std::string gpu_shape_prelude();

/// Whether elements of `esize` bytes have movement kernels (1, 2, 4, 8, 16).
bool gpu_elem_size_supported(int64_t esize);

/// The strided copy (const E* s, E* d, long long n, KilnCopy c) of `esize`-byte elements.
std::string copy_kernel_source(int64_t esize, const std::string& name);
/// The fill (E* d, long long n, E v).
std::string fill_kernel_source(int64_t esize, const std::string& name);
/// The fill from device memory (const E* v, E* d, long long n): d[i] = *v.
std::string fill_from_kernel_source(int64_t esize, const std::string& name);
/// where (const bool* c, const E* x, const E* y, E* o, long long n, KilnBroadcast3 b).
std::string where_kernel_source(int64_t esize, const std::string& name);

/// Whether argmax/argmin have a GPU kernel for `in` (bool, integers, floats).
bool gpu_arg_supported(DType in);
/// argmax (`is_max`) or argmin of `in` to `out` (int32/int64): (const T* x, O* o, long long
/// outputs, long long red, long long inner), one thread block per output element (at most 256
/// threads, a power of two). The first index of the extreme wins; a NaN is the extreme (the
/// first NaN wins), as the CPU kernel.
std::string arg_kernel_source(bool is_max, DType in, DType out, const std::string& name);

/// The index check (const I* idx, long long count, long long n, unsigned long long* first):
/// *first becomes the smallest position whose index is outside [0, n) (atomicMin; the caller
/// sets it to all ones). `index` is int32, int64 or uint8.
std::string index_check_kernel_source(DType index, const std::string& name);
/// gather (const E* s, const I* idx, E* d, long long total, long long n, long long outer_per_batch,
/// long long per_batch, long long inner): out (B, O, I, inner) = params (B, O, n, inner) at
/// indices (B, I); bad indices are skipped (the check reports them).
std::string gather_kernel_source(int64_t esize, DType index, const std::string& name);

/// Whether unsorted_segment_sum has a GPU kernel for `data` (integers and floats).
bool gpu_segment_sum_supported(DType data);
/// The dtype unsorted_segment_sum accumulates `data` in on the GPU: uint32 for integers up to
/// 32 bits, uint64 for 64-bit integers (both wrap as the CPU's sums), float32 for the 16-bit
/// floats and float32, float64. Atomic adds of this type.
DType gpu_segment_acc_dtype(DType data);
/// The scatter-add (const T* x, const I* seg, A* acc, long long total, long long inner, long long
/// num_segments) into a zeroed accumulator of gpu_segment_acc_dtype; bad ids are skipped.
std::string segment_sum_kernel_source(DType data, DType index, const std::string& name);
/// The accumulator to output conversion (const A* acc, T* o, long long n), for data dtypes
/// whose accumulator is another type.
std::string segment_finish_kernel_source(DType data, const std::string& name);

/// one_hot (const I* idx, E* d, long long total, long long depth, long long inner, E on, E off).
std::string one_hot_kernel_source(int64_t esize, DType index, const std::string& name);

/// The kernels writing f(i) for element i, converted to `out` as the CPU's fill_indexed does.
enum class IotaKind {
  RangeLike,  // (T* o, long long n, long long len, long long inner): (i / inner) % len
  IntRange,   // (T* o, long long n, long long start, long long delta): start + i * delta
  Range,      // (T* o, long long n, double start, double delta, int fused): start + i * delta
  Linspace,   // (T* o, long long n, double start, double step, double stop, int fused)
  Eye,        // (T* o, long long n, long long cols): 1 on the diagonal
};
/// Whether `kind` has a GPU kernel for `out` (real dtypes and bool, as the op allows).
bool gpu_iota_supported(IotaKind kind, DType out);
std::string iota_kernel_source(IotaKind kind, DType out, const std::string& name);

/// random_uniform (`normal` false: S, U, F dtypes) or random_normal (F): (T* o, long long n,
/// unsigned long long seed, unsigned long long offset, double a, double b, int fused) with a, b
/// = minval, maxval or mean, stddev. Element pairs use Philox blocks as the CPU kernels do;
/// `fused` says whether the CPU build contracts `a + b * c` into a fused multiply-add.
bool gpu_random_supported(bool normal, DType out);
std::string random_kernel_source(bool normal, DType out, const std::string& name);

}  // namespace kiln::ops::cuda
