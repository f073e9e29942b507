// Weight initializers and activations for layers: functions of a shape (and a dtype) that make
// initial values, and named elementwise activations ("relu", "softmax", ...).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ops/ops.h"

namespace kiln::nn {

/// Makes an initial value of a shape and dtype. Without a seed, initializers draw from the
/// global generator (`random::set_seed` makes a program reproducible); with one, a given shape
/// always gets the same values. `args` and `seed` record what the built-in initializers were
/// made with, for layer configs (nn/serialization.h); a custom initializer may leave them empty.
struct Initializer {
  std::string name;
  std::function<Tensor(const Shape&, DType)> fn;
  std::vector<std::pair<std::string, double>> args{};
  std::optional<uint64_t> seed{};
  Tensor operator()(const Shape& shape, DType dtype = float32) const { return fn(shape, dtype); }
};

namespace init {
Initializer zeros();
Initializer ones();
Initializer constant(double value);
Initializer random_normal(double mean = 0.0, double stddev = 0.05, std::optional<uint64_t> seed = std::nullopt);
Initializer random_uniform(double minval = -0.05, double maxval = 0.05, std::optional<uint64_t> seed = std::nullopt);
/// Uniform in [-l, l], l = sqrt(6 / (fan_in + fan_out)) (Keras' default for Dense kernels).
Initializer glorot_uniform(std::optional<uint64_t> seed = std::nullopt);
/// Normal with stddev sqrt(2 / (fan_in + fan_out)).
Initializer glorot_normal(std::optional<uint64_t> seed = std::nullopt);
/// Normal with stddev sqrt(2 / fan_in).
Initializer he_normal(std::optional<uint64_t> seed = std::nullopt);
/// Uniform in [-l, l], l = sqrt(6 / fan_in).
Initializer he_uniform(std::optional<uint64_t> seed = std::nullopt);
/// An initializer by name ("zeros", "ones", "glorot_uniform", "glorot_normal", "he_normal",
/// "he_uniform", "random_normal", "random_uniform"); InvalidArgument for another name.
Initializer get(const std::string& name);
}  // namespace init

/// A named elementwise (or last-axis) activation.
struct Activation {
  std::string name = "linear";
  std::function<Tensor(const Tensor&)> fn;
  Activation() = default;
  /// By name: "linear" (or ""), "relu", "sigmoid", "tanh", "softmax", "softplus", "exponential".
  /// Throws InvalidArgument naming the known activations for another name.
  Activation(const std::string& name);                             // NOLINT
  Activation(const char* name) : Activation(std::string(name)) {}  // NOLINT
  Activation(std::string name, std::function<Tensor(const Tensor&)> f) : name(std::move(name)), fn(std::move(f)) {}
  Tensor operator()(const Tensor& x) const { return fn ? fn(x) : x; }
};

}  // namespace kiln::nn
