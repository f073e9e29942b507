// Losses (Keras' tf.keras.losses): per-example loss functions and Loss objects that reduce them.
#pragma once

#include <functional>
#include <string>

#include "ops/ops.h"

namespace kiln::nn::losses {

// Per-example losses: each returns one value per example, shape y_pred.shape[:-1] (the mean or
// sum over the last axis), as Keras' functions do. Shapes must match (InvalidArgument naming
// both otherwise); y_true is cast to y_pred's dtype.

/// mean(square(y_true - y_pred), axis=-1)
Tensor mean_squared_error(const Tensor& y_true, const Tensor& y_pred);
/// mean(abs(y_true - y_pred), axis=-1)
Tensor mean_absolute_error(const Tensor& y_true, const Tensor& y_pred);
/// Binary cross-entropy of probabilities (clipped to [eps, 1 - eps], eps = 1e-7) or, with
/// from_logits, of logits (computed stably), averaged over the last axis.
Tensor binary_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits = false);
/// -sum(y_true * log(y_pred), axis=-1) for one-hot (or soft) targets; y_pred is a probability
/// distribution (renormalized and clipped as Keras does) or logits with from_logits.
Tensor categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits = false);
/// categorical_crossentropy for integer class ids y_true (shape y_pred.shape[:-1], or with a
/// trailing 1). Ids outside [0, classes) throw InvalidArgument in eager code.
Tensor sparse_categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits = false);

/// A loss: a named per-example function, reduced over the batch. Calling it gives the mean over
/// every example (Keras' SUM_OVER_BATCH_SIZE), or with `sample_weight` (one weight per example)
/// sum(loss * weight) / number of examples.
class Loss {
 public:
  using Fn = std::function<Tensor(const Tensor& y_true, const Tensor& y_pred)>;
  Loss(std::string name, Fn per_example) : name_(std::move(name)), fn_(std::move(per_example)) {}
  /// A plain per-example function, e.g. `losses::mean_squared_error`.
  Loss(Tensor (*fn)(const Tensor&, const Tensor&)) : name_("loss"), fn_(fn) {}  // NOLINT
  /// The losses by Keras' names: "mse"/"mean_squared_error", "mae"/"mean_absolute_error",
  /// "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy".
  Loss(const std::string& name);  // NOLINT
  Loss(const char* name) : Loss(std::string(name)) {}  // NOLINT

  Tensor operator()(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight = Tensor()) const;
  /// One loss per example (the first axis of y_pred; a scalar for rank-1 predictions).
  Tensor per_example(const Tensor& y_true, const Tensor& y_pred) const;
  const std::string& name() const { return name_; }
  /// What the "accuracy" metric means with this loss: "binary", "categorical", "sparse" or "".
  const std::string& accuracy_kind() const { return accuracy_kind_; }

 private:
  friend Loss BinaryCrossentropy(bool);
  friend Loss CategoricalCrossentropy(bool);
  friend Loss SparseCategoricalCrossentropy(bool);
  std::string name_;
  Fn fn_;
  std::string accuracy_kind_;
};

Loss MeanSquaredError();
Loss MeanAbsoluteError();
Loss BinaryCrossentropy(bool from_logits = false);
Loss CategoricalCrossentropy(bool from_logits = false);
Loss SparseCategoricalCrossentropy(bool from_logits = false);

}  // namespace kiln::nn::losses
