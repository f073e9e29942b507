// Metric state as variables, and the accuracy variants.
#include "nn/metrics.h"

#include "nn/losses.h"
#include "ops/dispatch.h"

namespace kiln::nn::metrics {

Metric::Metric(std::string name) : name_(std::move(name)) {
  // state variables are made eagerly even when a metric is created during a trace
  ops::EagerScope eager;
  total_ = Variable(scalar<float>(0), name_ + "/total", false);
  count_ = Variable(scalar<float>(0), name_ + "/count", false);
}

Tensor Metric::result() const {
  Tensor c = count_.read_value();
  return where(greater(c, scalar<float>(0)), total_.read_value() / maximum(c, scalar<float>(1e-30f)), scalar<float>(0));
}

void Metric::reset_state() {
  total_.assign(scalar<float>(0));
  count_.assign(scalar<float>(0));
}

void Metric::accumulate(const Tensor& values, const Tensor& sample_weight) {
  Tensor v = values.dtype() == float32 ? values : cast(values, float32);
  if (!sample_weight.defined()) {
    total_.assign_add(reduce_sum(v));
    count_.assign_add(cast(size(v), float32));
    return;
  }
  Tensor w = sample_weight.dtype() == float32 ? sample_weight : cast(sample_weight, float32);
  // one weight per example: broadcast it over the remaining axes of the values
  while (w.ndim() < v.ndim()) w = expand_dims(w, -1);
  Tensor wb = w * ones_like(v);
  total_.assign_add(reduce_sum(v * wb));
  count_.assign_add(reduce_sum(wb));
}

void MeanMetricWrapper::update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) {
  accumulate(fn_(y_true, y_pred), sample_weight);
}

namespace {
Tensor as_float(const Tensor& t) { return t.dtype() == float32 ? t : cast(t, float32); }
}  // namespace

std::shared_ptr<Metric> Accuracy(std::string name) {
  return std::make_shared<MeanMetricWrapper>(std::move(name), [](const Tensor& t, const Tensor& p) {
    Tensor tt = t.dtype() == p.dtype() ? t : cast(t, p.dtype());
    return as_float(equal(tt, p));
  });
}

std::shared_ptr<Metric> BinaryAccuracy(std::string name, double threshold) {
  return std::make_shared<MeanMetricWrapper>(std::move(name), [threshold](const Tensor& t, const Tensor& p) {
    Tensor pred = as_float(greater(as_float(p), scalar<float>(float(threshold))));
    Tensor acc = as_float(equal(as_float(t), pred));
    return acc.ndim() > 1 ? reduce_mean(acc, -1) : acc;
  });
}

std::shared_ptr<Metric> CategoricalAccuracy(std::string name) {
  return std::make_shared<MeanMetricWrapper>(std::move(name), [](const Tensor& t, const Tensor& p) {
    return as_float(equal(argmax(t, -1), argmax(p, -1)));
  });
}

std::shared_ptr<Metric> SparseCategoricalAccuracy(std::string name) {
  return std::make_shared<MeanMetricWrapper>(std::move(name), [](const Tensor& t, const Tensor& p) {
    Tensor ids = t;
    if (ids.ndim() == p.ndim() && ids.ndim() > 0) ids = squeeze(ids, {ids.ndim() - 1});
    return as_float(equal(cast(ids, int64), argmax(p, -1)));
  });
}

std::shared_ptr<Metric> MeanSquaredError(std::string name) {
  return std::make_shared<MeanMetricWrapper>(std::move(name), losses::mean_squared_error);
}

std::shared_ptr<Metric> MeanAbsoluteError(std::string name) {
  return std::make_shared<MeanMetricWrapper>(std::move(name), losses::mean_absolute_error);
}

std::shared_ptr<Metric> get(const std::string& name, const std::string& accuracy_kind) {
  if (name == "mse" || name == "mean_squared_error") return MeanSquaredError(name);
  if (name == "mae" || name == "mean_absolute_error") return MeanAbsoluteError(name);
  if (name == "accuracy" || name == "acc") {
    if (accuracy_kind == "binary") return BinaryAccuracy(name);
    if (accuracy_kind == "categorical") return CategoricalAccuracy(name);
    if (accuracy_kind == "sparse") return SparseCategoricalAccuracy(name);
    return Accuracy(name);
  }
  if (name == "binary_accuracy") return BinaryAccuracy();
  if (name == "categorical_accuracy") return CategoricalAccuracy();
  if (name == "sparse_categorical_accuracy") return SparseCategoricalAccuracy();
  fail<InvalidArgument>("metrics", "unknown metric '", name,
                        "'; known: mse, mae, accuracy, binary_accuracy, categorical_accuracy, "
                        "sparse_categorical_accuracy");
}

}  // namespace kiln::nn::metrics
