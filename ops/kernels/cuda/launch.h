// What the eager GPU kernel launchers share (kernels.cpp, kernels_shape.cpp): the compiled
// kernel cache, the grid-stride launch and small helpers. Only in builds with CUDA.
#pragma once

#if KILN_WITH_CUDA
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "ops/op_def.h"
#include "runtime/cuda/driver_api.h"

namespace kiln::ops::cuda {

/// The kernel `name` on GPU `device`, compiled from gpu_prelude() + `make_source()` on first
/// use and cached per device and name.
CUfunction get_kernel(int device, const std::string& name, const std::function<std::string()>& make_source);

/// Launches a grid-stride kernel over `n` elements on the device's stream (nothing for n == 0).
void launch(std::string_view who, int device, CUfunction fn, int64_t n, void** args);

/// Launches `blocks` blocks of `threads` threads on the device's stream.
void launch_blocks(std::string_view who, int device, CUfunction fn, unsigned blocks, unsigned threads, void** args);

/// The GPU kernels of the shape, indexing, creation and random ops (kernels_shape.cpp), or
/// nullptr.
KernelFn shape_kernel_for(OpId op);

/// "kiln_<kind>_<op>_<a>_<b>".
std::string kernel_name(std::string_view kind, std::string_view op, DType a, DType b);

/// The device address of `t`'s first element, for kernel arguments.
inline void* data_ptr(const Tensor& t) { return const_cast<void*>(t.device_data()); }

}  // namespace kiln::ops::cuda
#endif
