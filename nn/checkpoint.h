// Checkpoints (TensorFlow's tf.train.Checkpoint): the variables of modules, optimizers and
// plain variables under TensorFlow-style keys, in one safetensors file written atomically.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"
#include "nn/optimizers.h"

namespace kiln::nn {

/// The checkpoint format version Kiln writes (metadata "kiln.checkpoint.version"); a reader
/// refuses other versions.
inline constexpr int kCheckpointVersion = 1;

/// One object a checkpoint tracks: a module (or model handle), an optimizer or a variable.
class CheckpointObject {
 public:
  CheckpointObject(std::shared_ptr<Module> m) : module_(std::move(m)) {}  // NOLINT
  template <class H>
  requires requires(const H& h) { std::shared_ptr<Module>(h.ptr()); }
  CheckpointObject(const H& holder) : module_(holder.ptr()) {}  // NOLINT
  template <class O>
  requires std::is_base_of_v<optim::Optimizer, O> CheckpointObject(std::shared_ptr<O> o)  // NOLINT
      : optimizer_(std::move(o)) {}
  CheckpointObject(const Variable& v) : variable_(v.handle()) {}  // NOLINT

  const std::shared_ptr<Module>& module() const { return module_; }
  const std::shared_ptr<optim::Optimizer>& optimizer() const { return optimizer_; }
  /// The tracked variable itself (its shared state, not a copy); undefined for a module or an
  /// optimizer.
  Variable variable() const { return Variable::from_handle(variable_); }

 private:
  std::shared_ptr<Module> module_;
  std::shared_ptr<optim::Optimizer> optimizer_;
  // the handle, not a Variable: copying a Variable copies its value into a new variable, and
  // objects are copied into the Checkpoint, which must track the caller's variable
  std::shared_ptr<VariableImpl> variable_;
};

/// What `Checkpoint::read` did.
struct CheckpointStatus {
  /// Values assigned to existing variables (and optimizer slots).
  size_t restored = 0;
  /// Values waiting for variables that do not exist yet (applied when they are created).
  size_t deferred = 0;
  /// Keys in the file that name no tracked object (an object name the checkpoint does not hold).
  std::vector<std::string> unused_keys;
  /// Keys of tracked, existing variables that the file does not hold (they keep their values).
  std::vector<std::string> missing_keys;
  /// Throws FailedPrecondition naming the keys unless every key was used and every variable
  /// found (deferred values count as used).
  void assert_consumed() const;
};

/// One entry of a checkpoint file.
struct CheckpointEntry {
  std::string key;
  DType dtype = float32;
  Shape shape;
};

/// A checkpoint of named objects, as TensorFlow's:
///
///   Checkpoint ckpt({{"model", model}, {"optimizer", opt}});
///   ckpt.write("training.ckpt");
///   ckpt.read("training.ckpt");
///
/// Keys follow TensorFlow: a module's variable "model/dense_1/kernel/.ATTRIBUTES/VARIABLE_VALUE"
/// (its registration path), an optimizer's "optimizer/iterations/.ATTRIBUTES/VARIABLE_VALUE",
/// an optimizer slot "model/dense_1/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE"
/// (under the path of the variable it belongs to), a plain variable
/// "step/.ATTRIBUTES/VARIABLE_VALUE". The file is safetensors (Python's safetensors reads it;
/// Kiln reads safetensors files from elsewhere when their keys match) with metadata
/// {"kiln.checkpoint.version": "1"}.
class Checkpoint {
 public:
  /// Throws InvalidArgument for an empty, duplicate or '/'-containing name, or an empty object.
  Checkpoint(std::vector<std::pair<std::string, CheckpointObject>> objects);

  /// Every key and value the checkpoint would write now.
  std::vector<std::pair<std::string, Tensor>> values() const;
  /// Writes the checkpoint to the file `path` atomically: a crash mid-write leaves the previous
  /// file intact. Throws as safetensors::save.
  void write(const std::string& path) const;
  /// Restores from `path`. Every value is checked before any is assigned: a value whose dtype or
  /// shape differs from its variable's throws InvalidArgument and changes nothing. Variables that
  /// do not exist yet (a model not built, optimizer slots before the first step) get their values
  /// when they are created. Throws NotFound for a missing file, DataLoss for a truncated or
  /// corrupt one, Unimplemented for another format version.
  CheckpointStatus read(const std::string& path) const;

 private:
  std::vector<std::pair<std::string, CheckpointObject>> objects_;
};

/// The keys, dtypes and shapes stored in a checkpoint file, sorted by key (TensorFlow's
/// tf.train.list_variables). Throws as Checkpoint::read.
std::vector<CheckpointEntry> list_variables(const std::string& path);

/// The value stored under `key` (tf.train.load_variable). Throws NotFound for an unknown key.
Tensor load_variable(const std::string& path, const std::string& key);

}  // namespace kiln::nn
