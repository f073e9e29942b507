// Metrics (Keras' tf.keras.metrics): stateful accumulators whose state is variables, so their
// updates run inside a traced training step.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "ops/variable.h"

namespace kiln::nn::metrics {

/// A metric: `update_state` accumulates (weighted) values in variables, `result` reads the
/// current value, `reset_state` starts over.
class Metric {
 public:
  explicit Metric(std::string name);
  virtual ~Metric() = default;
  /// Accumulates a batch. `sample_weight` (optional) has one weight per example.
  virtual void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight = Tensor()) = 0;
  /// The current value (a float32 scalar; 0 before any update).
  virtual Tensor result() const;
  virtual void reset_state();
  const std::string& name() const { return name_; }

 protected:
  /// Adds sum(values * w) to total and sum(w) (or the count of values) to count.
  void accumulate(const Tensor& values, const Tensor& sample_weight);
  Variable total_, count_;

 private:
  std::string name_;
};

/// The weighted mean of the values given to `update(values, sample_weight)`.
class Mean : public Metric {
 public:
  explicit Mean(std::string name = "mean") : Metric(std::move(name)) {}
  void update(const Tensor& values, const Tensor& sample_weight = Tensor()) { accumulate(values, sample_weight); }
  /// Metric interface: accumulates y_pred (y_true is ignored).
  void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight = Tensor()) override {
    update(y_pred, sample_weight);
  }
};

/// The mean of a per-example function of (y_true, y_pred), e.g. an accuracy or a loss.
class MeanMetricWrapper : public Metric {
 public:
  using Fn = std::function<Tensor(const Tensor&, const Tensor&)>;
  MeanMetricWrapper(std::string name, Fn fn) : Metric(std::move(name)), fn_(std::move(fn)) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight = Tensor()) override;

 private:
  Fn fn_;
};

/// Fraction of predictions equal to the targets.
std::shared_ptr<Metric> Accuracy(std::string name = "accuracy");
/// Fraction of predictions on the right side of `threshold` (y_pred > threshold vs y_true).
std::shared_ptr<Metric> BinaryAccuracy(std::string name = "binary_accuracy", double threshold = 0.5);
/// Fraction where argmax(y_pred) equals argmax(y_true) (one-hot targets).
std::shared_ptr<Metric> CategoricalAccuracy(std::string name = "categorical_accuracy");
/// Fraction where argmax(y_pred) equals the integer class id y_true.
std::shared_ptr<Metric> SparseCategoricalAccuracy(std::string name = "sparse_categorical_accuracy");
std::shared_ptr<Metric> MeanSquaredError(std::string name = "mean_squared_error");
std::shared_ptr<Metric> MeanAbsoluteError(std::string name = "mean_absolute_error");

/// A metric by Keras' name: "mse", "mae", "accuracy"/"acc" (resolved from `accuracy_kind`:
/// "binary", "categorical", "sparse", or "" for exact equality), "binary_accuracy",
/// "categorical_accuracy", "sparse_categorical_accuracy". InvalidArgument for another name.
std::shared_ptr<Metric> get(const std::string& name, const std::string& accuracy_kind = "");

}  // namespace kiln::nn::metrics
