// Typed op attributes: a short list of (name, value) pairs, with checked getters.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "runtime/dtype.h"
#include "runtime/ref.h"
#include "runtime/small_vector.h"

namespace kiln::ops {

/// An opaque reference-counted object attribute (the callee of a `call` op). Compared by
/// identity; never part of the IR text form.
using ObjectRef = Ref<RefCounted>;

/// The value of one attribute.
using AttrValue = std::variant<int64_t, double, bool, DType, std::vector<int64_t>, std::string, ObjectRef>;

/// The kinds an attribute schema can name (the index of the AttrValue alternative).
enum class AttrKind : uint8_t { Int, Float, Bool, Type, Ints, String, Object };

/// An op's attributes. Names are string literals owned by the OpDef schemas and op functions.
class Attrs {
 public:
  Attrs() = default;
  Attrs(std::initializer_list<std::pair<std::string_view, AttrValue>> items) {
    for (auto& it : items) items_.push_back(it);
  }
  Attrs& set(std::string_view name, AttrValue v);
  bool has(std::string_view name) const { return find(name) != nullptr; }
  /// The value named `name`, or nullptr.
  const AttrValue* find_value(std::string_view name) const { return find(name); }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::pair<std::string_view, AttrValue>& at(size_t i) const { return items_[i]; }

  /// Typed getters; a missing or mistyped attribute is an Internal error (op functions build
  /// attributes, users do not).
  int64_t get_int(std::string_view name) const { return get<int64_t>(name); }
  double get_float(std::string_view name) const { return get<double>(name); }
  bool get_bool(std::string_view name) const { return get<bool>(name); }
  DType get_type(std::string_view name) const { return get<DType>(name); }
  const std::vector<int64_t>& get_ints(std::string_view name) const { return get<std::vector<int64_t>>(name); }
  const std::string& get_string(std::string_view name) const { return get<std::string>(name); }
  const ObjectRef& get_object(std::string_view name) const { return get<ObjectRef>(name); }
  int64_t get_int_or(std::string_view name, int64_t dflt) const {
    const AttrValue* v = find(name);
    return v ? std::get<int64_t>(*v) : dflt;
  }
  bool get_bool_or(std::string_view name, bool dflt) const {
    const AttrValue* v = find(name);
    return v ? std::get<bool>(*v) : dflt;
  }

  friend bool operator==(const Attrs& a, const Attrs& b);

 private:
  const AttrValue* find(std::string_view name) const {
    for (auto& [n, v] : items_)
      if (n == name) return &v;
    return nullptr;
  }
  template <class T>
  const T& get(std::string_view name) const;
  SmallVector<std::pair<std::string_view, AttrValue>, 3> items_;
};

/// Text form of an attribute value, as the IR prints it ("[1, 2]", "float32", "true").
std::string attr_to_string(const AttrValue& v);

}  // namespace kiln::ops
