// Initializers (fan-based scaling as Keras computes it) and activations by name.
#include "nn/initializers.h"

#include <cmath>

namespace kiln::nn {
namespace {

// Keras' fans: for a matrix (in, out); for a conv kernel (..., in, out) scaled by the receptive field.
std::pair<double, double> fans(const Shape& s) {
  if (s.rank() == 0) return {1, 1};
  if (s.rank() == 1) return {double(s.dim(0)), double(s.dim(0))};
  double receptive = 1;
  for (int64_t i = 0; i + 2 < s.rank(); ++i) receptive *= double(s.dim(size_t(i)));
  return {double(s.dim(size_t(s.rank() - 2))) * receptive, double(s.dim(size_t(s.rank() - 1))) * receptive};
}

Tensor cast_to(const Tensor& t, DType dtype) { return t.dtype() == dtype ? t : cast(t, dtype); }

}  // namespace

namespace init {
Initializer zeros() {
  return {"zeros", [](const Shape& s, DType d) { return kiln::zeros(s, d); }};
}
Initializer ones() {
  return {"ones", [](const Shape& s, DType d) { return kiln::ones(s, d); }};
}
Initializer constant(double value) {
  return {"constant",
          [value](const Shape& s, DType d) { return cast_to(fill(s, scalar<double>(value)), d); },
          {{"value", value}}};
}
Initializer random_normal(double mean, double stddev, std::optional<uint64_t> seed) {
  return {"random_normal",
          [=](const Shape& s, DType d) { return cast_to(random::normal(s, seed, mean, stddev), d); },
          {{"mean", mean}, {"stddev", stddev}},
          seed};
}
Initializer random_uniform(double minval, double maxval, std::optional<uint64_t> seed) {
  return {"random_uniform",
          [=](const Shape& s, DType d) { return cast_to(random::uniform(s, seed, minval, maxval), d); },
          {{"minval", minval}, {"maxval", maxval}},
          seed};
}
Initializer glorot_uniform(std::optional<uint64_t> seed) {
  return {"glorot_uniform",
          [=](const Shape& s, DType d) {
            auto [in, out] = fans(s);
            double l = std::sqrt(6.0 / std::max(1.0, in + out));
            return cast_to(random::uniform(s, seed, -l, l), d);
          },
          {},
          seed};
}
Initializer glorot_normal(std::optional<uint64_t> seed) {
  return {"glorot_normal",
          [=](const Shape& s, DType d) {
            auto [in, out] = fans(s);
            return cast_to(random::normal(s, seed, 0.0, std::sqrt(2.0 / std::max(1.0, in + out))), d);
          },
          {},
          seed};
}
Initializer he_normal(std::optional<uint64_t> seed) {
  return {"he_normal",
          [=](const Shape& s, DType d) {
            auto [in, out] = fans(s);
            return cast_to(random::normal(s, seed, 0.0, std::sqrt(2.0 / std::max(1.0, in))), d);
          },
          {},
          seed};
}
Initializer he_uniform(std::optional<uint64_t> seed) {
  return {"he_uniform",
          [=](const Shape& s, DType d) {
            auto [in, out] = fans(s);
            double l = std::sqrt(6.0 / std::max(1.0, in));
            return cast_to(random::uniform(s, seed, -l, l), d);
          },
          {},
          seed};
}
Initializer get(const std::string& name) {
  if (name == "zeros") return zeros();
  if (name == "ones") return ones();
  if (name == "glorot_uniform") return glorot_uniform();
  if (name == "glorot_normal") return glorot_normal();
  if (name == "he_normal") return he_normal();
  if (name == "he_uniform") return he_uniform();
  if (name == "random_normal") return random_normal();
  if (name == "random_uniform") return random_uniform();
  fail<InvalidArgument>("initializers", "unknown initializer '", name,
                        "'; known: zeros, ones, glorot_uniform, glorot_normal, he_normal, he_uniform, random_normal, "
                        "random_uniform");
}
}  // namespace init

Activation::Activation(const std::string& n) : name(n.empty() ? "linear" : n) {
  if (name == "linear") return;
  if (name == "relu")
    fn = [](const Tensor& x) { return relu(x); };
  else if (name == "sigmoid")
    fn = [](const Tensor& x) { return sigmoid(x); };
  else if (name == "tanh")
    fn = [](const Tensor& x) { return tanh(x); };
  else if (name == "softmax")
    fn = [](const Tensor& x) { return softmax(x, -1); };
  else if (name == "softplus")
    fn = [](const Tensor& x) { return softplus(x); };
  else if (name == "exponential")
    fn = [](const Tensor& x) { return exp(x); };
  else
    fail<InvalidArgument>("activations", "unknown activation '", n,
                          "'; known: linear, relu, sigmoid, tanh, softmax, softplus, exponential");
}

}  // namespace kiln::nn
