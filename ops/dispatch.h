// The dispatch point every op goes through (ops::apply) and the level stack that lets a trace
// or a gradient tape intercept ops without any op knowing about them (DESIGN.md §2, Levels).
#pragma once

#include <span>

#include "ops/op_def.h"

namespace kiln {
class VariableImpl;
}

namespace kiln::ops {

/// A dispatch level: the eager base is implicit; tapes and traces push levels on a thread-local
/// stack. The innermost level gets every op first and may hand it to the level below.
class Level {
 public:
  Level();
  virtual ~Level();
  Level(const Level&) = delete;
  Level& operator=(const Level&) = delete;

  /// Handles one op whose output types are already inferred.
  virtual TensorList process(const OpDef& def, const Attrs& attrs, std::span<const Tensor> inputs,
                             const TypeList& types) = 0;
  /// Produces the tensor a variable read yields at this level; the default asks the level below.
  virtual Tensor read_variable(VariableImpl& var);
  /// Assigns a checked value to a variable; the default asks the level below (the eager base
  /// writes the variable's buffer).
  virtual void assign_variable(VariableImpl& var, const Tensor& value);
  /// Told when a variable is created while this level is active (a trace may refuse it); the
  /// default asks the level below.
  virtual void variable_created(VariableImpl& var);
  /// True for trace levels (functions called under a trace inline into it).
  virtual bool is_trace() const { return false; }
  /// True for levels that record ops for differentiation right now (a recording tape).
  virtual bool records_gradients() const { return false; }

  /// A unique, never-reused id (tensors made by this level carry it).
  uint64_t id() const { return id_; }
  /// The level below this one while it is active (nullptr: the eager base).
  Level* below() const { return below_; }

 protected:
  /// Runs the op at the level below this one (eventually the eager kernels).
  TensorList process_below(const OpDef& def, const Attrs& attrs, std::span<const Tensor> inputs, const TypeList& types);
  Tensor read_variable_below(VariableImpl& var);
  void assign_variable_below(VariableImpl& var, const Tensor& value);

 private:
  friend class LevelScope;
  uint64_t id_;
  Level* below_ = nullptr;
  bool active_ = false;
};

/// Makes `level` the innermost level of this thread for the scope's lifetime. Scopes must nest.
class LevelScope {
 public:
  explicit LevelScope(Level& level);
  ~LevelScope();
  LevelScope(const LevelScope&) = delete;
  LevelScope& operator=(const LevelScope&) = delete;

 private:
  Level& level_;
};

/// Hides every active level of this thread for its lifetime, so ops run eagerly even inside a
/// trace (TensorFlow's init_scope): variable initializers, values computed once at trace time.
class EagerScope {
 public:
  EagerScope();
  ~EagerScope();
  EagerScope(const EagerScope&) = delete;
  EagerScope& operator=(const EagerScope&) = delete;

 private:
  Level* saved_;
};

/// The innermost active level of this thread, or nullptr when only the eager base is active.
Level* current_level();
/// True when a trace level is active on this thread.
bool tracing();
/// True when some active level of this thread records gradients.
bool recording_gradients();
/// True if the level with this id is active on this thread.
bool level_active(uint64_t id);

/// Applies an op: infers output types (throwing on bad input), then lets the innermost level
/// handle it. Undefined (None) or leaked symbolic inputs throw InvalidArgument.
TensorList apply(OpId id, const Attrs& attrs, std::span<const Tensor> inputs);
/// apply() for ops with exactly one output.
Tensor apply1(OpId id, const Attrs& attrs, std::span<const Tensor> inputs);
inline Tensor apply1(OpId id, std::initializer_list<Tensor> inputs, const Attrs& attrs = {}) {
  return apply1(id, attrs, std::span<const Tensor>(inputs.begin(), inputs.size()));
}

/// Runs the eager kernel for the inputs' device (the base level).
TensorList execute_eager(const OpDef& def, const Attrs& attrs, std::span<const Tensor> inputs, const TypeList& types);

/// Reads a variable's value through the level stack (trace levels return symbolic reads).
Tensor read_variable(VariableImpl& var);
/// Assigns through the level stack (traces record the write as an effect).
void assign_variable(VariableImpl& var, const Tensor& value);

}  // namespace kiln::ops
