// The eager GPU kernels: NVRTC-compiled elementwise, cast and integer matmul kernels from
// ops/kernels/cuda/source.h, cached per device, and float matmuls through cuBLAS (TF32 off).
// NVRTC and cuBLAS load at run time (dlopen), like the driver.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ops/defs/shape_common.h"
#include "ops/kernels/cuda/source.h"
#include "ops/op_def.h"

namespace kiln::ops::cuda {

/// The GPU kernel of `op`, or nullptr when the op has none (dispatch then runs the CPU kernel
/// and copies, and logs it once). A kernel throws Unimplemented, before launching anything,
/// for dtypes or layouts it does not cover (complex, broadcast batch axes of a matmul), and
/// dispatch falls back the same way. Null in builds without CUDA.
KernelFn kernel_for(OpId op);

/// Whether NVRTC loads on this machine (no GPU needed); `why` says why not.
bool nvrtc_available(std::string& why);

/// C = op(A) op(B) for `batches` row-major matrices on GPU `device`, all pointers device memory
/// of `dtype`: A is m x k (k x m when `ta`), B k x n (n x k when `tb`), C m x n; batch i of A
/// starts at element i * a_stride (0: one matrix for every batch), likewise B, and C's are
/// dense. cuBLAS for float32/float64 (no TF32), cuBLASLt for 16-bit floats (accumulating in
/// float32 as the CPU; planned once per shape), the generated kernel for integers. Queued on the device's stream.
/// Throws Unimplemented for bool, complex and string dtypes, what the launch throws otherwise; `who` names the caller.
void matmul_on_device(std::string_view who, int device, DType dtype, const void* a, const void* b, void* c, int64_t m,
                      int64_t n, int64_t k, int64_t batches, bool ta, bool tb, int64_t a_stride, int64_t b_stride);

/// The workspace cuBLAS and cuBLASLt use on GPU `device` (allocated once, with the device's
/// cuBLAS handle: nothing is allocated while a CUDA graph is captured); `*bytes` its size. The
/// libraries run on the device's one stream, which orders their uses of it.
void* blas_workspace(int device, size_t* bytes);

/// How reduce_on_device spreads a reduction over thread blocks:
///  - Rows: a block per output (up to 256 threads over its elements);
///  - Split: fewer than kReduceSplitMaxOutputs outputs of at least kReduceSplitMinCount
///    elements (a sum of a whole large tensor): `splits` blocks per output of `chunk` elements
///    each (up to 1024 blocks, at least 8192 elements a block), whose accumulators a second
///    kernel combines in order;
///  - Columns: a reduction over the axis just outside a contiguous inner axis of at least 32
///    outputs (`outer` x `reduced` x `inner`: bias gradients, a sum over the batch): blocks of
///    32 adjacent columns, the rows in `splits` chunks of `chunk` rows, combined in order.
/// `scratch_bytes` is the scratch the partials need (16 bytes each), 0 for Rows.
struct ReducePlan {
  enum class Kind : uint8_t { Rows, Split, Columns };
  Kind kind = Kind::Rows;
  long long splits = 1, chunk = 0, outer = 1, inner = 1;
  size_t scratch_bytes = 0;
};
inline constexpr long long kReduceSplitMaxOutputs = 264, kReduceSplitMinCount = 32768;
ReducePlan reduce_plan(long long outputs, const ReduceLayout& layout);

/// Queues reduction `op` of `x` (device memory of dtype `in`, laid out as `layout` says) into
/// `outputs` elements at `o` on GPU `device`'s stream, with the reduction kernels of source.h,
/// spread over blocks as `plan` (reduce_plan of the same outputs and layout) says, its partials
/// in `scratch`, which must hold the plan's scratch_bytes. Throws Internal naming `who` for what
/// has no kernel.
void reduce_on_device(std::string_view who, int device, OpId op, DType in, const void* x, void* o, long long outputs,
                      const ReduceLayout& layout, const ReducePlan& plan, void* scratch);

/// One device-to-device copy of copy_many_on_device.
struct DeviceCopy {
  void* dst = nullptr;
  const void* src = nullptr;
  size_t bytes = 0;
};
/// Queues `copies` (device memory of GPU `device`, not overlapping) on the device's stream as
/// one kernel launch per 32 copies instead of a copy call each; empty copies are skipped.
void copy_many_on_device(std::string_view who, int device, std::span<const DeviceCopy> copies);

/// compile_cubin through the code cache (runtime/code_cache.h, kind "cuda"): in memory, and on
/// disk under KILN_CACHE_DIR, keyed by the source, `arch`, the NVRTC library and its version,
/// the compile options and the generator's version. `*from` says where the cubin came from
/// ("memory", "disk", "compiled").
std::string cached_cubin(const std::string& source, const std::string& name, int arch, std::string* from = nullptr);

/// NVRTC compilations run by this process (the cache misses of cached_cubin and direct
/// compile_cubin calls).
uint64_t nvrtc_compiles();

/// dst[...] = src[...] through `plan` (element strides; elements of `esize` bytes), `src` and
/// `dst` the device addresses of the first elements on GPU `device`: one generated strided-copy
/// kernel, queued on the device's stream. Throws Unimplemented, before launching, for element
/// sizes or plans of more dims than the kernel covers (dispatch then runs the op on the CPU).
void copy_plan_on_device(const OpDef& def, int device, const CopyPlan& plan, int64_t esize, const void* src, void* dst);

/// Compiles CUDA C `source` with NVRTC to a cubin for compute capability `arch` (90 for
/// sm_90). Throws Internal with NVRTC's log when it does not compile, and InvalidArgument when
/// NVRTC is missing. Needs no GPU.
std::string compile_cubin(const std::string& source, const std::string& name, int arch);

}  // namespace kiln::ops::cuda
