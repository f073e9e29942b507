// Helpers shared by the data-movement ops (shape.cpp, index.cpp): storage-sharing views, a
// dtype-agnostic strided copy over element sizes, fills, and exact scalar conversion for attrs.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "ops/op_def.h"
#include "runtime/parallel.h"

namespace kiln::ops {

/// Bytes below which a copy stays on the calling thread.
inline constexpr int64_t kCopyGrainBytes = int64_t{1} << 16;

/// A 16-byte element (complex128) copied as raw bits.
struct alignas(8) Bytes16 {
  uint64_t lo, hi;
};

/// Calls `f(E{})` with an unsigned integer type of `size` bytes (Bytes16 for 16), so movement
/// kernels are instantiated per element size instead of per dtype.
template <class F>
decltype(auto) visit_elem_size(int64_t size, F&& f) {
  switch (size) {
    case 1:
      return f(uint8_t{});
    case 2:
      return f(uint16_t{});
    case 4:
      return f(uint32_t{});
    case 8:
      return f(uint64_t{});
    case 16:
      return f(Bytes16{});
    default:
      fail<Internal>("copy", "unsupported element size ", size);
  }
}

/// A new tensor of `shape` viewing `x`'s storage, `byte_offset` bytes past `x`'s first element.
/// The result has its own TensorImpl, so levels can attach their data to it.
Tensor make_view(const Tensor& x, const Shape& shape, size_t byte_offset = 0);

/// A strided copy dst[i] = src[i] over an index space, with per-dim element strides for both
/// sides (negative: reversed, 0: broadcast source). Built by make_copy_plan, which drops size-1
/// dims and merges dims that are contiguous on both sides.
struct CopyPlan {
  SmallVector<int64_t, 8> dims, src, dst;
  int64_t total = 0;  // elements
  int rank() const { return static_cast<int>(dims.size()); }
  /// True when the copy is one contiguous run on both sides (the output can be a view).
  bool contiguous() const { return total == 0 || dims.empty() || (dims.size() == 1 && src[0] == 1 && dst[0] == 1); }
};

CopyPlan make_copy_plan(std::span<const int64_t> dims, std::span<const int64_t> src_strides,
                        std::span<const int64_t> dst_strides);

/// Runs `plan` for elements of `esize` bytes; parallel for large copies. Batched 2-D transposes
/// (the source's unit-stride dim is the output's second-to-last) run in cache-sized tiles.
void run_copy(const CopyPlan& plan, int64_t esize, const char* src, char* dst);

/// memcpy split across threads when large; a no-op for n == 0.
void parallel_memcpy(char* dst, const char* src, int64_t n);

/// Fills `n` elements of `esize` bytes at `dst` with the bytes at `value`.
void fill_elements(char* dst, int64_t n, int64_t esize, const void* value);

/// Converts `v` to one element of `dtype` in `out` (16 bytes, zero-filled). Integer and bool
/// dtypes need an exact value (0.5 or 300 for uint8 throw InvalidArgument naming `op` and
/// `what`); floating dtypes round, but a finite value that overflows to infinity throws.
void scalar_to_bytes(std::string_view op, std::string_view what, double v, DType dtype, unsigned char out[16]);

/// A strided_slice's attributes resolved against an input shape (TensorFlow's
/// ValidateStridedSliceOp): for each input dim the first element, the step and the element
/// count of the slice, and the final shape after new axes are inserted and shrunk axes dropped.
/// Throws InvalidArgument naming `def` for a bad spec.
struct SliceSpec {
  SmallVector<int64_t, 8> begin, stride, size;
  Shape out;
};
SliceSpec make_slice_spec(const OpDef& def, const Attrs& attrs, const Shape& in);

/// Multiplies two non-negative dims, throwing InvalidArgument naming `op` on int64 overflow.
int64_t checked_mul(std::string_view op, int64_t a, int64_t b);
/// Adds two non-negative dims, throwing InvalidArgument naming `op` on int64 overflow.
int64_t checked_add(std::string_view op, int64_t a, int64_t b);

/// Product of dims [b, e) of a fully known shape.
inline int64_t dims_product(const Shape& s, int64_t b, int64_t e) {
  int64_t n = 1;
  for (int64_t i = b; i < e; ++i) n *= s.dim(static_cast<size_t>(i));
  return n;
}

}  // namespace kiln::ops
