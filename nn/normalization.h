// Embedding and normalization layers (Keras' Embedding, LayerNormalization, BatchNormalization),
// built from existing ops so their gradients come from the tape.
#pragma once

#include <cstdint>
#include <string>

#include "nn/layer.h"

namespace kiln::nn {

/// Looks up rows of an `embeddings` weight ([input_dim, output_dim], random-uniform in
/// [-0.05, 0.05] by default) for integer ids (Keras' Embedding): ids of shape S give an output of
/// shape S + [output_dim]. Ids must be int32 or int64 (InvalidArgument otherwise); an id outside
/// [0, input_dim) is an InvalidArgument from gather, naming the id.
class EmbeddingImpl : public Layer {
 public:
  /// Throws InvalidArgument for input_dim < 1 or output_dim < 1.
  EmbeddingImpl(int64_t input_dim, int64_t output_dim, Initializer embeddings_initializer = init::random_uniform(),
                std::string name = {});
  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& inputs, bool training) override;
  std::string type_name() const override { return "Embedding"; }
  nlohmann::json get_config() const override;

  int64_t input_dim() const { return input_dim_; }
  int64_t output_dim() const { return output_dim_; }
  const Initializer& embeddings_initializer() const { return initializer_; }
  /// The table (undefined before the layer is built).
  const Variable& embeddings() const { return embeddings_; }

 private:
  int64_t input_dim_, output_dim_;
  Initializer initializer_;
  Variable embeddings_;
};
KILN_MODULE(Embedding);

/// Options of LayerNormalization and BatchNormalization. `axis` is the feature axis (negative
/// counts from the end); `center` adds a trainable offset `beta` (zeros), `scale` a trainable
/// factor `gamma` (ones), each of the feature axis' size.
struct NormalizationOptions {
  int64_t axis = -1;
  double epsilon = 1e-3;
  bool center = true;
  bool scale = true;
};

/// Normalizes each example over the feature axis (Keras' LayerNormalization):
/// `(x - mean) / sqrt(variance + epsilon) * gamma + beta`, with the mean and (biased) variance
/// taken over `axis` alone. Float64 inputs are computed in float64, other inputs in float32;
/// the output has the dtype of the computation. The feature dim must be known when the layer is
/// built; later inputs must have the same rank and feature dim (InvalidArgument otherwise).
class LayerNormalizationImpl : public Layer {
 public:
  /// Throws InvalidArgument for a negative or non-finite epsilon.
  explicit LayerNormalizationImpl(NormalizationOptions options = {}, std::string name = {});
  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& inputs, bool training) override;
  std::string type_name() const override { return "LayerNormalization"; }
  nlohmann::json get_config() const override;
  const NormalizationOptions& options() const { return options_; }
  /// The weights (undefined before the build, or when scale / center is off).
  const Variable& gamma() const { return gamma_; }
  const Variable& beta() const { return beta_; }

 private:
  NormalizationOptions options_;
  int64_t axis_ = -1;  // the feature axis, made non-negative by build
  Variable gamma_, beta_;
};
KILN_MODULE(LayerNormalization);

/// Normalizes over the batch (Keras' BatchNormalization). With `training`, the mean and biased
/// variance are taken over every axis but `axis` from the batch itself, and the non-trainable
/// weights `moving_mean` (zeros) and `moving_variance` (ones) are updated with assign:
/// `moving = moving * momentum + batch_statistic * (1 - momentum)`. Without it the moving
/// statistics are used and nothing changes. The output is
/// `(x - mean) / sqrt(variance + epsilon) * gamma + beta`. Weights are float32; float64 inputs
/// are computed in float64. The feature dim must be known at the build; later inputs must have
/// the same rank and feature dim (InvalidArgument otherwise).
class BatchNormalizationImpl : public Layer {
 public:
  /// Throws InvalidArgument for momentum outside [0, 1] or a negative or non-finite epsilon.
  explicit BatchNormalizationImpl(double momentum = 0.99, NormalizationOptions options = {}, std::string name = {});
  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& inputs, bool training) override;
  std::string type_name() const override { return "BatchNormalization"; }
  nlohmann::json get_config() const override;
  double momentum() const { return momentum_; }
  const NormalizationOptions& options() const { return options_; }
  /// The weights (undefined before the build; gamma / beta also when scale / center is off).
  const Variable& gamma() const { return gamma_; }
  const Variable& beta() const { return beta_; }
  const Variable& moving_mean() const { return moving_mean_; }
  const Variable& moving_variance() const { return moving_variance_; }

 private:
  double momentum_;
  NormalizationOptions options_;
  int64_t axis_ = -1;
  Variable gamma_, beta_, moving_mean_, moving_variance_;
};
KILN_MODULE(BatchNormalization);

}  // namespace kiln::nn
