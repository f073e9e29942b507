// Public wrappers for the convolution and pooling ops: spatial sizes in TensorFlow's one-, two-
// or four-value forms become the ops' {height, width} attributes.
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace kiln {
namespace {

using ops::Attrs;
using ops::OpId;

// {v} -> {v, v}; {1, h, w, 1} -> {h, w}; anything else is left for the op to check.
std::vector<int64_t> spatial(std::string_view op, std::string_view name, const std::vector<int64_t>& v) {
  if (v.size() == 1) return {v[0], v[0]};
  if (v.size() == 4) {
    if (v[0] != 1 || v[3] != 1)
      fail<InvalidArgument>(op, name, " in the four-value form must be [1, height, width, 1] (no batch or channel ",
                            name, "), got ", Shape(v).to_list_string());
    return {v[1], v[2]};
  }
  return v;
}

Attrs conv_attrs(std::string_view op, const std::vector<int64_t>& strides, const std::string& padding,
                 const std::vector<int64_t>& dilations) {
  return Attrs{{"strides", spatial(op, "strides", strides)},
               {"padding", padding},
               {"dilations", spatial(op, "dilations", dilations)}};
}

Attrs pool_attrs(std::string_view op, const std::vector<int64_t>& ksize, const std::vector<int64_t>& strides,
                 const std::string& padding) {
  return Attrs{
      {"ksize", spatial(op, "ksize", ksize)}, {"strides", spatial(op, "strides", strides)}, {"padding", padding}};
}

Tensor apply2(OpId id, const Attrs& attrs, const Tensor& a, const Tensor& b) {
  const Tensor in[2] = {a, b};
  return ops::apply1(id, attrs, std::span<const Tensor>(in, 2));
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& filter, const std::vector<int64_t>& strides,
              const std::string& padding, const std::vector<int64_t>& dilations) {
  return apply2(OpId::Conv2D, conv_attrs("conv2d", strides, padding, dilations), input, filter);
}

Tensor conv2d_backprop_input(const Shape& input_shape, const Tensor& filter, const Tensor& out_backprop,
                             const std::vector<int64_t>& strides, const std::string& padding,
                             const std::vector<int64_t>& dilations) {
  Attrs attrs = conv_attrs("conv2d_backprop_input", strides, padding, dilations);
  attrs.set("input_sizes", input_shape.as_list());
  return apply2(OpId::Conv2DBackpropInput, attrs, filter, out_backprop);
}

Tensor conv2d_backprop_filter(const Tensor& input, const Shape& filter_shape, const Tensor& out_backprop,
                              const std::vector<int64_t>& strides, const std::string& padding,
                              const std::vector<int64_t>& dilations) {
  Attrs attrs = conv_attrs("conv2d_backprop_filter", strides, padding, dilations);
  attrs.set("filter_sizes", filter_shape.as_list());
  return apply2(OpId::Conv2DBackpropFilter, attrs, input, out_backprop);
}

Tensor max_pool2d(const Tensor& input, const std::vector<int64_t>& ksize, const std::vector<int64_t>& strides,
                  const std::string& padding) {
  return ops::apply1(OpId::MaxPool2D, pool_attrs("max_pool2d", ksize, strides, padding),
                     std::span<const Tensor>(&input, 1));
}

Tensor avg_pool2d(const Tensor& input, const std::vector<int64_t>& ksize, const std::vector<int64_t>& strides,
                  const std::string& padding) {
  return ops::apply1(OpId::AvgPool2D, pool_attrs("avg_pool2d", ksize, strides, padding),
                     std::span<const Tensor>(&input, 1));
}

Tensor max_pool2d_grad(const Tensor& input, const Tensor& grad, const std::vector<int64_t>& ksize,
                       const std::vector<int64_t>& strides, const std::string& padding) {
  return apply2(OpId::MaxPool2DGrad, pool_attrs("max_pool2d_grad", ksize, strides, padding), input, grad);
}

Tensor max_pool2d_grad_grad(const Tensor& input, const Tensor& grad, const std::vector<int64_t>& ksize,
                            const std::vector<int64_t>& strides, const std::string& padding) {
  return apply2(OpId::MaxPool2DGradGrad, pool_attrs("max_pool2d_grad_grad", ksize, strides, padding), input, grad);
}

Tensor avg_pool2d_grad(const Shape& input_shape, const Tensor& grad, const std::vector<int64_t>& ksize,
                       const std::vector<int64_t>& strides, const std::string& padding) {
  Attrs attrs = pool_attrs("avg_pool2d_grad", ksize, strides, padding);
  attrs.set("input_sizes", input_shape.as_list());
  return ops::apply1(OpId::AvgPool2DGrad, attrs, std::span<const Tensor>(&grad, 1));
}

}  // namespace kiln
