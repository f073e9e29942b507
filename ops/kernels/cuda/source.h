// CUDA C source for the eager GPU kernels, generated from ops/scalar_fn.def: one device functor
// per line of the list (with the CPU functors' semantics: wrapping integers, NaN-propagating
// max/min, floor division), and kernels instantiated per op and dtype. No GPU is needed to
// generate or to compile this source, so tests check every combination with NVRTC anywhere.
#pragma once

#include <string>

#include "ops/op_def.h"
#include "runtime/dtype.h"

namespace kiln::ops::cuda {

/// What every kernel below needs in front of it in a program: storage types, traits and the
/// functors. A program is gpu_prelude() followed by one or more kernels.
std::string gpu_prelude();

/// Which elementwise ops run on the GPU for an input dtype (complex and string dtypes do not).
bool gpu_elementwise_supported(OpId op, DType in);

/// The dtype elementwise `op` on `in` computes in, as the CPU kernels do: integer true
/// division in float or double, the 16-bit floats in float, the rest in their own type.
DType gpu_compute_dtype(OpId op, DType in);

/// The kernel `extern "C" __global__ void <name>(...)` for the unary op `op` from `in` to `out`:
/// (const In* a, Out* o, long long n).
std::string unary_kernel_source(OpId op, DType in, DType out, const std::string& name);

/// The binary op's kernel with broadcasting: (const In* a, const In* b, Out* o,
/// long long n, Broadcast shape, int* error). Integer floor division and mod by zero and signed
/// integer powers with negative exponents set *error (1 and 2) instead of computing.
std::string binary_kernel_source(OpId op, DType in, DType out, const std::string& name);

/// The cast kernel (const In* a, Out* o, long long n) with the CPU cast's rules
/// (floats to integers truncate and saturate, NaN to 0).
std::string cast_kernel_source(DType in, DType out, const std::string& name);

/// Whether reduce_sum/mean/prod/max/min (integers and floats) or reduce_any/all (bool) of
/// `in` have a GPU kernel.
bool gpu_reduce_supported(OpId op, DType in);

/// The reduction kernel (const In* x, Out* o, long long outputs, Reduce r): one thread block per
/// output element, a tree in shared memory over at most 256 threads (a power of two), with the
/// CPU kernels' accumulator types (wrapping integer sums, float for 16-bit floats, wide
/// integer means), NaN propagation for max/min and an empty mean being NaN (0 for integers).
/// With `partial`, the first kernel of a split reduction (few outputs of many elements):
/// (const In* x, unsigned char* partials, long long outputs, Reduce r, long long splits, long long
/// chunk), block e * splits + c combining elements [c * chunk, (c + 1) * chunk) of output e into
/// accumulator ((A*)partials)[e * splits + c], unfinished.
std::string reduce_kernel_source(OpId op, DType in, const std::string& name, bool partial = false);

/// The second kernel of a split reduction: (const unsigned char* partials, Out* o, long long
/// outputs, long long splits, long long n) combines each output's `splits` accumulators in
/// order and finishes them (a mean divides by the n elements).
std::string reduce_join_kernel_source(OpId op, DType in, const std::string& name);

/// A reduction of [outer, reduced, inner] over `reduced`, with the inner axis contiguous
/// (bias gradients: a sum over the batch): (const In* x, Out* o, unsigned char* partials,
/// long long outer, long long reduced, long long inner, long long chunks, long long rows).
/// A block of 256 threads takes 32 adjacent columns (coalesced reads) and `rows` rows of one
/// chunk, 8 threads a column; with one chunk it finishes the outputs, otherwise it writes
/// accumulator ((A*)partials)[(chunk * outer + o) * inner + col], which the join kernel
/// (const unsigned char* partials, Out* o, long long outputs, long long chunks, long long n)
/// combines in chunk order, a thread per output.
std::string reduce_columns_kernel_source(OpId op, DType in, const std::string& name);
std::string reduce_columns_join_kernel_source(OpId op, DType in, const std::string& name);

/// A reduction's pieces as C, for kernels that reduce their own way (the CUDA backend's
/// single-block programs): the accumulator type `acc`, its first value `init`, `merge` (an
/// expression of the accumulator `a` and the loaded value `b`), `finish` (of the accumulator
/// `a` and the element count `n`, the output's compute type), `load` (reads element `x[off]` as
/// the accumulator type) and the output storage type `out_type`. Throws Internal for what
/// gpu_reduce_supported rejects.
struct ReduceParts {
  std::string acc, init, merge, finish, load, out_type;
};
ReduceParts reduce_parts(OpId op, DType in);

/// The kernel `kiln_copy_many(CopyList l)`: block row y copies l.bytes[y] bytes from l.src[y] to
/// l.dst[y] (device addresses), 8 bytes a thread where all three allow it; at most
/// kMaxCopies copies a launch.
std::string copy_many_kernel_source();
constexpr int kMaxCopies = 32;

/// A batched matmul kernel for dtypes cuBLAS does not cover (integers, 16-bit
/// floats): (const T* a, const T* b, T* c, MatmulShape shape); accumulates as the CPU does.
std::string matmul_kernel_source(DType dtype, const std::string& name);

/// The maximum rank a broadcast kernel takes after collapsing axes.
inline constexpr int kMaxGpuRank = 8;

/// The host side of the prelude's `Reduce`, the layout argument of reduce_kernel_source's
/// kernels: output elements index the kept axes (`out_dims`, with the input strides
/// `out_strides`), each combines `count` elements over the reduced axes (`red_dims`,
/// `red_strides`). Axes are listed outermost first; unused entries are ignored.
struct ReduceLayout {
  int rank_out = 0, rank_red = 0;
  long long out_dims[kMaxGpuRank] = {}, out_strides[kMaxGpuRank] = {}, red_dims[kMaxGpuRank] = {},
            red_strides[kMaxGpuRank] = {}, count = 1;
};

/// The device-side type a tensor of `d` is stored as in the prelude ("float", "kiln_half",
/// "unsigned char", ...). Throws Unimplemented for complex and string dtypes.
std::string gpu_type_name(DType d);

/// The type a value of `d` computes in on the device: `d`'s own, float for the 16-bit floats.
std::string gpu_compute_type_name(DType d);

/// The prelude functor computing elementwise `op` ("AddFn", "ExpFn"), or empty when `op` is
/// not in ops/scalar_fn.def. Called as `AddFn()(a, b)` on values of the op's compute dtype.
std::string gpu_functor(OpId op);

/// A C expression converting `v` (a value of `in`'s compute type) to `out`'s compute type with
/// the CPU cast's rules (floats to integers truncate and saturate, NaN to 0; anything to bool
/// compares with zero). The cast kernels use it.
std::string gpu_cast_expr(DType in, DType out, const std::string& v);

}  // namespace kiln::ops::cuda
