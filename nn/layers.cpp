// Dense, Dropout and Flatten.
#include "nn/layers.h"

#include <nlohmann/json.hpp>
#include <random>

#include "nn/serialization.h"
#include "ops/dispatch.h"

namespace kiln::nn {
namespace {
DenseOptions options_with(const Activation& activation) {
  DenseOptions o;
  o.activation = activation;
  return o;
}
}  // namespace

DenseImpl::DenseImpl(int64_t units, DenseOptions options, std::string name)
    : Layer(std::move(name)), units_(units), options_(std::move(options)) {
  if (units < 1) fail<InvalidArgument>("Dense", "units must be positive, got ", units);
}

DenseImpl::DenseImpl(int64_t units, const Activation& activation, std::string name)
    : DenseImpl(units, options_with(activation), std::move(name)) {}

nlohmann::json DenseImpl::get_config() const {
  nlohmann::json c = Layer::get_config();
  c["units"] = units_;
  c["activation"] = options_.activation.name;
  c["use_bias"] = options_.use_bias;
  c["kernel_initializer"] = serialize_initializer(options_.kernel_initializer);
  c["bias_initializer"] = serialize_initializer(options_.bias_initializer);
  return c;
}

void DenseImpl::build(const Shape& input_shape) {
  if (input_shape.rank() < 1)
    fail<InvalidArgument>(name(), "Dense needs inputs of rank >= 1, got shape ", shape_string(input_shape));
  int64_t last = input_shape.dim(size_t(input_shape.rank() - 1));
  if (last < 0)
    fail<InvalidArgument>(name(), "the last dimension of the inputs to Dense must be known, got shape ",
                          shape_string(input_shape));
  kernel_ = add_weight("kernel", {last, units_}, options_.kernel_initializer);
  if (options_.use_bias) bias_ = add_weight("bias", {units_}, options_.bias_initializer);
  InputSpec spec;
  spec.min_ndim = input_shape.rank() == 1 ? 1 : 2;
  spec.axes[-1] = last;
  input_spec = spec;
}

Tensor DenseImpl::call(const Tensor& inputs, bool training) {
  Tensor x = inputs.dtype() == kernel_.dtype() ? inputs : cast(inputs, kernel_.dtype());
  Tensor y;
  if (x.ndim() == 2) {
    y = matmul(x, kernel_);
  } else if (x.ndim() == 1) {
    y = reshape(matmul(reshape(x, {1, -1}), kernel_), {units_});
  } else {
    // [..., in] x [in, units]: fold the leading axes into one when they are known
    Shape lead(x.shape().dims().first(size_t(x.ndim() - 1)));
    if (lead.is_fully_defined()) {
      Shape out = lead;
      out.push_back(units_);
      y = reshape(matmul(reshape(x, {-1, x.shape().dim(size_t(x.ndim() - 1))}), kernel_), out);
    } else {
      y = matmul(x, kernel_);
    }
  }
  if (options_.use_bias) y = y + bias_;
  return options_.activation(y);
}

DropoutImpl::DropoutImpl(double rate, std::optional<uint64_t> seed, std::string name)
    : Layer(std::move(name)), rate_(rate), given_seed_(seed) {
  if (!(rate >= 0 && rate < 1)) fail<InvalidArgument>("Dropout", "rate must be in [0, 1), got ", rate);
  seed_ = seed ? *seed : std::random_device{}();
  ops::EagerScope eager;
  counter_ = Variable(scalar<uint64_t>(0), "dropout_counter", false);
}

nlohmann::json DropoutImpl::get_config() const {
  nlohmann::json c = Layer::get_config();
  c["rate"] = rate_;
  c["seed"] = given_seed_ ? nlohmann::json(*given_seed_) : nlohmann::json(nullptr);
  return c;
}

Tensor DropoutImpl::call(const Tensor& inputs, bool training) {
  if (!training || rate_ == 0) return inputs;
  // scaling by 1 / (1 - rate) needs a floating-point dtype (as TensorFlow's dropout)
  if (!is_floating(inputs.dtype()))
    fail<InvalidArgument>(name(), "Dropout needs floating-point inputs while training, got dtype ",
                          dtype_name(inputs.dtype()));
  Tensor count = counter_.read_value();
  counter_.assign_add(scalar<uint64_t>(1));
  Tensor u = counter_uniform_like(inputs, seed_, count);
  Tensor keep = cast(greater_equal(u, scalar<float>(float(rate_))), inputs.dtype());
  return inputs * keep * scalar_of(std::complex<double>(1.0 / (1.0 - rate_)), inputs.dtype());
}

Tensor FlattenImpl::call(const Tensor& inputs, bool training) {
  if (inputs.ndim() < 1) fail<InvalidArgument>(name(), "Flatten needs inputs of rank >= 1, got a scalar");
  Shape rest(inputs.shape().dims().subspan(1));
  if (!rest.is_fully_defined())
    fail<InvalidArgument>(name(), "Flatten needs every dim but the first known, got shape ",
                          shape_string(inputs.shape()));
  int64_t n = rest.num_elements();
  if (inputs.shape().dim(0) >= 0) return reshape(inputs, {inputs.shape().dim(0), n});
  return reshape(inputs, {-1, n});
}

namespace {

// Uniform samples in [0, 1) for the element indices `index` (uint64).
Tensor counter_mix(const Tensor& index, uint64_t seed, const Tensor& counter) {
  auto u64 = [](uint64_t v) { return scalar<uint64_t>(v); };
  // splitmix64 with xor-shifts replaced by add-shifts (there are no bitwise ops): distinct
  // (seed, counter, index) triples give well-mixed 64-bit words
  Tensor z = index + counter * u64(0x9E3779B97F4A7C15ull) + u64(seed * 0xD1B54A32D192ED03ull);
  z = (z + floordiv(z, u64(1ull << 30))) * u64(0xBF58476D1CE4E5B9ull);
  z = (z + floordiv(z, u64(1ull << 27))) * u64(0x94D049BB133111EBull);
  z = z + floordiv(z, u64(1ull << 31));
  return cast(floordiv(z, u64(1ull << 40)), float32) * scalar<float>(1.0f / 16777216.0f);
}

}  // namespace

Tensor counter_uniform(const Shape& shape, uint64_t seed, const Tensor& counter) {
  if (!shape.is_fully_defined())
    fail<InvalidArgument>("counter_uniform", "needs a fully known shape, got ", shape_string(shape));
  return reshape(counter_mix(cast(range(0, shape.num_elements(), 1, int64), uint64), seed, counter), shape);
}

Tensor counter_uniform_like(const Tensor& like, uint64_t seed, const Tensor& counter) {
  if (like.shape().is_fully_defined()) return counter_uniform(like.shape(), seed, counter);
  // the element numbers come from the shape the graph runs with (a symbolic batch dim)
  Tensor flat = reshape(like, {-1});
  return reshape_like(counter_mix(cast(range_like(flat, 0, int64), uint64), seed, counter), like);
}

}  // namespace kiln::nn
