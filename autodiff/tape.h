// GradientTape: records eager ops while it is alive and differentiates them (TensorFlow's
// tf.GradientTape). A tape is a dispatch level, so recording costs nothing for ops that do not
// touch a watched tensor or a trainable variable.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ops/dispatch.h"
#include "ops/variable.h"

namespace kiln {

namespace autodiff {
struct TapeAccess;  // custom_gradient's view of the tapes (autodiff/custom_gradient.cpp)
}

/// What `gradient` returns for a source the target does not depend on.
enum class UnconnectedGradients { None, Zero };

/// A differentiation source: a tensor, or a variable (whose gradient sums over every read of it).
class Source {
 public:
  Source(const Tensor& t) : tensor_(t) {}               // NOLINT
  Source(const Variable& v) : variable_(v.handle()) {}  // NOLINT
  const Tensor& tensor() const { return tensor_; }
  const std::shared_ptr<VariableImpl>& variable() const { return variable_; }

 private:
  Tensor tensor_;
  std::shared_ptr<VariableImpl> variable_;
};

/// Records the ops run while it exists (it is active from construction to destruction, or until
/// `stop_recording`/`gradient` on a non-persistent tape) and computes gradients of recorded
/// results with respect to watched tensors and variables.
///
///   GradientTape tape;
///   Tensor y = x * x;                       // x watched with tape.watch(x), or a Variable
///   Tensor dy_dx = tape.gradient(y, x);
///
/// Tapes nest (an outer tape records the inner tape's backward pass, giving higher-order
/// gradients). A tape belongs to the thread that made it.
class GradientTape {
 public:
  explicit GradientTape(bool persistent = false, bool watch_accessed_variables = true);
  ~GradientTape();
  GradientTape(const GradientTape&) = delete;
  GradientTape& operator=(const GradientTape&) = delete;

  /// Watches a tensor: results computed from it become differentiable with respect to it.
  /// Non-floating tensors are ignored with a warning in the log.
  void watch(const Tensor& t);
  /// Watches a variable (also when it is not trainable, or automatic watching is off).
  void watch(const Variable& v);
  /// The variables watched so far, in the order they were first read or watched.
  std::vector<Variable> watched_variables() const;

  /// d(target)/d(source). A non-scalar target (or several) is summed first. Unconnected sources
  /// give an undefined tensor (prints None) or zeros with UnconnectedGradients::Zero. Throws
  /// FailedPrecondition for a second call on a non-persistent tape and LookupError for an op
  /// without a gradient rule.
  Tensor gradient(const Tensor& target, const Source& source,
                  UnconnectedGradients unconnected = UnconnectedGradients::None);
  std::vector<Tensor> gradient(const Tensor& target, const std::vector<Source>& sources,
                               UnconnectedGradients unconnected = UnconnectedGradients::None);
  /// `tape.gradient(loss, {w, b})`: a braced list of sources.
  std::vector<Tensor> gradient(const Tensor& target, std::initializer_list<Source> sources,
                               UnconnectedGradients unconnected = UnconnectedGradients::None) {
    return gradient(target, std::vector<Source>(sources), unconnected);
  }
  /// Gradients keyed like `sources`.
  std::map<std::string, Tensor> gradient(const Tensor& target, const std::map<std::string, Source>& sources,
                                         UnconnectedGradients unconnected = UnconnectedGradients::None);
  /// Gradients of the sum of several targets.
  std::vector<Tensor> gradient(const std::vector<Tensor>& targets, const std::vector<Source>& sources,
                               UnconnectedGradients unconnected = UnconnectedGradients::None);

  /// The vector-Jacobian product: gradients of the targets weighted by `output_gradients` (one
  /// per target with its dtype and shape; an undefined entry stands for ones). Throws
  /// InvalidArgument for a count, dtype or shape mismatch.
  std::vector<Tensor> gradient(const std::vector<Tensor>& targets, const std::vector<Source>& sources,
                               const std::vector<Tensor>& output_gradients,
                               UnconnectedGradients unconnected = UnconnectedGradients::None);

  /// The Jacobian of `target` with respect to `source`: shape target.shape + source.shape.
  Tensor jacobian(const Tensor& target, const Source& source,
                  UnconnectedGradients unconnected = UnconnectedGradients::None);
  /// For target [B, ...] and source [B, ...] where row b of target depends only on row b of
  /// source: the per-example Jacobians, shape [B] + target.shape[1:] + source.shape[1:].
  Tensor batch_jacobian(const Tensor& target, const Tensor& source,
                        UnconnectedGradients unconnected = UnconnectedGradients::None);

  /// Pauses recording for its lifetime (TensorFlow's `with tape.stop_recording():`).
  class StopRecording {
   public:
    explicit StopRecording(GradientTape& tape) : tape_(tape), was_(tape.recording_) { tape.recording_ = false; }
    ~StopRecording() { tape_.recording_ = was_; }
    StopRecording(const StopRecording&) = delete;
    StopRecording& operator=(const StopRecording&) = delete;

   private:
    GradientTape& tape_;
    bool was_;
  };
  StopRecording stop_recording() { return StopRecording(*this); }
  /// Forgets everything recorded and watched; recording goes on.
  void reset();

  bool persistent() const { return persistent_; }
  /// Number of ops recorded so far.
  size_t num_recorded() const { return entries_.size(); }

 private:
  friend struct autodiff::TapeAccess;
  class Recorder;
  // A custom_gradient step's backward: upstream gradients of its outputs to input gradients.
  using CustomBackward = std::function<std::vector<Tensor>(std::span<const Tensor> grads)>;
  struct Entry {
    const ops::OpDef* def;  // nullptr for a custom_gradient step
    ops::Attrs attrs;
    std::vector<Tensor> inputs, outputs;
    std::shared_ptr<const CustomBackward> custom;
  };
  void record(const ops::OpDef& def, const ops::Attrs& attrs, std::span<const Tensor> inputs,
              const ops::TensorList& outputs);
  // Records one custom_gradient step (when an input is tracked).
  void record_custom(std::span<const Tensor> inputs, std::span<const Tensor> outputs,
                     std::shared_ptr<const CustomBackward> backward);
  // The tape whose dispatch level `level` is, or nullptr.
  static GradientTape* tape_of(ops::Level* level);
  void on_variable_read(VariableImpl& var, const Tensor& value);
  bool is_tracked(const Tensor& t) const;
  std::vector<Tensor> compute(const std::vector<Tensor>& targets, const std::vector<Source>& sources,
                              UnconnectedGradients unconnected);
  // One reverse sweep seeded with `seeds` (ones when empty) for each target.
  std::vector<Tensor> sweep(const std::vector<Tensor>& targets, const std::vector<Tensor>& seeds,
                            const std::vector<Source>& sources, UnconnectedGradients unconnected);
  void begin_use();
  void end_use();

  bool persistent_;
  bool watch_accessed_variables_;
  bool recording_ = true;
  bool used_ = false;
  std::vector<Entry> entries_;
  std::unordered_set<const TensorImpl*> tracked_;
  std::vector<Tensor> watched_tensors_;  // keeps watched tensors (and their addresses) alive
  std::vector<std::shared_ptr<VariableImpl>> watched_vars_;
  std::unordered_map<const VariableImpl*, std::vector<Tensor>> var_reads_;
  std::unique_ptr<Recorder> level_;
  std::unique_ptr<ops::LevelScope> scope_;
};

}  // namespace kiln
