// The public op functions. Each builds attributes and calls ops::apply, so the same call works
// eagerly, under a gradient tape and under a trace. Every function throws InvalidArgument naming
// the op and the offending values for bad input.
#pragma once

#include <complex>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/tensor.h"

namespace kiln {

// ---------------------------------------------------------------------------------------------
// Creation

/// A nested initializer list of C++ scalars: `{{1, 2}, {3, 4}}`. Integers infer int32 (int64
/// when a value does not fit), floating values float32, bools bool, complex values complex128,
/// strings (byte strings, UTF-8 for text) string, as in TensorFlow. Mixed ints and floats infer
/// float32; bools mixed with numbers, and strings mixed with anything else, are an error.
class NestedList {
 public:
  enum class Kind : uint8_t { List, Bool, Int, Float, Complex, String };
  template <class T>
  requires std::is_same_v<T, bool> NestedList(T v) : kind_(Kind::Bool), i_(v) {}  // NOLINT
  template <class T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) NestedList(T v)
      : kind_(Kind::Int), i_(static_cast<int64_t>(v)), u64_(std::is_unsigned_v<T> && sizeof(T) == 8) {}  // NOLINT
  template <class T>
  requires std::is_floating_point_v<T> NestedList(T v) : kind_(Kind::Float), f_(static_cast<double>(v)) {}  // NOLINT
  template <class T>
  NestedList(std::complex<T> v) : kind_(Kind::Complex), c_(v.real(), v.imag()) {}  // NOLINT
  NestedList(const char* s) : kind_(Kind::String), s_(s) {}                        // NOLINT
  NestedList(std::string s) : kind_(Kind::String), s_(std::move(s)) {}             // NOLINT
  NestedList(std::string_view s) : kind_(Kind::String), s_(s) {}                   // NOLINT
  NestedList(std::initializer_list<NestedList> items) : kind_(Kind::List), items_(items) {}
  /// A list of the given items (for building nested lists at run time).
  static NestedList list(std::vector<NestedList> items) {
    NestedList l{};
    l.items_ = std::move(items);
    return l;
  }

  Kind kind() const { return kind_; }
  const std::vector<NestedList>& items() const { return items_; }
  int64_t as_int() const { return i_; }
  double as_float() const { return kind_ == Kind::Float ? f_ : static_cast<double>(i_); }
  std::complex<double> as_complex() const { return kind_ == Kind::Complex ? c_ : std::complex<double>(as_float()); }
  bool is_u64() const { return u64_; }
  const std::string& as_string() const { return s_; }

 private:
  Kind kind_;
  int64_t i_ = 0;
  double f_ = 0;
  std::complex<double> c_;
  bool u64_ = false;
  std::string s_;
  std::vector<NestedList> items_;
};

/// A tensor from nested lists, e.g. `constant({{1, 2}, {3, 4}})` (int32, shape (2, 2)). With
/// `dtype`, values convert to it. Non-rectangular lists throw InvalidArgument.
Tensor constant(const NestedList& values, std::optional<DType> dtype = std::nullopt);
/// A tensor from a flat vector in row-major order and a shape; dtype follows T. Throws
/// InvalidArgument if the sizes disagree.
template <class T>
Tensor constant(const std::vector<T>& values, const Shape& shape) {
  Tensor t = Tensor::empty(shape, dtype_v<T>);
  if (static_cast<int64_t>(values.size()) != t.num_elements())
    fail<InvalidArgument>("constant", "got ", values.size(), " values for shape ", shape.to_string(), " (",
                          t.num_elements(), " elements)");
  std::copy(values.begin(), values.end(), static_cast<T*>(t.mutable_raw_data()));
  return t;
}
/// A scalar of T's dtype.
template <class T>
Tensor scalar(T value) {
  Tensor t = Tensor::empty(Shape{}, dtype_v<T>);
  *static_cast<T*>(t.mutable_raw_data()) = value;
  return t;
}
/// A scalar of `dtype` holding `value`; throws InvalidArgument if the value does not convert
/// exactly (2.5 to int32, 300 to uint8, a complex value to a real type).
Tensor scalar_of(std::complex<double> value, DType dtype, std::string_view op = "constant");
Tensor scalar_of(int64_t value, DType dtype, std::string_view op = "constant");

Tensor zeros(const Shape& shape, DType dtype = float32);
Tensor ones(const Shape& shape, DType dtype = float32);
Tensor zeros_like(const Tensor& x);
Tensor ones_like(const Tensor& x);
/// A tensor of `shape` whose elements all equal the scalar tensor `value` (and its dtype).
Tensor fill(const Shape& shape, const Tensor& value);
/// The identity matrix (num_rows x num_cols, default square).
Tensor eye(int64_t num_rows, DType dtype = float32);
Tensor eye(int64_t num_rows, int64_t num_cols, DType dtype);

/// A number for range(): an integer or a floating value.
struct Number {
  double value;
  bool is_float;
  template <class T>
  requires std::is_arithmetic_v<T> Number(T v)
      : value(static_cast<double>(v)), is_float(std::is_floating_point_v<T>) {}  // NOLINT
};
/// [start, limit) in steps of delta; int32 for integer arguments, float32 if any is floating
/// (as TensorFlow), or `dtype`. delta 0 throws InvalidArgument.
Tensor range(Number start, Number limit, Number delta = 1, std::optional<DType> dtype = std::nullopt);
Tensor range(Number limit);
/// `num` evenly spaced values from start to stop inclusive.
Tensor linspace(double start, double stop, int64_t num, DType dtype = float32);

namespace random {
/// Sets the global seed that unseeded random ops draw from (resets their counter).
void set_seed(uint64_t seed);
/// The (seed, offset) of the next stream of the global generator: what an unseeded op draws.
std::pair<uint64_t, uint64_t> next_global_stream();
/// Normal samples. With a seed the result depends only on (shape, seed, dtype, mean, stddev);
/// without one it draws from the global generator (a new sample on each call — also each call
/// of a traced function: there the op's seed and offset attributes are -1, "draw when run").
Tensor normal(const Shape& shape, std::optional<uint64_t> seed = std::nullopt, double mean = 0.0, double stddev = 1.0,
              DType dtype = float32);
/// Uniform samples in [minval, maxval); for integer dtypes `maxval` must exceed `minval`.
Tensor uniform(const Shape& shape, std::optional<uint64_t> seed = std::nullopt, double minval = 0.0,
               double maxval = 1.0, DType dtype = float32);
}  // namespace random

// ---------------------------------------------------------------------------------------------
// Elementwise math (NumPy broadcasting; both operands must have the same dtype)

Tensor add(const Tensor& x, const Tensor& y);
Tensor subtract(const Tensor& x, const Tensor& y);
Tensor multiply(const Tensor& x, const Tensor& y);
/// True division: integer inputs give float64 (float32 for 8/16-bit), as in TensorFlow.
Tensor divide(const Tensor& x, const Tensor& y);
/// Floor division; integer division by zero throws InvalidArgument.
Tensor floordiv(const Tensor& x, const Tensor& y);
/// Floor modulo (the result has the divisor's sign); integer modulo by zero throws.
Tensor mod(const Tensor& x, const Tensor& y);
/// x^y; integers to negative integer powers throw InvalidArgument.
Tensor pow(const Tensor& x, const Tensor& y);
Tensor maximum(const Tensor& x, const Tensor& y);
Tensor minimum(const Tensor& x, const Tensor& y);
Tensor equal(const Tensor& x, const Tensor& y);
Tensor not_equal(const Tensor& x, const Tensor& y);
Tensor less(const Tensor& x, const Tensor& y);
Tensor less_equal(const Tensor& x, const Tensor& y);
Tensor greater(const Tensor& x, const Tensor& y);
Tensor greater_equal(const Tensor& x, const Tensor& y);
Tensor logical_and(const Tensor& x, const Tensor& y);
Tensor logical_or(const Tensor& x, const Tensor& y);
Tensor logical_xor(const Tensor& x, const Tensor& y);
Tensor logical_not(const Tensor& x);

Tensor negative(const Tensor& x);
/// |x|; for complex inputs the result is real (complex64 -> float32).
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor square(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tan(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor softplus(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor floor(const Tensor& x);
Tensor ceil(const Tensor& x);
/// Rounds half to even, as TensorFlow.
Tensor round(const Tensor& x);
/// min(max(x, lo), hi); lo and hi broadcast against x.
Tensor clip(const Tensor& x, const Tensor& lo, const Tensor& hi);
Tensor clip(const Tensor& x, double lo, double hi);
/// Elementwise choice: cond ? x : y, all three broadcast together; cond must be bool.
Tensor where(const Tensor& cond, const Tensor& x, const Tensor& y);
/// Converts between numeric dtypes: floats to integers truncate toward zero (saturating at the
/// integer's range, NaN to 0), complex to real keeps the real part, numbers to bool test != 0.
Tensor cast(const Tensor& x, DType dtype);

// ---------------------------------------------------------------------------------------------
// Reductions

/// The axes to reduce: all of them (default), one, or a list (negative axes count from the end).
struct Axes {
  std::optional<std::vector<int64_t>> axes;
  Axes() = default;
  Axes(int64_t a) : axes(std::vector<int64_t>{a}) {}  // NOLINT
  Axes(int a) : axes(std::vector<int64_t>{a}) {}      // NOLINT
  Axes(std::initializer_list<int64_t> a) : axes(std::vector<int64_t>(a)) {}
  Axes(std::vector<int64_t> a) : axes(std::move(a)) {}  // NOLINT
};

Tensor reduce_sum(const Tensor& x, Axes axes = {}, bool keepdims = false);
/// Mean; integer inputs give the integer (truncated) mean, as in TensorFlow.
Tensor reduce_mean(const Tensor& x, Axes axes = {}, bool keepdims = false);
Tensor reduce_max(const Tensor& x, Axes axes = {}, bool keepdims = false);
Tensor reduce_min(const Tensor& x, Axes axes = {}, bool keepdims = false);
Tensor reduce_prod(const Tensor& x, Axes axes = {}, bool keepdims = false);
Tensor reduce_any(const Tensor& x, Axes axes = {}, bool keepdims = false);
Tensor reduce_all(const Tensor& x, Axes axes = {}, bool keepdims = false);
/// Index of the largest value along `axis` (first one on ties); int64 unless `output_type`.
Tensor argmax(const Tensor& x, int64_t axis = 0, DType output_type = int64);
Tensor argmin(const Tensor& x, int64_t axis = 0, DType output_type = int64);
/// exp(x) / sum(exp(x)) along `axis`, computed stably (a composite of primitives).
Tensor softmax(const Tensor& x, int64_t axis = -1);
Tensor log_softmax(const Tensor& x, int64_t axis = -1);

// ---------------------------------------------------------------------------------------------
// Linear algebra

/// Matrix product over the last two axes with broadcast batch axes. Ranks must be >= 2.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);

// ---------------------------------------------------------------------------------------------
// Convolution and pooling (TensorFlow's tf.nn ops on NHWC images: [batch, height, width, channels])
//
// Window sizes, strides and dilations are given for the two spatial axes: one value for both,
// {height, width}, or TensorFlow's four-value form {1, height, width, 1}; each must be positive.
// `padding` is "SAME" (out = ceil(in / stride), the input padded so that every window fits, any
// odd element of padding after) or "VALID" (out = (in - window) / stride + 1, windows inside the
// input; a window larger than the input throws). Every function throws InvalidArgument naming
// the op and the offending values for another rank, mismatched channels or dtypes, a dtype it
// does not accept, a bad window, stride or padding, or sizes that overflow int64.

/// 2-D convolution (cross-correlation, as tf.nn.conv2d) of `input` [batch, height, width,
/// in_channels] with `filter` [filter_height, filter_width, in_channels, out_channels], giving
/// [batch, out_height, out_width, out_channels]. A dilation d spreads the filter's taps d apart.
/// Float dtypes only, the same for both operands; float32 runs on oneDNN when Kiln has it, the
/// other float types on Kiln's own loops (16-bit floats sum in float32).
Tensor conv2d(const Tensor& input, const Tensor& filter, const std::vector<int64_t>& strides = {1},
              const std::string& padding = "VALID", const std::vector<int64_t>& dilations = {1});
/// The gradient of conv2d with respect to its input, for an input of `input_shape` (its batch and
/// channels may be -1: taken from out_backprop and filter; height and width must be known):
/// `out_backprop` has conv2d's output shape. tf.nn.conv2d_backprop_input.
Tensor conv2d_backprop_input(const Shape& input_shape, const Tensor& filter, const Tensor& out_backprop,
                             const std::vector<int64_t>& strides = {1}, const std::string& padding = "VALID",
                             const std::vector<int64_t>& dilations = {1});
/// The gradient of conv2d with respect to its filter, of `filter_shape` (its channels may be -1:
/// taken from input and out_backprop). tf.nn.conv2d_backprop_filter.
Tensor conv2d_backprop_filter(const Tensor& input, const Shape& filter_shape, const Tensor& out_backprop,
                              const std::vector<int64_t>& strides = {1}, const std::string& padding = "VALID",
                              const std::vector<int64_t>& dilations = {1});
/// The maximum over each `ksize` window (tf.nn.max_pool2d); padding never wins (SAME windows
/// only look at the input) and NaN propagates. Integer and float dtypes.
Tensor max_pool2d(const Tensor& input, const std::vector<int64_t>& ksize, const std::vector<int64_t>& strides,
                  const std::string& padding = "VALID");
/// The mean over each `ksize` window's elements inside the input (SAME padding is not counted,
/// as tf.nn.avg_pool2d). Float dtypes.
Tensor avg_pool2d(const Tensor& input, const std::vector<int64_t>& ksize, const std::vector<int64_t>& strides,
                  const std::string& padding = "VALID");
/// The gradient of max_pool2d: `grad` (max_pool2d's output shape) added at each window's
/// maximum (the first one on ties) of `input`, zero elsewhere. Float dtypes.
Tensor max_pool2d_grad(const Tensor& input, const Tensor& grad, const std::vector<int64_t>& ksize,
                       const std::vector<int64_t>& strides, const std::string& padding = "VALID");
/// The gradient of max_pool2d_grad with respect to its grad: for each window, `grad` (of
/// input's shape) at the window's maximum of `input`. Float dtypes.
Tensor max_pool2d_grad_grad(const Tensor& input, const Tensor& grad, const std::vector<int64_t>& ksize,
                            const std::vector<int64_t>& strides, const std::string& padding = "VALID");
/// The gradient of avg_pool2d for an input of `input_shape` (batch and channels may be -1:
/// taken from grad): each window's gradient spread evenly over its elements. Float dtypes.
Tensor avg_pool2d_grad(const Shape& input_shape, const Tensor& grad, const std::vector<int64_t>& ksize,
                       const std::vector<int64_t>& strides, const std::string& padding = "VALID");

// ---------------------------------------------------------------------------------------------
// Shapes and data movement

/// Same elements, new shape; one dim may be -1 (inferred). Shares storage (no copy).
Tensor reshape(const Tensor& x, const Shape& shape);
/// Permutes axes; an empty `perm` reverses them.
Tensor transpose(const Tensor& x, std::vector<int64_t> perm = {});
Tensor expand_dims(const Tensor& x, int64_t axis);
/// Removes size-1 axes (all of them, or the listed ones, which must have size 1).
Tensor squeeze(const Tensor& x, Axes axes = {});
Tensor concat(const std::vector<Tensor>& xs, int64_t axis);
Tensor stack(const std::vector<Tensor>& xs, int64_t axis = 0);
/// Splits into `num` equal parts along `axis` (the size must divide evenly).
std::vector<Tensor> split(const Tensor& x, int64_t num, int64_t axis = 0);
/// Splits into parts of the given sizes (one may be -1) along `axis`.
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis);
Tensor tile(const Tensor& x, std::vector<int64_t> multiples);
Tensor broadcast_to(const Tensor& x, const Shape& shape);
/// Shape-polymorphic forms for graphs whose dims are known only at run time (gradient rules use
/// them): broadcast `x` to `like`'s shape, reshape `x` (same element count) to `like`'s shape,
/// and sum `x` over the axes along which `like` was broadcast to x's shape (the inverse of
/// broadcast_like). Only `like`'s shape is read. InvalidArgument for incompatible shapes.
Tensor broadcast_like(const Tensor& x, const Tensor& like);
Tensor reshape_like(const Tensor& x, const Tensor& like);
Tensor sum_to_like(const Tensor& x, const Tensor& like);
/// Each element's index along `axis` (negative counts from the end) of `like`'s shape, as int32
/// or int64: range(like.shape[axis]) broadcast along that axis (XLA's broadcasted iota). Only
/// `like`'s shape is read, so a graph with unknown dims numbers the elements of the shape it runs
/// with. InvalidArgument for a scalar `like`, an axis out of range, another dtype, or an axis too
/// long for int32. No gradient.
Tensor range_like(const Tensor& like, int64_t axis = 0, DType dtype = int64);
/// Pads each axis with (before, after) elements of `constant_value`.
Tensor pad(const Tensor& x, const std::vector<std::pair<int64_t, int64_t>>& paddings, double constant_value = 0);
/// Gathers slices of `params` along `axis` at integer `indices`; an index out of
/// [0, dim) throws InvalidArgument naming it (never reads out of bounds).
Tensor gather(const Tensor& params, const Tensor& indices, int64_t axis = 0, int64_t batch_dims = 0);
/// Sums the slices of `data` that share a segment id (TensorFlow's unsorted_segment_sum):
/// output[s, ...] is the sum of data[i, ...] over the positions i of `segment_ids` holding s,
/// zero for a segment no id names. `segment_ids` (int32 or int64) has a prefix of data's shape;
/// the output has shape [num_segments] + data.shape[segment_ids.rank:] and data's (numeric)
/// dtype. Each sum adds its slices in position order, so results are deterministic. An id
/// outside [0, num_segments) throws InvalidArgument naming it and its position (nothing is
/// written out of bounds); bool data, a negative num_segments or a non-prefix shape throw too.
Tensor unsorted_segment_sum(const Tensor& data, const Tensor& segment_ids, int64_t num_segments);
/// One-hot vectors of length `depth` for integer `indices` (new axis at `axis`); indices outside
/// [0, depth) give all-off rows, as in TensorFlow.
Tensor one_hot(const Tensor& indices, int64_t depth, double on_value = 1, double off_value = 0, int64_t axis = -1,
               DType dtype = float32);
Tensor reverse(const Tensor& x, Axes axes);
/// The shape as a 1-D tensor (int32 unless `out_type` is int64).
Tensor shape_of(const Tensor& x, DType out_type = int32);
/// The same value, as a new tensor that gradient tapes treat as a constant (no gradient flows
/// back to x through it).
Tensor stop_gradient(const Tensor& x);
/// The rank as an int32 scalar tensor.
Tensor rank(const Tensor& x);
/// The number of elements as an int32 scalar tensor (int64 with `out_type`).
Tensor size(const Tensor& x, DType out_type = int32);

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// I/O and checks: ops with an effect, so traced functions run them on every call (in order)

/// Prints `message` followed by each tensor's values (NumPy layout), separated by spaces, and a
/// newline to standard output (TensorFlow's tf.print). Unlike C++ output in a traced function,
/// which happens once at trace time, this prints on every call of the function.
void print(std::string message, std::span<const Tensor> tensors = {});
inline void print(std::string message, std::initializer_list<Tensor> tensors) {
  print(std::move(message), std::span<const Tensor>(tensors.begin(), tensors.size()));
}
inline void print(const Tensor& x) { print("", {x}); }

namespace debugging {
/// Throws InvalidArgument "[assert] <message> (condition false at index [i])" unless every
/// element of the bool tensor `condition` is true. Inside a traced function it is an op that
/// runs on every call (and is kept even though it has no outputs).
void assert_true(const Tensor& condition, std::string message);
}  // namespace debugging

// Operators. A C++ scalar takes the tensor's dtype (as in TensorFlow); two tensors of
// different dtypes are an InvalidArgument error that names both.

namespace detail {
template <class T>
Tensor scalar_for(const Tensor& like, T v, std::string_view op) {
  if constexpr (is_complex_v<T>)
    return scalar_of(std::complex<double>(v), like.dtype(), op);
  else if constexpr (std::is_integral_v<T>)
    return scalar_of(static_cast<int64_t>(v), like.dtype(), op);
  else
    return scalar_of(std::complex<double>(static_cast<double>(v)), like.dtype(), op);
}
template <class T>
concept Scalar = std::is_arithmetic_v<T> || is_complex_v<T>;
}  // namespace detail

#define KILN_BINARY_OPERATOR(OP, FN)                                               \
  inline Tensor operator OP(const Tensor& x, const Tensor& y) { return FN(x, y); } \
  template <detail::Scalar T>                                                      \
  Tensor operator OP(const Tensor& x, T y) {                                       \
    return FN(x, detail::scalar_for(x, y, #FN));                                   \
  }                                                                                \
  template <detail::Scalar T>                                                      \
  Tensor operator OP(T x, const Tensor& y) {                                       \
    return FN(detail::scalar_for(y, x, #FN), y);                                   \
  }
KILN_BINARY_OPERATOR(+, add)
KILN_BINARY_OPERATOR(-, subtract)
KILN_BINARY_OPERATOR(*, multiply)
KILN_BINARY_OPERATOR(/, divide)
KILN_BINARY_OPERATOR(%, mod)
KILN_BINARY_OPERATOR(==, equal)
KILN_BINARY_OPERATOR(!=, not_equal)
KILN_BINARY_OPERATOR(<, less)
KILN_BINARY_OPERATOR(<=, less_equal)
KILN_BINARY_OPERATOR(>, greater)
KILN_BINARY_OPERATOR(>=, greater_equal)
KILN_BINARY_OPERATOR(&, logical_and)
KILN_BINARY_OPERATOR(|, logical_or)
KILN_BINARY_OPERATOR(^, logical_xor)
#undef KILN_BINARY_OPERATOR
inline Tensor operator-(const Tensor& x) { return negative(x); }
inline Tensor operator!(const Tensor& x) { return logical_not(x); }

}  // namespace kiln
