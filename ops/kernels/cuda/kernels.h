// The eager GPU kernels: NVRTC-compiled elementwise, cast and integer matmul kernels from
// ops/kernels/cuda/source.h, cached per device, and float matmuls through cuBLAS (TF32 off).
// NVRTC and cuBLAS load at run time (dlopen), like the driver.
#pragma once

#include <string>

#include "ops/op_def.h"

namespace kiln::ops::cuda {

/// The GPU kernel of `op`, or nullptr when the op has none (dispatch then runs the CPU kernel
/// and copies, and logs it once). A kernel throws Unimplemented, before launching anything,
/// for dtypes or layouts it does not cover (complex, broadcast batch axes of a matmul), and
/// dispatch falls back the same way. Null in builds without CUDA.
KernelFn kernel_for(OpId op);

/// Whether NVRTC loads on this machine (no GPU needed); `why` says why not.
bool nvrtc_available(std::string& why);

/// Compiles CUDA C `source` with NVRTC to a cubin for compute capability `arch` (90 for
/// sm_90). Throws Internal with NVRTC's log when it does not compile, and InvalidArgument when
/// NVRTC is missing. Needs no GPU.
std::string compile_cubin(const std::string& source, const std::string& name, int arch);

}  // namespace kiln::ops::cuda
