// The CUDA driver API as a table of functions loaded from libcuda.so.1 at run time, for the
// parts of Kiln that launch kernels (ops/kernels/cuda). Only built with KILN_WITH_CUDA; the
// toolkit's cuda.h supplies the types.
#pragma once

#include <cuda.h>

#include <initializer_list>
#include <string>
#include <string_view>

namespace kiln::cuda {

#define KILN_CUDA_STR2(x) #x
#define KILN_CUDA_STR(x) KILN_CUDA_STR2(x)
// The driver functions Kiln uses. cuda.h maps some names to versioned symbols (cuMemAlloc ->
// cuMemAlloc_v2); the table's members and the looked-up symbols follow the same mapping.
// clang-format off
#define KILN_CUDA_DRIVER_FUNCTIONS(X) \
  X(cuInit) X(cuDriverGetVersion) X(cuDeviceGetCount) X(cuDeviceGet) \
  X(cuDeviceGetAttribute) X(cuDeviceGetName) X(cuDevicePrimaryCtxRetain) X(cuCtxSetCurrent) \
  X(cuCtxGetCurrent) X(cuStreamCreate) X(cuStreamSynchronize) X(cuStreamBeginCapture) \
  X(cuStreamEndCapture) X(cuStreamIsCapturing) X(cuGraphInstantiate) X(cuGraphLaunch) \
  X(cuGraphExecDestroy) X(cuGraphDestroy) X(cuMemAlloc) X(cuMemFree) \
  X(cuMemGetInfo) X(cuMemcpyHtoDAsync) X(cuMemcpyDtoHAsync) X(cuMemcpyDtoDAsync) \
  X(cuMemsetD8Async) X(cuModuleLoadData) X(cuModuleUnload) X(cuModuleGetFunction) \
  X(cuLaunchKernel) X(cuGetErrorName) X(cuGetErrorString) X(cuEventCreate) X(cuEventRecord) \
  X(cuEventSynchronize) X(cuEventElapsedTime) X(cuEventDestroy)
// clang-format on

/// Resolves member `name` of the function table `t` (a member per function and a std::string
/// `error`) from the dlopen()ed library `lib`, unless an earlier one failed; the first missing
/// function becomes t->error. For the libraries loaded like the driver (NVRTC, cuBLAS, cuBLASLt).
#define KILN_CUDA_RESOLVE(name)                                                       \
  if (t->error.empty()) {                                                             \
    t->name = reinterpret_cast<decltype(t->name)>(dlsym(lib, KILN_CUDA_STR(name)));   \
    if (!t->name) t->error = std::string("the library lacks ") + KILN_CUDA_STR(name); \
  }

/// The loaded driver functions.
struct DriverApi {
#define KILN_CUDA_MEMBER(name) decltype(&::name) name = nullptr;
  KILN_CUDA_DRIVER_FUNCTIONS(KILN_CUDA_MEMBER)
#undef KILN_CUDA_MEMBER
};

/// The driver, loaded and initialized on first use. Throws InvalidArgument ("no GPU: ...")
/// when there is none.
const DriverApi& driver();

/// Throws the error for a failed driver call: ResourceExhausted for out-of-memory, Internal
/// otherwise, as "[who] <call> failed: CUDA_ERROR_... (description)".
void check(CUresult result, std::string_view who, const char* call);

/// dlopen()s the first library of `names` that loads (also looking in the toolkit's library
/// folder this build was configured with); nullptr with `error` set when none does.
void* open_library(std::initializer_list<const char*> names, std::string& error);

/// GPU `index`'s compute capability as major * 10 + minor (90 on Hopper).
int compute_capability(int index);

}  // namespace kiln::cuda
