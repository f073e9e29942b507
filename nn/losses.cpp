// The loss functions, written with ops (so they trace and differentiate like any op).
#include "nn/losses.h"

#include "nn/layer.h"

namespace kiln::nn::losses {
namespace {

constexpr double kEpsilon = 1e-7;

Tensor c(const Tensor& like, double v) { return scalar_of(std::complex<double>(v), like.dtype(), "losses"); }

// y_true cast to y_pred's dtype, shapes checked
Tensor prepare(std::string_view name, const Tensor& y_true, const Tensor& y_pred) {
  if (!y_true.defined() || !y_pred.defined()) fail<InvalidArgument>(name, "y_true and y_pred must be defined");
  if (!is_floating(y_pred.dtype()))
    fail<InvalidArgument>(name, "y_pred must be floating point, got ", dtype_name(y_pred.dtype()));
  if (y_true.ndim() != y_pred.ndim())
    fail<InvalidArgument>(name, "y_true and y_pred must have the same rank, got shapes ", shape_string(y_true.shape()),
                          " and ", shape_string(y_pred.shape()));
  for (int64_t i = 0; i < y_true.ndim(); ++i) {
    int64_t a = y_true.shape().dim(size_t(i)), b = y_pred.shape().dim(size_t(i));
    if (a >= 0 && b >= 0 && a != b)
      fail<InvalidArgument>(name, "y_true and y_pred must have the same shape, got ", shape_string(y_true.shape()),
                            " and ", shape_string(y_pred.shape()));
  }
  return y_true.dtype() == y_pred.dtype() ? y_true : cast(y_true, y_pred.dtype());
}

Tensor mean_last(const Tensor& t) { return t.ndim() == 0 ? t : reduce_mean(t, -1); }

}  // namespace

Tensor mean_squared_error(const Tensor& y_true, const Tensor& y_pred) {
  Tensor t = prepare("mean_squared_error", y_true, y_pred);
  return mean_last(square(y_pred - t));
}

Tensor mean_absolute_error(const Tensor& y_true, const Tensor& y_pred) {
  Tensor t = prepare("mean_absolute_error", y_true, y_pred);
  return mean_last(abs(y_pred - t));
}

Tensor binary_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits) {
  Tensor t = prepare("binary_crossentropy", y_true, y_pred);
  Tensor loss;
  if (from_logits) {
    // max(x, 0) - x * t + log(1 + exp(-|x|)): no overflow for large |x|
    const Tensor& x = y_pred;
    loss = relu(x) - x * t + log1p(exp(negative(abs(x))));
  } else {
    Tensor p = clip(y_pred, kEpsilon, 1 - kEpsilon);
    loss = negative(t * log(p + c(p, kEpsilon)) + (c(t, 1) - t) * log(c(p, 1) - p + c(p, kEpsilon)));
  }
  return mean_last(loss);
}

Tensor categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits) {
  Tensor t = prepare("categorical_crossentropy", y_true, y_pred);
  if (y_pred.ndim() < 1) fail<InvalidArgument>("categorical_crossentropy", "y_pred must have a class axis");
  if (from_logits) return negative(reduce_sum(t * log_softmax(y_pred, -1), -1));
  Tensor p = y_pred / reduce_sum(y_pred, -1, true);
  p = clip(p, kEpsilon, 1 - kEpsilon);
  return negative(reduce_sum(t * log(p), -1));
}

Tensor sparse_categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits) {
  constexpr std::string_view kName = "sparse_categorical_crossentropy";
  if (!y_true.defined() || !y_pred.defined()) fail<InvalidArgument>(kName, "y_true and y_pred must be defined");
  if (y_pred.ndim() < 1) fail<InvalidArgument>(kName, "y_pred must have a class axis, got a scalar");
  if (!is_floating(y_pred.dtype()))
    fail<InvalidArgument>(kName, "y_pred must be floating point, got ", dtype_name(y_pred.dtype()));
  Tensor ids = y_true;
  if (ids.ndim() == y_pred.ndim() && ids.ndim() > 0 && ids.shape().dim(size_t(ids.ndim() - 1)) == 1)
    ids = squeeze(ids, {ids.ndim() - 1});
  if (ids.ndim() != y_pred.ndim() - 1)
    fail<InvalidArgument>(kName, "y_true must hold one class id per example: shape ", shape_string(y_true.shape()),
                          " does not fit y_pred's shape ", shape_string(y_pred.shape()));
  const int64_t classes = y_pred.shape().dim(size_t(y_pred.ndim() - 1));
  if (classes < 0) fail<InvalidArgument>(kName, "the class axis of y_pred must be known");
  if (!ids.is_symbolic()) {
    // an id outside [0, classes) would silently give an all-zero one-hot row
    Tensor bad = logical_or(less(cast(ids, int64), scalar<int64_t>(0)), greater_equal(cast(ids, int64), scalar<int64_t>(classes)));
    if (reduce_any(bad).item<bool>())
      fail<InvalidArgument>(kName, "class ids must be in [0, ", classes, "), but y_true holds one outside it");
  }
  if (is_floating(ids.dtype())) ids = cast(ids, int64);
  Tensor onehot = one_hot(ids, classes, 1, 0, -1, y_pred.dtype());
  if (from_logits) return negative(reduce_sum(onehot * log_softmax(y_pred, -1), -1));
  Tensor p = y_pred / reduce_sum(y_pred, -1, true);
  p = clip(p, kEpsilon, 1 - kEpsilon);
  return negative(reduce_sum(onehot * log(p), -1));
}

Loss::Loss(const std::string& name) {
  if (name == "mse" || name == "mean_squared_error") {
    *this = MeanSquaredError();
  } else if (name == "mae" || name == "mean_absolute_error") {
    *this = MeanAbsoluteError();
  } else if (name == "binary_crossentropy") {
    *this = BinaryCrossentropy();
  } else if (name == "categorical_crossentropy") {
    *this = CategoricalCrossentropy();
  } else if (name == "sparse_categorical_crossentropy") {
    *this = SparseCategoricalCrossentropy();
  } else {
    fail<InvalidArgument>("losses", "unknown loss '", name,
                          "'; known: mse, mae, binary_crossentropy, categorical_crossentropy, "
                          "sparse_categorical_crossentropy");
  }
}

Tensor Loss::per_example(const Tensor& y_true, const Tensor& y_pred) const {
  // rank-1 predictions are one value per example: give them a last axis so that functions that
  // average over it keep one loss per example
  Tensor l = y_pred.ndim() == 1 && y_true.ndim() == 1 ? reshape(fn_(expand_dims(y_true, -1), expand_dims(y_pred, -1)), {-1})
                                                      : fn_(y_true, y_pred);
  // a per-element result of a custom function: average everything but the batch axis
  if (l.ndim() > 1) {
    std::vector<int64_t> axes;
    for (int64_t i = 1; i < l.ndim(); ++i) axes.push_back(i);
    l = reduce_mean(l, axes);
  }
  return l;
}

Tensor Loss::operator()(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) const {
  Tensor l = per_example(y_true, y_pred);
  if (!sample_weight.defined()) return reduce_mean(l);
  Tensor w = sample_weight.dtype() == l.dtype() ? sample_weight : cast(sample_weight, l.dtype());
  if (w.ndim() != l.ndim())
    fail<InvalidArgument>(name_, "sample_weight must have one weight per example: shape ", shape_string(w.shape()),
                          " for losses of shape ", shape_string(l.shape()));
  return reduce_sum(l * w) / cast(size(l), l.dtype());
}

Loss MeanSquaredError() { return Loss("mean_squared_error", mean_squared_error); }
Loss MeanAbsoluteError() { return Loss("mean_absolute_error", mean_absolute_error); }
Loss BinaryCrossentropy(bool from_logits) {
  Loss l("binary_crossentropy",
         [from_logits](const Tensor& t, const Tensor& p) { return binary_crossentropy(t, p, from_logits); });
  l.accuracy_kind_ = "binary";
  return l;
}
Loss CategoricalCrossentropy(bool from_logits) {
  Loss l("categorical_crossentropy",
         [from_logits](const Tensor& t, const Tensor& p) { return categorical_crossentropy(t, p, from_logits); });
  l.accuracy_kind_ = "categorical";
  return l;
}
Loss SparseCategoricalCrossentropy(bool from_logits) {
  Loss l("sparse_categorical_crossentropy", [from_logits](const Tensor& t, const Tensor& p) {
    return sparse_categorical_crossentropy(t, p, from_logits);
  });
  l.accuracy_kind_ = "sparse";
  return l;
}

}  // namespace kiln::nn::losses
