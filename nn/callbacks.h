// Training callbacks (Keras' tf.keras.callbacks): hooks fit calls around epochs and batches,
// EarlyStopping, LambdaCallback, and the History fit returns.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace kiln::nn {

class ModelImpl;

/// Metric values by name ("loss", "accuracy", "val_loss", ...).
using Logs = std::map<std::string, double>;

/// What fit returns: the epochs run and each metric's value per epoch.
struct History {
  std::vector<int64_t> epoch;
  std::map<std::string, std::vector<double>> history;
};

/// A hook into fit. `model` is set before on_train_begin.
class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(const Logs& logs) {}
  virtual void on_train_end(const Logs& logs) {}
  virtual void on_epoch_begin(int64_t epoch, const Logs& logs) {}
  virtual void on_epoch_end(int64_t epoch, const Logs& logs) {}
  virtual void on_train_batch_begin(int64_t batch, const Logs& logs) {}
  virtual void on_train_batch_end(int64_t batch, const Logs& logs) {}
  ModelImpl* model = nullptr;
};

/// Options of EarlyStopping (Keras' names and defaults).
struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  /// Changes smaller than this do not count as improvements.
  double min_delta = 0;
  /// Epochs without improvement before stopping.
  int64_t patience = 0;
  /// "min", "max", or "auto" (max for names containing "acc", else min).
  std::string mode = "auto";
  std::optional<double> baseline{};
  /// Puts back the weights of the best epoch when training stops.
  bool restore_best_weights = false;
};

/// Stops training when the monitored value stops improving. A missing monitored value is an
/// InvalidArgument naming the available ones.
class EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(EarlyStoppingOptions options = {});
  void on_train_begin(const Logs& logs) override;
  void on_epoch_end(int64_t epoch, const Logs& logs) override;
  void on_train_end(const Logs& logs) override;
  /// The epoch training stopped at (0-based), or -1.
  int64_t stopped_epoch() const { return stopped_epoch_; }
  int64_t best_epoch() const { return best_epoch_; }

 private:
  bool improved(double current, double reference) const;
  EarlyStoppingOptions options_;
  bool maximize_ = false;
  int64_t wait_ = 0, stopped_epoch_ = -1, best_epoch_ = -1;
  double best_ = 0;
  bool have_best_ = false;
  std::vector<Tensor> best_weights_;
};

/// A callback from functions (each may be empty).
class LambdaCallback : public Callback {
 public:
  std::function<void(int64_t epoch, const Logs&)> epoch_begin, epoch_end;
  std::function<void(int64_t batch, const Logs&)> batch_begin, batch_end;
  std::function<void(const Logs&)> train_begin, train_end;
  void on_train_begin(const Logs& l) override {
    if (train_begin) train_begin(l);
  }
  void on_train_end(const Logs& l) override {
    if (train_end) train_end(l);
  }
  void on_epoch_begin(int64_t e, const Logs& l) override {
    if (epoch_begin) epoch_begin(e, l);
  }
  void on_epoch_end(int64_t e, const Logs& l) override {
    if (epoch_end) epoch_end(e, l);
  }
  void on_train_batch_begin(int64_t b, const Logs& l) override {
    if (batch_begin) batch_begin(b, l);
  }
  void on_train_batch_end(int64_t b, const Logs& l) override {
    if (batch_end) batch_end(b, l);
  }
};

}  // namespace kiln::nn
