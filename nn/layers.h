// Core Keras layers: Dense, Dropout, Flatten. (Convolution, pooling and normalization layers
// plug in the same way: a Layer subclass with build and call.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "nn/layer.h"

namespace kiln::nn {

/// Options of Dense.
struct DenseOptions {
  Activation activation{};
  bool use_bias = true;
  Initializer kernel_initializer = init::glorot_uniform();
  Initializer bias_initializer = init::zeros();
};

/// `activation(inputs @ kernel + bias)` on the last axis (Keras' Dense). The kernel
/// ([input_dim, units], weight "kernel") and bias ([units], "bias") are created on the first call
/// from the input's last dim; later inputs must have that last dim (InvalidArgument otherwise).
class DenseImpl : public Layer {
 public:
  /// Throws InvalidArgument for units < 1.
  explicit DenseImpl(int64_t units, DenseOptions options = {}, std::string name = {});
  DenseImpl(int64_t units, const Activation& activation, std::string name = {});
  DenseImpl(int64_t units, const char* activation) : DenseImpl(units, Activation(activation)) {}

  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& inputs, bool training) override;
  std::string type_name() const override { return "Dense"; }
  nlohmann::json get_config() const override;

  int64_t units() const { return units_; }
  const DenseOptions& options() const { return options_; }
  /// The weights (undefined before the layer is built).
  const Variable& kernel() const { return kernel_; }
  const Variable& bias() const { return bias_; }

 private:
  int64_t units_;
  DenseOptions options_;
  Variable kernel_, bias_;
};
KILN_MODULE(Dense);

/// Sets a fraction `rate` of the inputs to zero while training and scales the rest by
/// 1 / (1 - rate) (Keras' Dropout); at inference it passes inputs through. With a seed the masks
/// are reproducible. In traced training steps each call draws a new mask: the mask comes from a
/// counter variable the layer advances on every call, not from values fixed at trace time.
/// While training with rate > 0 the inputs must be floating-point (InvalidArgument otherwise).
class DropoutImpl : public Layer {
 public:
  /// Throws InvalidArgument unless 0 <= rate < 1.
  explicit DropoutImpl(double rate, std::optional<uint64_t> seed = std::nullopt, std::string name = {});
  Tensor call(const Tensor& inputs, bool training) override;
  std::pair<Shape, DType> compute_output_type(const Shape& s, DType d) override { return {s, d}; }
  std::string type_name() const override { return "Dropout"; }
  nlohmann::json get_config() const override;
  double rate() const { return rate_; }
  /// The seed given to the constructor (empty when the layer drew one).
  std::optional<uint64_t> seed() const { return given_seed_; }

 private:
  double rate_;
  std::optional<uint64_t> given_seed_;
  uint64_t seed_;
  Variable counter_;  // RNG state: not a weight, so not registered
};
KILN_MODULE(Dropout);

/// Flattens every axis but the first (the batch): [B, d1, d2, ...] -> [B, d1 * d2 * ...].
class FlattenImpl : public Layer {
 public:
  explicit FlattenImpl(std::string name = {}) : Layer(std::move(name)) {}
  Tensor call(const Tensor& inputs, bool training) override;
  std::string type_name() const override { return "Flatten"; }
};
KILN_MODULE(Flatten);

/// Uniform samples in [0, 1) of `shape` computed with ops from an integer `counter` (a uint64
/// scalar tensor) and a seed: a counter-based generator, so a traced graph given a new counter
/// value draws new samples (random ops fix their stream when traced). Deterministic in
/// (shape, seed, counter).
Tensor counter_uniform(const Shape& shape, uint64_t seed, const Tensor& counter);
/// counter_uniform for `like`'s shape, which may have unknown dims while tracing (a symbolic
/// batch): the samples are those of counter_uniform for the shape the graph runs with. Only
/// `like`'s shape is read.
Tensor counter_uniform_like(const Tensor& like, uint64_t seed, const Tensor& counter);

}  // namespace kiln::nn
