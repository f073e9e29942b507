// Checkpoint: object-graph keys <-> variables, written as one safetensors file.
#include "nn/checkpoint.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "ops/dispatch.h"
#include "runtime/file_io.h"
#include "runtime/safetensors.h"

namespace kiln::nn {

namespace {

constexpr std::string_view kValueSuffix = "/.ATTRIBUTES/VARIABLE_VALUE";
constexpr std::string_view kSlotMarker = "/.OPTIMIZER_SLOT/";
constexpr const char* kVersionKey = "kiln.checkpoint.version";

std::string value_key(const std::string& path) { return path + std::string(kValueSuffix); }

void check_value(const std::string& key, const Variable& v, const Tensor& value) {
  if (value.dtype() != v.dtype() || value.shape() != v.shape())
    fail<InvalidArgument>("checkpoint", "cannot restore '", key, "': the variable '", v.impl()->name(), "' is ",
                          dtype_name(v.dtype()), " ", v.shape().to_string(), " but the checkpoint holds ",
                          dtype_name(value.dtype()), " ", value.shape().to_string());
}

std::pair<std::string, std::string> split_first(std::string_view path) {
  size_t slash = path.find('/');
  if (slash == std::string_view::npos) return {std::string(path), {}};
  return {std::string(path.substr(0, slash)), std::string(path.substr(slash + 1))};
}

safetensors::Contents load_checked(const std::string& path) {
  safetensors::Contents c = safetensors::load(path);
  auto it = c.metadata.find(kVersionKey);
  if (it != c.metadata.end() && it->second != std::to_string(kCheckpointVersion))
    fail<Unimplemented>("checkpoint", "'", path, "' has checkpoint format version '", it->second.substr(0, 32),
                        "'; this Kiln reads version ", kCheckpointVersion);
  return c;
}

}  // namespace

void CheckpointStatus::assert_consumed() const {
  if (unused_keys.empty() && missing_keys.empty()) return;
  std::string msg;
  auto list = [&](const char* what, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    msg += msg.empty() ? "" : "; ";
    msg += what;
    for (size_t i = 0; i < keys.size(); ++i) msg += (i ? ", " : " ") + keys[i];
  };
  list("unused keys in the file:", unused_keys);
  list("variables the file does not hold:", missing_keys);
  fail<FailedPrecondition>("checkpoint", msg);
}

Checkpoint::Checkpoint(std::vector<std::pair<std::string, CheckpointObject>> objects) : objects_(std::move(objects)) {
  std::set<std::string> seen;
  for (auto& [name, obj] : objects_) {
    if (name.empty() || name.find('/') != std::string::npos || name.starts_with("."))
      fail<InvalidArgument>("checkpoint", "object name '", name, "' must be non-empty, without '/' or a leading '.'");
    if (!seen.insert(name).second) fail<InvalidArgument>("checkpoint", "object name '", name, "' appears twice");
    if (!obj.module() && !obj.optimizer() && !obj.variable().defined())
      fail<InvalidArgument>("checkpoint", "object '", name, "' is empty (a null module or optimizer, or an undefined "
                            "variable)");
  }
}

std::vector<std::pair<std::string, Tensor>> Checkpoint::values() const {
  ops::EagerScope eager;
  std::vector<std::pair<std::string, Tensor>> out;
  std::map<const VariableImpl*, std::string> path_of;
  for (auto& [name, obj] : objects_) {
    if (obj.module()) {
      for (auto& [path, v] : obj.module()->named_variables(name)) {
        path_of.emplace(v.impl(), path);
        out.emplace_back(value_key(path), v.read_value());
      }
    } else if (obj.variable().defined()) {
      path_of.emplace(obj.variable().impl(), name);
      out.emplace_back(value_key(name), obj.variable().read_value());
    }
  }
  for (auto& [name, obj] : objects_) {
    if (!obj.optimizer()) continue;
    const optim::Optimizer& opt = *obj.optimizer();
    out.emplace_back(value_key(name + "/iterations"), opt.iterations().read_value());
    for (auto& [n, v] : opt.variables())
      if (n == "learning_rate") out.emplace_back(value_key(name + "/learning_rate"), v.read_value());
    for (auto& s : opt.slot_variables()) {
      auto it = path_of.find(s.owner.get());
      std::string key = it != path_of.end() ? it->second + std::string(kSlotMarker) + name + "/" + s.slot
                                            : name + "/" + s.slot + "/" + s.owner->name();
      out.emplace_back(value_key(key), s.variable.read_value());
    }
  }
  return out;
}

void Checkpoint::write(const std::string& path) const {
  safetensors::save(path, values(), {{kVersionKey, std::to_string(kCheckpointVersion)}});
}

CheckpointStatus Checkpoint::read(const std::string& path) const {
  safetensors::Contents contents = load_checked(path);
  CheckpointStatus status;
  std::vector<std::function<void()>> actions;  // run only once every value has been checked
  auto find_object = [&](const std::string& name) -> const CheckpointObject* {
    for (auto& [n, o] : objects_)
      if (n == name) return &o;
    return nullptr;
  };
  auto assign = [&](const std::string& key, const Variable& v, const Tensor& value) {
    check_value(key, v, value);
    // a captured Variable would be a copy (a new variable): capture its shared state
    actions.push_back([h = v.handle(), value] { Variable::from_handle(h).assign(value); });
    ++status.restored;
  };

  for (auto& [key, value] : contents.tensors) {
    if (!key.ends_with(kValueSuffix)) {
      status.unused_keys.push_back(key);
      continue;
    }
    std::string body = key.substr(0, key.size() - kValueSuffix.size());
    bool used = false;
    if (size_t at = body.find(kSlotMarker); at != std::string::npos) {
      // "<variable path>/.OPTIMIZER_SLOT/<optimizer>/<slot>"
      auto [opt_name, slot] = split_first(std::string_view(body).substr(at + kSlotMarker.size()));
      auto [root, rest] = split_first(std::string_view(body).substr(0, at));
      const CheckpointObject* opt = find_object(opt_name);
      const CheckpointObject* owner = find_object(root);
      if (opt && opt->optimizer() && owner && !slot.empty()) {
        auto o = opt->optimizer();
        Tensor val = value;
        std::string s = slot;
        Variable v = owner->module() ? owner->module()->find_variable(rest)
                                     : (rest.empty() ? Variable::from_handle(owner->variable().handle()) : Variable());
        if (v.defined()) {
          check_value(key, v, value);
          actions.push_back([o, h = v.handle(), s, val] { o->restore_slot(Variable::from_handle(h), s, val); });
          ++status.restored;
          used = true;
        } else if (owner->module()) {
          auto m = owner->module();
          std::string p = rest;
          actions.push_back([m, p, o, s, val] {
            m->defer_restore(p, [o, s, val](const Variable& var) { o->restore_slot(var, s, val); });
          });
          ++status.deferred;
          used = true;
        }
      }
    } else {
      auto [root, rest] = split_first(body);
      if (const CheckpointObject* obj = find_object(root)) {
        if (obj->module() && !rest.empty()) {
          Variable v = obj->module()->find_variable(rest);
          if (v.defined()) {
            assign(key, v, value);
          } else {
            auto m = obj->module();
            Tensor val = value;
            std::string k = key;
            actions.push_back([m, rest, k, val] {
              m->defer_restore(rest, [k, val](const Variable& var) {
                check_value(k, var, val);
                var.assign(val);
              });
            });
            ++status.deferred;
          }
          used = true;
        } else if (obj->variable().defined() && rest.empty()) {
          assign(key, obj->variable(), value);
          used = true;
        } else if (obj->optimizer()) {
          const optim::Optimizer& opt = *obj->optimizer();
          if (rest == "iterations" || rest == "learning_rate") {
            for (auto& [n, v] : opt.variables())
              if (n == rest) assign(key, v, value);
            used = true;
          } else {
            // "<slot>/<variable name>": a slot of a variable no tracked module holds
            auto [slot, owner_name] = split_first(rest);
            for (auto& s : opt.slot_variables())
              if (s.slot == slot && s.owner->name() == owner_name) {
                assign(key, s.variable, value);
                used = true;
              }
          }
        }
      }
    }
    if (!used) status.unused_keys.push_back(key);
  }

  std::set<std::string> in_file;
  for (auto& [key, value] : contents.tensors) in_file.insert(key);
  for (auto& [key, value] : values())
    if (!in_file.count(key)) status.missing_keys.push_back(key);

  ops::EagerScope eager;
  for (auto& a : actions) a();
  return status;
}

std::vector<CheckpointEntry> list_variables(const std::string& path) {
  std::string bytes = io::read_file(path, "checkpoint");
  auto [infos, metadata] = safetensors::decode_header(bytes);
  auto it = metadata.find(kVersionKey);
  if (it != metadata.end() && it->second != std::to_string(kCheckpointVersion))
    fail<Unimplemented>("checkpoint", "'", path, "' has checkpoint format version '", it->second.substr(0, 32),
                        "'; this Kiln reads version ", kCheckpointVersion);
  std::vector<CheckpointEntry> out;
  for (auto& i : infos) out.push_back({i.name, i.dtype, i.shape});
  return out;
}

Tensor load_variable(const std::string& path, const std::string& key) {
  safetensors::Contents c = load_checked(path);
  if (const Tensor* t = c.find(key)) return *t;
  fail<NotFound>("checkpoint", "'", path, "' holds no key '", key, "'");
}

}  // namespace kiln::nn
