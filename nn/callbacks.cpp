// EarlyStopping.
#include "nn/callbacks.h"

#include <cmath>

#include "nn/model.h"

namespace kiln::nn {

EarlyStopping::EarlyStopping(EarlyStoppingOptions options) : options_(std::move(options)) {
  if (options_.mode != "auto" && options_.mode != "min" && options_.mode != "max")
    fail<InvalidArgument>("EarlyStopping", "mode must be auto, min or max, got '", options_.mode, "'");
  if (options_.patience < 0) fail<InvalidArgument>("EarlyStopping", "patience must be >= 0, got ", options_.patience);
  maximize_ = options_.mode == "max" || (options_.mode == "auto" && options_.monitor.find("acc") != std::string::npos);
}

bool EarlyStopping::improved(double current, double reference) const {
  double d = std::fabs(options_.min_delta);
  return maximize_ ? current - d > reference : current + d < reference;
}

void EarlyStopping::on_train_begin(const Logs&) {
  wait_ = 0;
  stopped_epoch_ = -1;
  best_epoch_ = -1;
  have_best_ = options_.baseline.has_value();
  best_ = options_.baseline.value_or(0);
  best_weights_.clear();
}

void EarlyStopping::on_epoch_end(int64_t epoch, const Logs& logs) {
  auto it = logs.find(options_.monitor);
  if (it == logs.end()) {
    std::string known;
    for (auto& [k, v] : logs) known += (known.empty() ? "" : ", ") + k;
    fail<InvalidArgument>("EarlyStopping", "the monitored value '", options_.monitor, "' is not in the logs (", known,
                          ")");
  }
  const double current = it->second;
  ++wait_;
  if (!have_best_ || improved(current, best_)) {
    best_ = current;
    have_best_ = true;
    best_epoch_ = epoch;
    if (options_.restore_best_weights && model) {
      best_weights_.clear();
      for (auto& v : model->variables()) best_weights_.push_back(v.read_value());
    }
    wait_ = 0;
    return;
  }
  // as Keras: stop once `patience` epochs in a row brought no improvement
  if (wait_ >= options_.patience && epoch > 0) {
    stopped_epoch_ = epoch;
    if (model) model->stop_training = true;
    if (options_.restore_best_weights && model && !best_weights_.empty()) {
      auto vars = model->variables();
      for (size_t i = 0; i < vars.size() && i < best_weights_.size(); ++i) vars[i].assign(best_weights_[i]);
    }
  }
}

void EarlyStopping::on_train_end(const Logs&) {}

}  // namespace kiln::nn
