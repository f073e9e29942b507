// Signatures of traced functions: TensorSpec, the allocation-free signature key, and ArgTraits,
// the customization point that says how a C++ parameter type enters a signature and a trace
// (DESIGN.md §5, Cache; docs/functions.md).
#pragma once

#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ops/variable.h"
#include "runtime/small_vector.h"
#include "runtime/tensor.h"

namespace kiln {

/// The type of a tensor argument: dtype and shape, where -1 dims accept any size. Dims may be
/// named (`dim_names[i]`, empty for none): dims with the same name must be equal on each call.
struct TensorSpec {
  Shape shape;
  DType dtype = DType::Float32;
  std::string name;
  std::vector<std::string> dim_names;

  TensorSpec() = default;
  TensorSpec(Shape s, DType d, std::string n = {}) : shape(std::move(s)), dtype(d), name(std::move(n)) {}
  /// The spec of a concrete tensor.
  static TensorSpec from_tensor(const Tensor& t) { return TensorSpec(t.shape(), t.dtype()); }
  /// "float32 Tensor, shape=(None, 3)"
  std::string to_string() const;
  /// True when `t` fits: same dtype and rank, and equal sizes where this spec knows them.
  bool is_compatible_with(const Tensor& t) const;
};

namespace trace {

/// The signature key of one call, built on the stack (no heap for ordinary signatures): a word
/// sequence that encodes dtypes, shapes, static values and variable identities, and the same
/// sequence without dims (the "structure", used to match relaxed signatures).
class KeyBuilder {
 public:
  void add(uint64_t w) {
    full_.push_back(w);
    structure_.push_back(w);
  }
  void add_dim(int64_t d) { full_.push_back(static_cast<uint64_t>(d)); }
  void add_bytes(std::string_view s) {
    add(s.size());
    for (size_t i = 0; i < s.size(); i += 8) {
      uint64_t w = 0;
      std::memcpy(&w, s.data() + i, std::min<size_t>(8, s.size() - i));
      add(w);
    }
  }
  void add_tensor(const Tensor& t) {
    add(0x7e50000000000000ull | (uint64_t(t.dtype()) << 8) | uint64_t(t.ndim()));
    for (int64_t d : t.shape()) add_dim(d);
  }
  std::span<const uint64_t> full() const { return {full_.data(), full_.size()}; }
  std::span<const uint64_t> structure() const { return {structure_.data(), structure_.size()}; }

 private:
  SmallVector<uint64_t, 24> full_, structure_;
};

/// The tensor leaves of a call's arguments, in order.
using LeafList = SmallVector<Tensor, 8>;

/// What a trace gives ArgTraits::trace: a placeholder for each tensor leaf, and a place to
/// describe static values for the printed signature.
class TraceArgs {
 public:
  virtual ~TraceArgs() = default;
  /// The symbolic stand-in for the next tensor leaf (`example` is the caller's tensor).
  virtual Tensor tensor(const Tensor& example, const std::string& path) = 0;
  /// Records a static (non-tensor) argument's printed value.
  virtual void static_value(const std::string& path, std::string repr) = 0;
};

}  // namespace trace

/// How a parameter type of a traced function takes part in signatures and traces. Specialize it
/// for your own types with these members:
///   static void key(const T&, trace::KeyBuilder&);     // everything that selects a graph
///   static void leaves(const T&, trace::LeafList&);    // the tensors, in a fixed order
///   static T trace(const T&, const std::string& path, trace::TraceArgs&);  // symbolic version
/// A type without a specialization is a compile-time error.
template <class T, class Enable = void>
struct ArgTraits {
  static_assert(sizeof(T) == 0,
                "kiln::function: this parameter type cannot be traced. Use Tensor, Variable, arithmetic types, "
                "enums, std::string, or std::vector/std::tuple/std::map of those; or specialize kiln::ArgTraits "
                "(docs/functions.md)");
};

template <>
struct ArgTraits<Tensor> {
  static void key(const Tensor& t, trace::KeyBuilder& k) { k.add_tensor(t); }
  static void leaves(const Tensor& t, trace::LeafList& out) { out.push_back(t); }
  static Tensor trace(const Tensor& t, const std::string& path, trace::TraceArgs& a) { return a.tensor(t, path); }
};

/// A variable argument: its identity is part of the signature, and the trace uses the variable
/// itself (reads and writes happen at run time).
template <>
struct ArgTraits<Variable> {
  static void key(const Variable& v, trace::KeyBuilder& k) {
    k.add(0x7a70000000000000ull);
    k.add(v.defined() ? v.impl()->id() : 0);
  }
  static void leaves(const Variable&, trace::LeafList&) {}
  static Variable trace(const Variable& v, const std::string& path, trace::TraceArgs& a) {
    a.static_value(path, v.defined() ? "<Variable '" + v.name() + "'>" : "<undefined Variable>");
    return Variable::from_handle(v.handle());
  }
};

/// Static values: a new value traces a new graph (as Python values do in TensorFlow).
template <class T>
struct ArgTraits<T, std::enable_if_t<std::is_arithmetic_v<T> || std::is_enum_v<T>>> {
  static void key(const T& v, trace::KeyBuilder& k) {
    uint64_t w = 0;
    std::memcpy(&w, &v, sizeof(T));
    k.add(0x5c00000000000000ull | sizeof(T));
    k.add(w);
  }
  static void leaves(const T&, trace::LeafList&) {}
  static T trace(const T& v, const std::string& path, trace::TraceArgs& a) {
    a.static_value(path, repr(v));
    return v;
  }
  static std::string repr(const T& v) {
    if constexpr (std::is_same_v<T, bool>)
      return v ? "true" : "false";
    else if constexpr (std::is_enum_v<T>)
      return std::to_string(static_cast<std::underlying_type_t<T>>(v));
    else
      return std::to_string(v);
  }
};

template <>
struct ArgTraits<std::string> {
  static void key(const std::string& v, trace::KeyBuilder& k) {
    k.add(0x5700000000000000ull);
    k.add_bytes(v);
  }
  static void leaves(const std::string&, trace::LeafList&) {}
  static std::string trace(const std::string& v, const std::string& path, trace::TraceArgs& a) {
    a.static_value(path, "'" + v + "'");
    return v;
  }
};

template <class T>
struct ArgTraits<std::vector<T>> {
  static void key(const std::vector<T>& v, trace::KeyBuilder& k) {
    k.add(0x1e00000000000000ull | v.size());
    for (const T& x : v) ArgTraits<T>::key(x, k);
  }
  static void leaves(const std::vector<T>& v, trace::LeafList& out) {
    for (const T& x : v) ArgTraits<T>::leaves(x, out);
  }
  static std::vector<T> trace(const std::vector<T>& v, const std::string& path, trace::TraceArgs& a) {
    std::vector<T> r;
    r.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i)
      r.push_back(ArgTraits<T>::trace(v[i], path + "[" + std::to_string(i) + "]", a));
    return r;
  }
};

template <class T>
struct ArgTraits<std::map<std::string, T>> {
  static void key(const std::map<std::string, T>& m, trace::KeyBuilder& k) {
    k.add(0x3a00000000000000ull | m.size());
    for (const auto& [name, x] : m) {
      k.add_bytes(name);
      ArgTraits<T>::key(x, k);
    }
  }
  static void leaves(const std::map<std::string, T>& m, trace::LeafList& out) {
    for (const auto& [name, x] : m) ArgTraits<T>::leaves(x, out);
  }
  static std::map<std::string, T> trace(const std::map<std::string, T>& m, const std::string& path,
                                        trace::TraceArgs& a) {
    std::map<std::string, T> r;
    for (const auto& [name, x] : m) r.emplace(name, ArgTraits<T>::trace(x, path + "['" + name + "']", a));
    return r;
  }
};

template <class... T>
struct ArgTraits<std::tuple<T...>> {
  static void key(const std::tuple<T...>& t, trace::KeyBuilder& k) {
    k.add(0x7700000000000000ull | sizeof...(T));
    std::apply([&](const T&... x) { (ArgTraits<T>::key(x, k), ...); }, t);
  }
  static void leaves(const std::tuple<T...>& t, trace::LeafList& out) {
    std::apply([&](const T&... x) { (ArgTraits<T>::leaves(x, out), ...); }, t);
  }
  static std::tuple<T...> trace(const std::tuple<T...>& t, const std::string& path, trace::TraceArgs& a) {
    return trace_impl(t, path, a, std::index_sequence_for<T...>{});
  }

 private:
  template <size_t... I>
  static std::tuple<T...> trace_impl(const std::tuple<T...>& t, const std::string& path, trace::TraceArgs& a,
                                     std::index_sequence<I...>) {
    // braced initialization evaluates left to right, so leaves are made in order
    return std::tuple<T...>{ArgTraits<T>::trace(std::get<I>(t), path + "[" + std::to_string(I) + "]", a)...};
  }
};

/// How a result type of a traced function is flattened into graph outputs and rebuilt.
/// Supported: Tensor, std::tuple/std::pair of results, std::vector<Tensor>,
/// std::map<std::string, Tensor>, and void.
template <class R, class Enable = void>
struct ResultTraits {
  static_assert(sizeof(R) == 0,
                "kiln::function: unsupported result type; return a Tensor, a tuple, a vector or a "
                "std::map<std::string, Tensor> of tensors");
};

template <>
struct ResultTraits<Tensor> {
  static void leaves(const Tensor& t, trace::LeafList& out) { out.push_back(t); }
  static Tensor skeleton(const Tensor&) { return Tensor(); }
  static Tensor rebuild(const Tensor&, std::span<const Tensor> v, size_t& i) { return v[i++]; }
};

template <class T>
struct ResultTraits<std::vector<T>> {
  static void leaves(const std::vector<T>& r, trace::LeafList& out) {
    for (const T& x : r) ResultTraits<T>::leaves(x, out);
  }
  static std::vector<T> skeleton(const std::vector<T>& r) {
    std::vector<T> s;
    for (const T& x : r) s.push_back(ResultTraits<T>::skeleton(x));
    return s;
  }
  static std::vector<T> rebuild(const std::vector<T>& sk, std::span<const Tensor> v, size_t& i) {
    std::vector<T> r;
    r.reserve(sk.size());
    for (const T& x : sk) r.push_back(ResultTraits<T>::rebuild(x, v, i));
    return r;
  }
};

template <class T>
struct ResultTraits<std::map<std::string, T>> {
  using M = std::map<std::string, T>;
  static void leaves(const M& r, trace::LeafList& out) {
    for (const auto& [k, x] : r) ResultTraits<T>::leaves(x, out);
  }
  static M skeleton(const M& r) {
    M s;
    for (const auto& [k, x] : r) s.emplace(k, ResultTraits<T>::skeleton(x));
    return s;
  }
  static M rebuild(const M& sk, std::span<const Tensor> v, size_t& i) {
    M r;
    for (const auto& [k, x] : sk) r.emplace(k, ResultTraits<T>::rebuild(x, v, i));
    return r;
  }
};

template <class... T>
struct ResultTraits<std::tuple<T...>> {
  using Tup = std::tuple<T...>;
  static void leaves(const Tup& r, trace::LeafList& out) {
    std::apply([&](const T&... x) { (ResultTraits<T>::leaves(x, out), ...); }, r);
  }
  static Tup skeleton(const Tup& r) {
    return std::apply([](const T&... x) { return Tup{ResultTraits<T>::skeleton(x)...}; }, r);
  }
  static Tup rebuild(const Tup& sk, std::span<const Tensor> v, size_t& i) {
    // braced initialization evaluates left to right
    return std::apply([&](const T&... x) { return Tup{ResultTraits<T>::rebuild(x, v, i)...}; }, sk);
  }
};

template <class A, class B>
struct ResultTraits<std::pair<A, B>> {
  using P = std::pair<A, B>;
  static void leaves(const P& r, trace::LeafList& out) {
    ResultTraits<A>::leaves(r.first, out);
    ResultTraits<B>::leaves(r.second, out);
  }
  static P skeleton(const P& r) { return {ResultTraits<A>::skeleton(r.first), ResultTraits<B>::skeleton(r.second)}; }
  static P rebuild(const P& sk, std::span<const Tensor> v, size_t& i) {
    A a = ResultTraits<A>::rebuild(sk.first, v, i);
    B b = ResultTraits<B>::rebuild(sk.second, v, i);
    return {std::move(a), std::move(b)};
  }
};

}  // namespace kiln
