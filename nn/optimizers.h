// Optimizers (Keras' tf.keras.optimizers) and learning-rate schedules. The learning rate, the
// step counter and every slot are variables, so a traced training step reads their current
// values on each call.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ops/variable.h"

namespace kiln::nn::optim {

/// A learning rate as a function of the step (an int64 scalar tensor, 0 for the first update),
/// written with ops so it runs inside traced training steps.
class LearningRateSchedule {
 public:
  virtual ~LearningRateSchedule() = default;
  /// The learning rate (a float32 scalar) at `step`.
  virtual Tensor operator()(const Tensor& step) const = 0;
};

/// initial * decay_rate ^ (step / decay_steps), the exponent floored with `staircase`.
class ExponentialDecay : public LearningRateSchedule {
 public:
  /// Throws InvalidArgument for decay_steps <= 0.
  ExponentialDecay(double initial_learning_rate, int64_t decay_steps, double decay_rate, bool staircase = false);
  Tensor operator()(const Tensor& step) const override;

 private:
  double initial_, rate_;
  int64_t steps_;
  bool staircase_;
};

/// values[i] while step <= boundaries[i] (values[0] up to boundaries[0], ..., the last value
/// after the last boundary). Throws InvalidArgument unless values has one more entry than
/// boundaries and the boundaries increase.
class PiecewiseConstantDecay : public LearningRateSchedule {
 public:
  PiecewiseConstantDecay(std::vector<int64_t> boundaries, std::vector<double> values);
  Tensor operator()(const Tensor& step) const override;

 private:
  std::vector<int64_t> boundaries_;
  std::vector<double> values_;
};

/// A learning rate: a constant (kept in a variable that `set_learning_rate` changes between
/// calls) or a schedule.
struct LearningRate {
  double value = 0.001;
  std::shared_ptr<const LearningRateSchedule> schedule;
  LearningRate(double v) : value(v) {}  // NOLINT
  LearningRate(float v) : value(v) {}   // NOLINT
  template <class S>
  requires std::is_base_of_v<LearningRateSchedule, S> LearningRate(S s)  // NOLINT
      : schedule(std::make_shared<S>(std::move(s))) {}
  LearningRate(std::shared_ptr<const LearningRateSchedule> s) : schedule(std::move(s)) {}  // NOLINT
};

/// The variables to update: a braced list `{w, b}` or a vector such as trainable_variables().
/// It holds the variables themselves (a `std::vector<Variable>` built from a braced list would
/// copy them into new variables).
class VariableList {
 public:
  VariableList(std::initializer_list<std::reference_wrapper<const Variable>> vars);  // NOLINT
  VariableList(const std::vector<Variable>& vars);                                   // NOLINT
  size_t size() const { return vars_.size(); }
  const Variable& operator[](size_t i) const { return vars_[i]; }
  const std::vector<Variable>& vars() const { return vars_; }

 private:
  std::vector<Variable> vars_;  // handles sharing the caller's variables
};

/// The optimizer base: `apply_gradients` updates variables from gradients, adds 1 to
/// `iterations`, and keeps per-variable slots (momentum, moments...) created on first use.
class Optimizer {
 public:
  Optimizer(std::string name, LearningRate lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Applies one update. Undefined gradients (None) leave their variable alone. Throws
  /// InvalidArgument if the lists differ in length or a gradient's shape or dtype does not
  /// match its variable. Works eagerly and inside traces; slots are created eagerly (call
  /// `build` first in traced code that runs more than one trace).
  void apply_gradients(const std::vector<Tensor>& grads, const VariableList& vars);
  /// Creates the slots of these variables now (eagerly).
  void build(const VariableList& vars);
  /// The learning rate used by the next update (float32 scalar).
  Tensor learning_rate() const;
  /// Sets a constant learning rate (InvalidArgument for an optimizer with a schedule).
  void set_learning_rate(double lr);
  /// Number of updates applied (an int64 variable).
  const Variable& iterations() const { return iterations_; }
  const std::string& name() const { return name_; }
  /// Every variable the optimizer owns: iterations, the learning rate and the slots, named like
  /// "SGD/iterations", "SGD/m/dense/kernel".
  std::vector<std::pair<std::string, Variable>> variables() const;

  /// A per-variable slot: the variable it belongs to, the slot's name ("m") and the slot.
  struct SlotVariable {
    std::shared_ptr<VariableImpl> owner;
    std::string slot;
    Variable variable;
  };
  /// Every slot created so far, ordered by slot name and then by the owner's name.
  std::vector<SlotVariable> slot_variables() const;
  /// Sets slot `slot` of `var` to `value`: now if the slot exists, else when it is created
  /// (checkpoints restore optimizer state before the first update this way). Throws
  /// InvalidArgument when `value`'s dtype or shape differs from `var`'s.
  void restore_slot(const Variable& var, const std::string& slot, const Tensor& value);

 protected:
  /// Updates one variable from its gradient with learning rate `lr` (float32 scalar, cast to the
  /// variable's dtype by the caller) and `step` (float32 scalar, 1 for the first update).
  virtual void update(const Variable& var, const Tensor& grad, const Tensor& lr, const Tensor& step) = 0;
  /// The names of the slots this optimizer keeps per variable.
  virtual std::vector<std::string> slot_names() const { return {}; }
  /// The slot `slot` of `var` (created as zeros when missing).
  const Variable& slot(const Variable& var, const std::string& slot);

 private:
  std::string name_;
  std::shared_ptr<const LearningRateSchedule> schedule_;
  Variable lr_, iterations_;
  std::map<std::pair<const VariableImpl*, std::string>, std::pair<std::string, Variable>> slots_;
  std::vector<std::shared_ptr<VariableImpl>> slot_owners_;  // keeps slot keys valid
  std::map<std::pair<const VariableImpl*, std::string>, Tensor> deferred_slots_;  // restored before creation
};

/// Options of SGD.
struct SGDOptions {
  double momentum = 0.0;
  bool nesterov = false;
};
/// Gradient descent: w -= lr * g; with momentum v = momentum * v - lr * g, then w += v (or
/// w += momentum * v - lr * g with Nesterov), as Keras.
class SGD : public Optimizer {
 public:
  explicit SGD(LearningRate lr = 0.01, SGDOptions options = {});

 protected:
  void update(const Variable& var, const Tensor& grad, const Tensor& lr, const Tensor& step) override;
  std::vector<std::string> slot_names() const override;

 private:
  SGDOptions options_;
};

/// Options of Adam and AdamW.
struct AdamOptions {
  double beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7;
  bool amsgrad = false;
};
/// Adam: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
/// w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps).
class Adam : public Optimizer {
 public:
  explicit Adam(LearningRate lr = 0.001, AdamOptions options = {});

 protected:
  Adam(std::string name, LearningRate lr, AdamOptions options);
  void update(const Variable& var, const Tensor& grad, const Tensor& lr, const Tensor& step) override;
  std::vector<std::string> slot_names() const override;
  AdamOptions options_;
};

/// Adam with decoupled weight decay: w -= lr * weight_decay * w before the Adam step.
class AdamW : public Adam {
 public:
  explicit AdamW(LearningRate lr = 0.001, double weight_decay = 0.004, AdamOptions options = {});

 protected:
  void update(const Variable& var, const Tensor& grad, const Tensor& lr, const Tensor& step) override;

 private:
  double weight_decay_;
};

/// Options of RMSprop.
struct RMSpropOptions {
  double rho = 0.9, momentum = 0.0, epsilon = 1e-7;
  bool centered = false;
};
/// RMSprop as Keras computes it: v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps) (centered:
/// sqrt(v - mg^2 + eps) with mg = rho mg + (1 - rho) g; with momentum the increment goes through
/// a slot: mom = momentum mom + increment, w -= mom).
class RMSprop : public Optimizer {
 public:
  explicit RMSprop(LearningRate lr = 0.001, RMSpropOptions options = {});

 protected:
  void update(const Variable& var, const Tensor& grad, const Tensor& lr, const Tensor& step) override;
  std::vector<std::string> slot_names() const override;

 private:
  RMSpropOptions options_;
};

}  // namespace kiln::nn::optim
