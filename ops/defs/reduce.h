// Shared by the reduction ops' definitions, their public functions and their GPU kernels.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace kiln::ops {

/// Normalizes reduction axes for a tensor of `rank`: negative axes count from the end. Returns
/// them sorted. Throws InvalidArgument naming `op` for an axis out of range or a repeated axis.
std::vector<int64_t> normalize_reduction_axes(std::string_view op, const std::vector<int64_t>& axes, int64_t rank);

}  // namespace kiln::ops
