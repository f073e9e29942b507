// nn::Module: a named owner of variables and sub-modules (TensorFlow's tf.Module, registered the
// LibTorch way), and ModuleHolder, the shared handle modules are used through.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ops/variable.h"

namespace kiln::nn {

/// A module: owns variables and sub-modules by name, as LibTorch does (`register_variable`,
/// `register_module`). Modules are not copyable; they are shared through handles
/// (`ModuleHolder`, `std::shared_ptr<Module>`), so copying a model handle never copies its
/// variables.
///
///   struct SimpleModuleImpl : nn::Module {
///     Variable a = register_variable("a_variable", Variable(constant(5.0f), "train_me"));
///     Tensor operator()(const Tensor& x) const { return a * x; }
///   };
///   KILN_MODULE(SimpleModule);   // nn::ModuleHolder<SimpleModuleImpl>
class Module : public std::enable_shared_from_this<Module> {
 public:
  /// `name` empty: a unique name made from the class name when the module is first named
  /// (`FlexibleDenseImpl` -> "flexible_dense", then "flexible_dense_1", ...).
  explicit Module(std::string name = {});
  virtual ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The module's name (made unique per class name when not given).
  const std::string& name() const;
  /// The class name without namespaces and a trailing "Impl" ("FlexibleDense"); override to
  /// change what summaries and messages show.
  virtual std::string type_name() const;
  /// The base of the default name: snake_case(type_name()) unless overridden.
  virtual std::string default_name() const;

  /// Registers `v` under `name` and returns a handle sharing its state (not a copy). Throws
  /// InvalidArgument for an empty or duplicate name, a name containing '/', or an undefined
  /// variable.
  Variable register_variable(const std::string& name, const Variable& v);
  /// Creates a variable from `initial` named `<module name>/<name>` and registers it.
  Variable register_variable(const std::string& name, const Tensor& initial, bool trainable = true);
  /// Registers a sub-module under `name` and returns it. Same checks as register_variable; a
  /// module cannot contain itself.
  std::shared_ptr<Module> register_module(const std::string& name, std::shared_ptr<Module> module);
  template <class H>
  requires requires(const H& h) { h.ptr(); }
  H register_module(const std::string& name, H holder) {
    register_module(name, std::static_pointer_cast<Module>(holder.ptr()));
    return holder;
  }

  /// Every variable of this module and its sub-modules (own variables first, then each
  /// sub-module in registration order, depth first), each once.
  std::vector<Variable> variables() const;
  /// The variables that train: the variable is trainable and neither this module nor any module
  /// on its path is frozen.
  std::vector<Variable> trainable_variables() const;
  /// variables() minus trainable_variables().
  std::vector<Variable> non_trainable_variables() const;
  /// Variables with their registration paths, e.g. {"dense_1/w", w} (with `prefix` "model":
  /// "model/dense_1/w").
  std::vector<std::pair<std::string, Variable>> named_variables(const std::string& prefix = {}) const;
  /// Every sub-module, recursively (depth first, registration order), each once.
  std::vector<std::shared_ptr<Module>> submodules() const;
  /// The direct sub-modules with their registered names.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  /// The module's own registered variables (not its children's).
  const std::vector<std::pair<std::string, Variable>>& own_variables() const { return vars_; }

  /// Freezes (false) or unfreezes this module and everything under it: frozen variables leave
  /// trainable_variables() (TensorFlow's `layer.trainable = False`).
  virtual void set_trainable(bool trainable) { trainable_ = trainable; }
  bool trainable() const { return trainable_; }

  /// The variable at `path` below this module ("dense_1/kernel"), or an undefined Variable.
  Variable find_variable(std::string_view path) const;
  /// Runs `fn` with the variable at `path` (relative to this module, e.g. "dense_1/kernel"):
  /// now if it exists, else when a module on the path registers it (checkpoints restore into
  /// models that are not built yet this way). What `fn` throws propagates from that
  /// registration (e.g. from the first call of a layer), before the variable is registered.
  void defer_restore(const std::string& path, std::function<void(const Variable&)> fn);
  /// Number of restorations still waiting for their variable, in this module and below.
  size_t pending_restores() const;

 protected:
  /// Gives the module its default name now (holders call it once the object is complete).
  void assign_default_name() const;

 private:
  template <class H>
  friend class ModuleHolder;
  void collect(std::vector<Variable>& out, std::vector<const VariableImpl*>& seen, bool trainable_only,
               bool parent_trainable) const;
  void check_new_name(const std::string& what, const std::string& name) const;

  mutable std::string name_;
  bool trainable_ = true;
  std::vector<std::pair<std::string, Variable>> vars_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::multimap<std::string, std::function<void(const Variable&)>> pending_;  // path -> restore
};

/// "FlexibleDense" -> "flexible_dense" (Keras' default layer names).
std::string to_snake_case(std::string_view name);
/// `base` the first time, then "base_1", "base_2", ... (Keras' unique layer names); with
/// `one_based`, "base_1", "base_2", ... from the start (Keras' input layers).
std::string unique_name(const std::string& base, bool one_based = false);
/// Resets the unique-name counters (Keras' clear_session), so names start over.
void clear_session();

/// A shared handle to a module of type Impl (LibTorch's ModuleHolder): `->` reaches the module,
/// `()` calls it, copies share it. Converts to `std::shared_ptr<Base>` for any base of Impl.
template <class Impl>
class ModuleHolder {
 public:
  using ImplType = Impl;
  /// Makes a new Impl from the arguments.
  template <class... A>
  requires std::is_constructible_v<Impl, A...>
  ModuleHolder(A&&... args) : impl_(std::make_shared<Impl>(std::forward<A>(args)...)) {  // NOLINT
    static_cast<const Module&>(*impl_).assign_default_name();
  }
  /// Wraps an existing module.
  ModuleHolder(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}  // NOLINT

  Impl* operator->() const { return impl_.get(); }
  Impl& operator*() const { return *impl_; }
  Impl* get() const { return impl_.get(); }
  const std::shared_ptr<Impl>& ptr() const { return impl_; }
  template <class Base>
  requires std::is_base_of_v<Base, Impl>
  operator std::shared_ptr<Base>() const {  // NOLINT: a handle is usable wherever its base is
    return impl_;
  }
  /// Calls the module (its `operator()`).
  template <class... A>
  decltype(auto) operator()(A&&... args) const {
    return (*impl_)(std::forward<A>(args)...);
  }

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace kiln::nn

/// Declares `Name` as the handle of `NameImpl`, as LibTorch's TORCH_MODULE does.
#define KILN_MODULE(Name)                                     \
  class Name : public ::kiln::nn::ModuleHolder<Name##Impl> {  \
   public:                                                    \
    using ::kiln::nn::ModuleHolder<Name##Impl>::ModuleHolder; \
  }
