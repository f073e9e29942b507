// Embedding, LayerNormalization and BatchNormalization: compositions of gather, reductions and
// elementwise ops, so the tape differentiates them without rules of their own.
#include "nn/normalization.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "nn/serialization.h"

namespace kiln::nn {
namespace {

void check_epsilon(const char* layer, double epsilon) {
  if (!(epsilon >= 0) || !std::isfinite(epsilon))
    fail<InvalidArgument>(layer, "epsilon must be finite and >= 0, got ", epsilon);
}

// The feature axis of `input_shape` as a non-negative index; its size must be known because the
// weights are made from it.
int64_t feature_axis(const Layer& layer, int64_t axis, const Shape& input_shape) {
  const int64_t r = input_shape.rank();
  if (r < 1)
    fail<InvalidArgument>(layer.name(), layer.type_name(), " needs inputs of rank >= 1, got shape ",
                          shape_string(input_shape));
  const int64_t a = axis < 0 ? axis + r : axis;
  if (a < 0 || a >= r)
    fail<InvalidArgument>(layer.name(), "axis ", axis, " is out of range for inputs of shape ",
                          shape_string(input_shape), " (rank ", r, ")");
  if (input_shape.dim(size_t(a)) < 0)
    fail<InvalidArgument>(layer.name(), "axis ", axis, " of the inputs to ", layer.type_name(),
                          " must have a known size, got shape ", shape_string(input_shape));
  return a;
}

// Later inputs must have the build's rank and feature dim.
InputSpec feature_spec(int64_t rank, int64_t axis, int64_t size) {
  InputSpec spec;
  spec.ndim = rank;
  spec.axes[axis] = size;
  return spec;
}

// float64 stays float64 (exact gradient checks, double models); everything else runs in float32.
DType compute_dtype(DType input) { return input == float64 ? float64 : float32; }

// A [d] parameter shaped to broadcast against a rank-`rank` input along `axis`, in `dtype`.
Tensor along_axis(const Tensor& param, int64_t rank, int64_t axis, DType dtype) {
  Tensor p = param.dtype() == dtype ? param : cast(param, dtype);
  if (axis == rank - 1) return p;
  std::vector<int64_t> dims(size_t(rank), 1);
  dims[size_t(axis)] = param.shape().dim(0);
  return reshape(p, Shape(dims));
}

// (x - mean) * rsqrt(variance + epsilon) * gamma + beta, the last two when defined.
Tensor normalize(const Tensor& x, const Tensor& mean, const Tensor& variance, double epsilon, const Variable& gamma,
                 const Variable& beta, int64_t axis) {
  const DType dt = x.dtype();
  Tensor inv = rsqrt(variance + scalar_of(std::complex<double>(epsilon), dt));
  if (gamma.defined()) inv = inv * along_axis(gamma, x.ndim(), axis, dt);
  Tensor y = (x - mean) * inv;
  if (beta.defined()) y = y + along_axis(beta, x.ndim(), axis, dt);
  return y;
}

}  // namespace

EmbeddingImpl::EmbeddingImpl(int64_t input_dim, int64_t output_dim, Initializer embeddings_initializer,
                             std::string name)
    : Layer(std::move(name)),
      input_dim_(input_dim),
      output_dim_(output_dim),
      initializer_(std::move(embeddings_initializer)) {
  if (input_dim < 1 || output_dim < 1)
    fail<InvalidArgument>("Embedding", "input_dim and output_dim must be positive, got input_dim=", input_dim,
                          ", output_dim=", output_dim);
}

nlohmann::json EmbeddingImpl::get_config() const {
  nlohmann::json c = Layer::get_config();
  c["input_dim"] = input_dim_;
  c["output_dim"] = output_dim_;
  c["embeddings_initializer"] = serialize_initializer(initializer_);
  return c;
}

void EmbeddingImpl::build(const Shape& input_shape) {
  embeddings_ = add_weight("embeddings", {input_dim_, output_dim_}, initializer_);
}

Tensor EmbeddingImpl::call(const Tensor& inputs, bool training) {
  if (inputs.dtype() != int32 && inputs.dtype() != int64)
    fail<InvalidArgument>(name(), "Embedding ids must be int32 or int64, got ", dtype_name(inputs.dtype()));
  return gather(embeddings_, inputs);
}

LayerNormalizationImpl::LayerNormalizationImpl(NormalizationOptions options, std::string name)
    : Layer(std::move(name)), options_(options) {
  check_epsilon("LayerNormalization", options.epsilon);
}

nlohmann::json LayerNormalizationImpl::get_config() const {
  nlohmann::json c = Layer::get_config();
  c["axis"] = options_.axis;
  c["epsilon"] = options_.epsilon;
  c["center"] = options_.center;
  c["scale"] = options_.scale;
  return c;
}

void LayerNormalizationImpl::build(const Shape& input_shape) {
  axis_ = feature_axis(*this, options_.axis, input_shape);
  const int64_t d = input_shape.dim(size_t(axis_));
  if (options_.scale) gamma_ = add_weight("gamma", {d}, init::ones());
  if (options_.center) beta_ = add_weight("beta", {d}, init::zeros());
  input_spec = feature_spec(input_shape.rank(), axis_, d);
}

Tensor LayerNormalizationImpl::call(const Tensor& inputs, bool training) {
  const DType dt = compute_dtype(inputs.dtype());
  Tensor x = inputs.dtype() == dt ? inputs : cast(inputs, dt);
  Tensor mean = reduce_mean(x, axis_, true);
  Tensor variance = reduce_mean(square(x - mean), axis_, true);
  return normalize(x, mean, variance, options_.epsilon, gamma_, beta_, axis_);
}

BatchNormalizationImpl::BatchNormalizationImpl(double momentum, NormalizationOptions options, std::string name)
    : Layer(std::move(name)), momentum_(momentum), options_(options) {
  if (!(momentum >= 0 && momentum <= 1))
    fail<InvalidArgument>("BatchNormalization", "momentum must be in [0, 1], got ", momentum);
  check_epsilon("BatchNormalization", options.epsilon);
}

nlohmann::json BatchNormalizationImpl::get_config() const {
  nlohmann::json c = Layer::get_config();
  c["axis"] = options_.axis;
  c["momentum"] = momentum_;
  c["epsilon"] = options_.epsilon;
  c["center"] = options_.center;
  c["scale"] = options_.scale;
  return c;
}

void BatchNormalizationImpl::build(const Shape& input_shape) {
  axis_ = feature_axis(*this, options_.axis, input_shape);
  const int64_t d = input_shape.dim(size_t(axis_));
  if (options_.scale) gamma_ = add_weight("gamma", {d}, init::ones());
  if (options_.center) beta_ = add_weight("beta", {d}, init::zeros());
  moving_mean_ = add_weight("moving_mean", {d}, init::zeros(), /*trainable=*/false);
  moving_variance_ = add_weight("moving_variance", {d}, init::ones(), /*trainable=*/false);
  input_spec = feature_spec(input_shape.rank(), axis_, d);
}

Tensor BatchNormalizationImpl::call(const Tensor& inputs, bool training) {
  const DType dt = compute_dtype(inputs.dtype());
  Tensor x = inputs.dtype() == dt ? inputs : cast(inputs, dt);
  const int64_t rank = x.ndim();
  if (!training)
    return normalize(x, along_axis(moving_mean_, rank, axis_, dt), along_axis(moving_variance_, rank, axis_, dt),
                     options_.epsilon, gamma_, beta_, axis_);
  std::vector<int64_t> reduce_axes;
  for (int64_t a = 0; a < rank; ++a)
    if (a != axis_) reduce_axes.push_back(a);
  Tensor mean = reduce_mean(x, reduce_axes, true);
  Tensor variance = reduce_mean(square(x - mean), reduce_axes, true);
  // the moving statistics are bookkeeping: no gradient flows into the assignments
  const Shape features{moving_mean_.shape().dim(0)};
  const DType vt = moving_mean_.dtype();
  auto update = [&](const Variable& moving, const Tensor& batch) {
    Tensor b = cast(reshape(stop_gradient(batch), features), vt);
    moving.assign(moving.read_value() * scalar_of(std::complex<double>(momentum_), vt) +
                  b * scalar_of(std::complex<double>(1.0 - momentum_), vt));
  };
  update(moving_mean_, mean);
  update(moving_variance_, variance);
  return normalize(x, mean, variance, options_.epsilon, gamma_, beta_, axis_);
}

}  // namespace kiln::nn
