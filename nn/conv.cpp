// Conv2D, MaxPooling2D and AveragePooling2D: configuration checks, deferred builds, output shapes
// for summary(), and calls to the conv2d and pooling ops (whose gradient rules the tape uses).
#include "nn/conv.h"

#include <cctype>
#include <nlohmann/json.hpp>

#include "nn/serialization.h"

namespace kiln::nn {
namespace {

// "valid"/"same" in either case, as the op spells it.
std::string op_padding(const char* layer, const std::string& padding) {
  std::string up;
  for (char c : padding) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (up != "VALID" && up != "SAME")
    fail<InvalidArgument>(layer, "padding must be \"valid\" or \"same\", got \"", padding, "\"");
  return up;
}

nlohmann::json size_json(Size2 s) { return nlohmann::json::array({s.height, s.width}); }

std::string lower(const std::string& s) {
  std::string out;
  for (char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void check_positive(const char* layer, const char* what, Size2 s) {
  if (s.height < 1 || s.width < 1)
    fail<InvalidArgument>(layer, what, " must be positive, got (", s.height, ", ", s.width, ")");
}

// (size - 1) * dilation + 1, the extent of a dilated window.
int64_t dilated(const char* layer, int64_t size, int64_t dilation) {
  int64_t span = 0;
  if (__builtin_mul_overflow(size - 1, dilation, &span) || span == INT64_MAX)
    fail<InvalidArgument>(layer, "the dilated kernel size (", size, " - 1) * ", dilation, " + 1 overflows int64");
  return span + 1;
}

// One spatial axis' output size (Keras' conv_output_length); -1 for an unknown input size.
int64_t output_length(const Layer& layer, const char* axis, int64_t in, int64_t window, int64_t stride, bool same) {
  if (in < 0) return -1;
  if (same) return in / stride + (in % stride != 0 ? 1 : 0);
  if (in < window)
    fail<InvalidArgument>(layer.name(), "with padding \"valid\" the input ", axis, " (", in,
                          ") must be at least the window ", axis, " (", window, ")");
  return (in - window) / stride + 1;
}

void check_rank4(const Layer& layer, const Shape& input_shape) {
  if (input_shape.rank() != 4)
    fail<InvalidArgument>(layer.name(), layer.type_name(),
                          " needs inputs of rank 4 (batch, height, width, channels), got shape ",
                          shape_string(input_shape));
}

// [batch, out_height, out_width, channels] for windows of `window` extent.
Shape spatial_output(const Layer& layer, const Shape& s, Size2 window, Size2 strides, bool same, int64_t channels) {
  check_rank4(layer, s);
  return Shape{s.dim(0), output_length(layer, "height", s.dim(1), window.height, strides.height, same),
               output_length(layer, "width", s.dim(2), window.width, strides.width, same), channels};
}

}  // namespace

Conv2DImpl::Conv2DImpl(int64_t filters, Size2 kernel_size, Conv2DOptions options, std::string name)
    : Layer(std::move(name)), filters_(filters), kernel_size_(kernel_size), options_(std::move(options)) {
  if (filters < 1) fail<InvalidArgument>("Conv2D", "filters must be positive, got ", filters);
  check_positive("Conv2D", "kernel_size", kernel_size);
  check_positive("Conv2D", "strides", options_.strides);
  check_positive("Conv2D", "dilation_rate", options_.dilation_rate);
  dilated("Conv2D", kernel_size.height, options_.dilation_rate.height);
  dilated("Conv2D", kernel_size.width, options_.dilation_rate.width);
  padding_ = op_padding("Conv2D", options_.padding);
}

Conv2DImpl::Conv2DImpl(int64_t filters, Size2 kernel_size, const char* activation)
    : Conv2DImpl(filters, kernel_size, Conv2DOptions{.activation = Activation(activation)}) {}

nlohmann::json Conv2DImpl::get_config() const {
  nlohmann::json c = Layer::get_config();
  c["filters"] = filters_;
  c["kernel_size"] = size_json(kernel_size_);
  c["strides"] = size_json(options_.strides);
  c["padding"] = lower(padding_);
  c["data_format"] = "channels_last";
  c["dilation_rate"] = size_json(options_.dilation_rate);
  c["activation"] = options_.activation.name;
  c["use_bias"] = options_.use_bias;
  c["kernel_initializer"] = serialize_initializer(options_.kernel_initializer);
  c["bias_initializer"] = serialize_initializer(options_.bias_initializer);
  return c;
}

void Conv2DImpl::build(const Shape& input_shape) {
  check_rank4(*this, input_shape);
  const int64_t channels = input_shape.dim(3);
  if (channels < 0)
    fail<InvalidArgument>(name(), "the channels (last dim) of the inputs to Conv2D must be known, got shape ",
                          shape_string(input_shape));
  kernel_ =
      add_weight("kernel", {kernel_size_.height, kernel_size_.width, channels, filters_}, options_.kernel_initializer);
  if (options_.use_bias) bias_ = add_weight("bias", {filters_}, options_.bias_initializer);
  InputSpec spec;
  spec.ndim = 4;
  spec.axes[-1] = channels;
  input_spec = spec;
}

Tensor Conv2DImpl::call(const Tensor& inputs, bool training) {
  Tensor x = inputs.dtype() == kernel_.dtype() ? inputs : cast(inputs, kernel_.dtype());
  Tensor y = conv2d(x, kernel_, options_.strides.list(), padding_, options_.dilation_rate.list());
  if (options_.use_bias) y = y + bias_;
  return options_.activation(y);
}

std::pair<Shape, DType> Conv2DImpl::compute_output_type(const Shape& input_shape, DType input_dtype) {
  const Size2 window{dilated("Conv2D", kernel_size_.height, options_.dilation_rate.height),
                     dilated("Conv2D", kernel_size_.width, options_.dilation_rate.width)};
  return {spatial_output(*this, input_shape, window, options_.strides, padding_ == "SAME", filters_),
          kernel_.defined() ? kernel_.dtype() : float32};
}

Pooling2DLayer::Pooling2DLayer(const char* type, Size2 pool_size, std::optional<Size2> strides,
                               const std::string& padding, std::string name)
    : Layer(std::move(name)), pool_size_(pool_size), strides_(strides.value_or(pool_size)) {
  check_positive(type, "pool_size", pool_size_);
  check_positive(type, "strides", strides_);
  padding_ = op_padding(type, padding);
}

nlohmann::json Pooling2DLayer::get_config() const {
  nlohmann::json c = Layer::get_config();
  c["pool_size"] = size_json(pool_size_);
  c["strides"] = size_json(strides_);
  c["padding"] = lower(padding_);
  c["data_format"] = "channels_last";
  return c;
}

void Pooling2DLayer::build(const Shape& input_shape) {
  check_rank4(*this, input_shape);
  InputSpec spec;
  spec.ndim = 4;
  input_spec = spec;
}

std::pair<Shape, DType> Pooling2DLayer::compute_output_type(const Shape& input_shape, DType input_dtype) {
  check_rank4(*this, input_shape);
  return {spatial_output(*this, input_shape, pool_size_, strides_, padding_ == "SAME", input_shape.dim(3)),
          input_dtype};
}

Tensor MaxPooling2DImpl::call(const Tensor& inputs, bool training) {
  return max_pool2d(inputs, pool_size_.list(), strides_.list(), padding_);
}

Tensor AveragePooling2DImpl::call(const Tensor& inputs, bool training) {
  return avg_pool2d(inputs, pool_size_.list(), strides_.list(), padding_);
}

}  // namespace kiln::nn
