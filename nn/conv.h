// Convolution and pooling layers over NHWC images (Keras' Conv2D, MaxPooling2D and
// AveragePooling2D), built on the conv2d and pooling ops.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nn/layer.h"

namespace kiln::nn {

/// A size for the two spatial axes: one number for both (`3`) or `{height, width}`.
struct Size2 {
  int64_t height = 1, width = 1;
  Size2(int64_t both) : height(both), width(both) {}  // NOLINT
  Size2(int64_t h, int64_t w) : height(h), width(w) {}
  std::vector<int64_t> list() const { return {height, width}; }
  friend bool operator==(const Size2&, const Size2&) = default;
};

/// Options of Conv2D. `padding` is "valid" (windows inside the input) or "same" (output
/// ceil(size / stride)), in either case.
struct Conv2DOptions {
  Size2 strides = 1;
  std::string padding = "valid";
  Size2 dilation_rate = 1;
  Activation activation{};
  bool use_bias = true;
  Initializer kernel_initializer = init::glorot_uniform();
  Initializer bias_initializer = init::zeros();
};

/// `activation(conv2d(inputs, kernel) + bias)` over NHWC images (Keras' Conv2D): inputs
/// [batch, height, width, channels] give [batch, out_height, out_width, filters]. The kernel
/// ([kernel_height, kernel_width, channels, filters], weight "kernel") and bias ([filters],
/// "bias") are created on the first call from the input's channels, which must be known; later
/// inputs must be rank 4 with those channels (InvalidArgument otherwise). Inputs of another
/// dtype are cast to the kernel's (float32). A "valid" window larger than the input throws
/// InvalidArgument.
class Conv2DImpl : public Layer {
 public:
  /// Throws InvalidArgument for filters < 1, a non-positive kernel size, stride or dilation
  /// rate, a dilated kernel whose size overflows int64, or another padding.
  Conv2DImpl(int64_t filters, Size2 kernel_size, Conv2DOptions options = {}, std::string name = {});
  Conv2DImpl(int64_t filters, Size2 kernel_size, const char* activation);

  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& inputs, bool training) override;
  /// The output shape computed from the input shape alone (unknown dims stay -1); dtype float32.
  std::pair<Shape, DType> compute_output_type(const Shape& input_shape, DType input_dtype) override;
  std::string type_name() const override { return "Conv2D"; }
  nlohmann::json get_config() const override;
  std::string default_name() const override { return unique_name("conv2d"); }

  int64_t filters() const { return filters_; }
  Size2 kernel_size() const { return kernel_size_; }
  const Conv2DOptions& options() const { return options_; }
  /// The weights (undefined before the layer is built; bias also without use_bias).
  const Variable& kernel() const { return kernel_; }
  const Variable& bias() const { return bias_; }

 private:
  int64_t filters_;
  Size2 kernel_size_;
  Conv2DOptions options_;
  std::string padding_;  // the op's spelling: "SAME" or "VALID"
  Variable kernel_, bias_;
};
KILN_MODULE(Conv2D);

/// The pooling layers' shared configuration and shape logic. `strides` defaults to
/// `pool_size` (as Keras); `padding` is "valid" or "same", in either case. Inputs must be
/// rank 4 (checked on every call after the first); nothing is trainable.
class Pooling2DLayer : public Layer {
 public:
  /// Throws InvalidArgument for a non-positive pool size or stride, or another padding.
  Pooling2DLayer(const char* type, Size2 pool_size, std::optional<Size2> strides, const std::string& padding,
                 std::string name);
  void build(const Shape& input_shape) override;
  /// The output shape computed from the input shape alone (unknown dims stay -1).
  std::pair<Shape, DType> compute_output_type(const Shape& input_shape, DType input_dtype) override;

  Size2 pool_size() const { return pool_size_; }
  Size2 strides() const { return strides_; }
  /// "SAME" or "VALID".
  const std::string& padding() const { return padding_; }
  nlohmann::json get_config() const override;

 protected:
  Size2 pool_size_, strides_;
  std::string padding_;
};

/// The maximum over each window (Keras' MaxPooling2D); integer and float inputs.
class MaxPooling2DImpl : public Pooling2DLayer {
 public:
  explicit MaxPooling2DImpl(Size2 pool_size = 2, std::optional<Size2> strides = std::nullopt,
                            const std::string& padding = "valid", std::string name = {})
      : Pooling2DLayer("MaxPooling2D", pool_size, strides, padding, std::move(name)) {}
  Tensor call(const Tensor& inputs, bool training) override;
  std::string type_name() const override { return "MaxPooling2D"; }
  std::string default_name() const override { return unique_name("max_pooling2d"); }
};
KILN_MODULE(MaxPooling2D);

/// The mean over each window's elements inside the input (Keras' AveragePooling2D; "same"
/// padding is not counted); float inputs.
class AveragePooling2DImpl : public Pooling2DLayer {
 public:
  explicit AveragePooling2DImpl(Size2 pool_size = 2, std::optional<Size2> strides = std::nullopt,
                                const std::string& padding = "valid", std::string name = {})
      : Pooling2DLayer("AveragePooling2D", pool_size, strides, padding, std::move(name)) {}
  Tensor call(const Tensor& inputs, bool training) override;
  std::string type_name() const override { return "AveragePooling2D"; }
  std::string default_name() const override { return unique_name("average_pooling2d"); }
};
KILN_MODULE(AveragePooling2D);

}  // namespace kiln::nn
