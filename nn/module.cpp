// nn::Module: registration, variable collection, freezing and default names.
#include "nn/module.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <typeinfo>

namespace kiln::nn {
namespace {

std::mutex g_names_mu;
std::map<std::string, int64_t>& name_counters() {
  static std::map<std::string, int64_t> m;
  return m;
}

}  // namespace

std::string to_snake_case(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') {
      // a new word starts at an upper-case letter after a lower-case one or before one
      bool prev_lower = i > 0 && ((name[i - 1] >= 'a' && name[i - 1] <= 'z') || (name[i - 1] >= '0' && name[i - 1] <= '9'));
      bool next_lower = i + 1 < name.size() && name[i + 1] >= 'a' && name[i + 1] <= 'z';
      bool prev_upper = i > 0 && name[i - 1] >= 'A' && name[i - 1] <= 'Z';
      if (!out.empty() && (prev_lower || (prev_upper && next_lower))) out += '_';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c;
    }
  }
  return out;
}

std::string unique_name(const std::string& base, bool one_based) {
  std::lock_guard lock(g_names_mu);
  int64_t n = name_counters()[base]++;
  if (one_based) return base + "_" + std::to_string(n + 1);
  return n == 0 ? base : base + "_" + std::to_string(n);
}

void clear_session() {
  std::lock_guard lock(g_names_mu);
  name_counters().clear();
}

Module::Module(std::string name) : name_(std::move(name)) {}
Module::~Module() = default;

const std::string& Module::name() const {
  assign_default_name();
  return name_;
}

void Module::assign_default_name() const {
  if (name_.empty()) name_ = default_name();
}

std::string Module::default_name() const { return unique_name(to_snake_case(type_name())); }

std::string Module::type_name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string full = status == 0 && demangled ? demangled : mangled;
  std::free(demangled);
  // drop template arguments and namespaces: "kiln::nn::DenseImpl" -> "DenseImpl"
  if (size_t lt = full.find('<'); lt != std::string::npos) full.resize(lt);
  if (size_t colon = full.rfind("::"); colon != std::string::npos) full = full.substr(colon + 2);
  if (full.size() > 4 && full.ends_with("Impl")) full.resize(full.size() - 4);
  return full;
}

void Module::check_new_name(const std::string& what, const std::string& name) const {
  if (name.empty()) fail<InvalidArgument>(this->name(), "cannot register a ", what, " with an empty name");
  if (name.find('/') != std::string::npos)
    fail<InvalidArgument>(this->name(), "the ", what, " name '", name, "' contains '/' (names are path components)");
  for (auto& [n, v] : vars_)
    if (n == name) fail<InvalidArgument>(this->name(), "a variable named '", name, "' is already registered");
  for (auto& [n, m] : children_)
    if (n == name) fail<InvalidArgument>(this->name(), "a module named '", name, "' is already registered");
}

Variable Module::register_variable(const std::string& name, const Variable& v) {
  if (!v.defined()) fail<InvalidArgument>(this->name(), "cannot register the undefined variable '", name, "'");
  check_new_name("variable", name);
  Variable shared = Variable::from_handle(v.handle());
  // a checkpoint read before the variable existed restores it now, before it is registered
  auto [a, b] = pending_.equal_range(name);
  std::vector<std::function<void(const Variable&)>> fns;
  for (auto it = a; it != b; ++it) fns.push_back(it->second);
  for (auto& fn : fns) fn(shared);
  pending_.erase(name);
  vars_.emplace_back(name, Variable::from_handle(v.handle()));
  return shared;
}

Variable Module::register_variable(const std::string& name, const Tensor& initial, bool trainable) {
  check_new_name("variable", name);
  return register_variable(name, Variable(initial, this->name() + "/" + name, trainable));
}

std::shared_ptr<Module> Module::register_module(const std::string& name, std::shared_ptr<Module> module) {
  if (!module) fail<InvalidArgument>(this->name(), "cannot register a null module as '", name, "'");
  check_new_name("module", name);
  if (module.get() == this) fail<InvalidArgument>(this->name(), "a module cannot contain itself ('", name, "')");
  for (auto& m : module->submodules())
    if (m.get() == this)
      fail<InvalidArgument>(this->name(), "registering '", name, "' would make a cycle (it contains this module)");
  children_.emplace_back(name, module);
  // restorations waiting below this name move to the new child
  std::string prefix = name + "/";
  for (auto it = pending_.lower_bound(prefix); it != pending_.end() && it->first.starts_with(prefix);) {
    module->defer_restore(it->first.substr(prefix.size()), std::move(it->second));
    it = pending_.erase(it);
  }
  return module;
}

Variable Module::find_variable(std::string_view path) const {
  size_t slash = path.find('/');
  std::string_view head = path.substr(0, slash);
  if (slash == std::string_view::npos) {
    for (auto& [n, v] : vars_)
      if (n == head) return Variable::from_handle(v.handle());
    return {};
  }
  for (auto& [n, m] : children_)
    if (n == head) return m->find_variable(path.substr(slash + 1));
  return {};
}

void Module::defer_restore(const std::string& path, std::function<void(const Variable&)> fn) {
  size_t slash = path.find('/');
  std::string head = path.substr(0, slash);
  if (slash == std::string::npos) {
    for (auto& [n, v] : vars_)
      if (n == head) return fn(Variable::from_handle(v.handle()));
  } else {
    for (auto& [n, m] : children_)
      if (n == head) return m->defer_restore(path.substr(slash + 1), std::move(fn));
  }
  pending_.emplace(path, std::move(fn));
}

size_t Module::pending_restores() const {
  size_t n = pending_.size();
  for (auto& [name, m] : children_) n += m->pending_restores();
  return n;
}

void Module::collect(std::vector<Variable>& out, std::vector<const VariableImpl*>& seen, bool trainable_only,
                     bool parent_trainable) const {
  const bool on = parent_trainable && trainable_;
  for (auto& [n, v] : vars_) {
    if (trainable_only && !(on && v.trainable())) continue;
    if (std::find(seen.begin(), seen.end(), v.impl()) != seen.end()) continue;
    seen.push_back(v.impl());
    out.push_back(Variable::from_handle(v.handle()));
  }
  for (auto& [n, m] : children_) m->collect(out, seen, trainable_only, on);
}

std::vector<Variable> Module::variables() const {
  std::vector<Variable> out;
  std::vector<const VariableImpl*> seen;
  collect(out, seen, false, true);
  return out;
}

std::vector<Variable> Module::trainable_variables() const {
  std::vector<Variable> out;
  std::vector<const VariableImpl*> seen;
  collect(out, seen, true, true);
  return out;
}

std::vector<Variable> Module::non_trainable_variables() const {
  std::vector<Variable> all = variables(), trainable = trainable_variables(), out;
  for (auto& v : all) {
    bool t = std::any_of(trainable.begin(), trainable.end(), [&](const Variable& u) { return u.impl() == v.impl(); });
    if (!t) out.push_back(Variable::from_handle(v.handle()));
  }
  return out;
}

std::vector<std::pair<std::string, Variable>> Module::named_variables(const std::string& prefix) const {
  std::vector<std::pair<std::string, Variable>> out;
  std::vector<const VariableImpl*> seen;
  auto walk = [&](auto& self, const Module& m, const std::string& path) -> void {
    for (auto& [n, v] : m.vars_) {
      if (std::find(seen.begin(), seen.end(), v.impl()) != seen.end()) continue;
      seen.push_back(v.impl());
      out.emplace_back(path.empty() ? n : path + "/" + n, Variable::from_handle(v.handle()));
    }
    for (auto& [n, c] : m.children_) self(self, *c, path.empty() ? n : path + "/" + n);
  };
  walk(walk, *this, prefix);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::submodules() const {
  std::vector<std::shared_ptr<Module>> out;
  auto walk = [&](auto& self, const Module& m) -> void {
    for (auto& [n, c] : m.children_) {
      if (std::find(out.begin(), out.end(), c) != out.end()) continue;
      out.push_back(c);
      self(self, *c);
    }
  };
  walk(walk, *this);
  return out;
}

}  // namespace kiln::nn
