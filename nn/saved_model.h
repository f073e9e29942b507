// Saved functions (TensorFlow's SavedModel, simplified): a module's variables and the IR of
// chosen concrete functions in a directory that loads and runs without the module's C++ class.
#pragma once

#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "compiler/trace/function.h"
#include "nn/module.h"

namespace kiln::saved_model {

/// The format version Kiln writes in manifest.json; `load` refuses other versions.
inline constexpr int kFormatVersion = 1;

/// Named concrete functions to export: `{{"serve", f.get_concrete_function(spec)}}`. Names are
/// 1-64 characters from [A-Za-z0-9_-].
using Signatures = std::vector<std::pair<std::string, ConcreteFunction>>;

/// Writes `module`'s variables and `signatures` into the directory `dir` (created if needed):
/// - `variables.safetensors`: every variable of the module under its path ("dense_1/kernel"),
///   plus any other variable a signature captures (under "captured/<name>");
/// - `signatures/<name>.kir`: each signature's optimized graph as IR text (docs/ir.md), whose
///   variable slots the manifest maps to variable keys;
/// - `manifest.json`, written last: the format version, the IR version, the module's name and
///   type, the variables (key, dtype, shape, trainable) and, per signature, its graph file,
///   input and output specs and the key of each variable slot.
/// Each file is written atomically. Throws InvalidArgument for a bad or duplicate signature
/// name, no signatures, or a signature's input count other than its graph's; FailedPrecondition
/// when a captured variable no longer exists; NotFound/InvalidArgument/DataLoss from the file
/// system (e.g. `dir` is a file).
void save(const nn::Module& module, const std::string& dir, const Signatures& signatures);
template <class H>
requires requires(const H& h) { h.ptr(); }
void save(const H& module, const std::string& dir, const Signatures& signatures) {
  save(static_cast<const nn::Module&>(*module.ptr()), dir, signatures);
}

/// A loaded saved model: new variables holding the saved values, and one compiled concrete
/// function per signature, bound to those variables. It holds no C++ class of the original
/// module and cannot trace: a call whose arguments fit no saved signature throws
/// InvalidArgument listing the signatures.
class LoadedModel {
 public:
  /// The signature names, in saved order.
  std::vector<std::string> signature_keys() const;
  /// The concrete function of a signature (NotFound for an unknown name).
  ConcreteFunction signature(const std::string& name) const;
  /// Runs the first signature whose input specs accept `args`. Throws InvalidArgument when none
  /// does (a loaded model cannot trace a new signature).
  std::vector<Tensor> operator()(std::span<const Tensor> args) const;
  std::vector<Tensor> operator()(std::initializer_list<Tensor> args) const {
    return (*this)(std::span<const Tensor>(args.begin(), args.size()));
  }
  /// Runs the named signature (NotFound for an unknown name; InvalidArgument for arguments that
  /// do not fit it).
  std::vector<Tensor> call(const std::string& name, std::span<const Tensor> args) const;
  /// The restored variables with their keys, in saved order.
  const std::vector<std::pair<std::string, Variable>>& variables() const { return vars_; }
  /// The trainable restored variables.
  std::vector<Variable> trainable_variables() const;
  /// The saved module's name and type name ("sequential", "Sequential").
  const std::string& module_name() const { return module_name_; }
  const std::string& module_type() const { return module_type_; }
  /// The directory it was loaded from.
  const std::string& path() const { return path_; }

 private:
  friend LoadedModel load(const std::string& dir);
  std::string path_, module_name_, module_type_;
  std::vector<std::pair<std::string, Variable>> vars_;
  std::vector<std::pair<std::string, ConcreteFunction>> sigs_;
};

/// Loads a directory written by `save`: checks the manifest, re-creates the variables from the
/// saved values, parses each signature's IR, binds its variable slots to the new variables by
/// key and compiles it. Throws NotFound when `dir` or a file is missing; DataLoss for a
/// truncated or corrupt file (manifest, variables or IR, including a slot or variable whose
/// type differs from the manifest's); Unimplemented for another format or IR version.
LoadedModel load(const std::string& dir);

/// A human-readable listing of a saved model (what `kiln inspect DIR` prints): the module,
/// each signature with its arguments and results, the variables with dtypes and shapes, and
/// each signature's graph as IR text. Throws as `load`.
std::string describe(const std::string& dir);

}  // namespace kiln::saved_model
