// Hostile inputs for every registered op, driven by the registry: each op has at least four
// calls that must fail with a kiln::Error other than Internal whose message starts with
// "[<op>]" and, where given, names the offending value — never a crash, an abort, a hang or an
// absurd allocation. An op with fewer than four cases fails the test.
#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "compiler/trace/function.h"
#include "ops/dispatch.h"
#include "ops/ops.h"
#include "runtime/string_tensor.h"

using namespace kiln;
using ops::Attrs;

namespace {

/// One hostile call. `mentions`, when set, must appear in the message (the offending value).
struct BadCase {
  std::string what;
  std::function<void()> call;
  std::string mentions;
};

using Catalog = std::map<std::string, std::vector<BadCase>>;

constexpr int kMinCases = 4;
constexpr int64_t k2p24 = int64_t{1} << 24, k2p40 = int64_t{1} << 40, k2p62 = int64_t{1} << 62;
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min(), kI64Max = std::numeric_limits<int64_t>::max();

void call_op(const std::string& op, const Attrs& attrs, const std::vector<Tensor>& inputs) {
  ops::apply(ops::op_def(op).id, attrs, inputs);
}

Tensor z(const Shape& s, DType d = float32) { return zeros(s, d); }

// 17 alternating dims, (2, 1, 2, ...) and (1, 2, 1, ...): their broadcast has 17 axes that no
// two neighbours can merge (131072 elements, so the output itself is small).
Shape alternating(bool first) {
  Shape s;
  for (int i = 0; i < 17; ++i) s.push_back((i % 2 == 0) == first ? 2 : 1);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Elementwise

void add_unary(Catalog& c, const std::string& op, DType good, std::vector<DType> bad) {
  auto& v = c[op];
  for (DType d : bad)
    v.push_back({"x of dtype " + std::string(dtype_name(d)), [=] { call_op(op, {}, {z({3}, d)}); },
                 std::string(dtype_name(d))});
  v.push_back({"no inputs", [=] { call_op(op, {}, {}); }, "expects 1 inputs, got 0"});
  v.push_back({"two inputs", [=] { call_op(op, {}, {z({2}, good), z({2}, good)}); }, "got 2"});
  v.push_back({"an undefined input", [=] { call_op(op, {}, {Tensor()}); }, "input 0 is undefined"});
}

// `good` is a 1-byte dtype the op accepts, so the huge-broadcast case needs only small inputs
// (ones: a zero divisor would fail first).
void add_binary(Catalog& c, const std::string& op, DType good, DType other, std::vector<DType> bad) {
  auto& v = c[op];
  for (DType d : bad)
    v.push_back({"operands of dtype " + std::string(dtype_name(d)),
                 [=] {
                   call_op(op, {}, {z({3}, d), z({3}, d)});
                 },
                 std::string(dtype_name(d))});
  v.push_back({"mismatched dtypes",
               [=] {
                 call_op(op, {}, {z({3}, good), z({3}, other)});
               },
               "y has dtype " + std::string(dtype_name(other))});
  v.push_back({"shapes that do not broadcast", [=] { call_op(op, {}, {z({3}, good), z({4}, good)}); }, "[3] and [4]"});
  v.push_back({"(2, 3) against (3, 2)",
               [=] {
                 call_op(op, {}, {z({2, 3}, good), z({3, 2}, good)});
               },
               "[2, 3] and [3, 2]"});
  v.push_back({"one input", [=] { call_op(op, {}, {z({3}, good)}); }, "expects 2 inputs, got 1"});
  v.push_back({"three inputs", [=] { call_op(op, {}, {z({3}, good), z({3}, good), z({3}, good)}); }, "got 3"});
  v.push_back({"an undefined second input",
               [=] {
                 call_op(op, {}, {z({3}, good), Tensor()});
               },
               "input 1 is undefined"});
  v.push_back({"a broadcast over 17 axes that cannot merge",
               [=] {
                 call_op(op, {}, {ones(alternating(true), good), ones(alternating(false), good)});
               },
               "16"});
  v.push_back({"a broadcast output of 2^48 elements",
               [=] {
                 call_op(op, {}, {ones({k2p24, 1}, good), ones({1, k2p24}, good)});
               },
               "281474976710656"});
}

void add_elementwise(Catalog& c) {
  for (const char* op : {"negative", "abs", "sign", "square"}) add_unary(c, op, float32, {bool_});
  for (const char* op : {"exp", "log", "log1p", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh", "sigmoid"})
    add_unary(c, op, float32, {int32, bool_});
  add_unary(c, "softplus", float32, {complex64, int32});
  add_unary(c, "relu", float32, {complex64, bool_});
  for (const char* op : {"floor", "ceil", "round"}) add_unary(c, op, float32, {int32, complex64});
  add_unary(c, "logical_not", bool_, {float32, int32});

  for (const char* op : {"add", "subtract", "multiply", "divide", "pow"}) add_binary(c, op, int8, float32, {bool_});
  for (const char* op : {"floordiv", "mod"}) add_binary(c, op, int8, int16, {complex64, bool_});
  for (const char* op : {"maximum", "minimum", "less", "less_equal", "greater", "greater_equal"})
    add_binary(c, op, int8, uint8, {complex64, bool_});
  for (const char* op : {"equal", "not_equal"}) add_binary(c, op, int8, float64, {});
  for (const char* op : {"logical_and", "logical_or", "logical_xor"}) add_binary(c, op, bool_, int8, {float32, int32});
  for (const char* op : {"floordiv", "mod"})
    c[op].push_back({"an integer zero divisor",
                     [op] {
                       call_op(op, {}, {constant({7, 8}), constant({3, 0})});
                     },
                     "division by zero"});
  c["pow"].push_back({"an integer to a negative power", [] { pow(constant({2, 3}), constant({1, -1})); }, "negative"});

  auto& w = c["where"];
  w.push_back(
      {"a condition that is not bool", [] { where(z({3}, int32), z({3}), z({3})); }, "must be bool, got int32"});
  w.push_back({"x and y of different dtypes", [] { where(z({3}, bool_), z({3}), z({3}, float64)); }, "float64"});
  w.push_back({"shapes that do not broadcast", [] { where(z({3}, bool_), z({3}), z({4})); }, "[3] and [4]"});
  w.push_back({"two inputs", [] { call_op("where", {}, {z({3}, bool_), z({3})}); }, "expects 3 inputs, got 2"});
  w.push_back({"an undefined input", [] { where(z({3}, bool_), Tensor(), z({3})); }, "input 1 is undefined"});
  w.push_back({"a broadcast over 17 axes that cannot merge",
               [] { where(z(alternating(true), bool_), z(alternating(false), int8), z({}, int8)); }, "16"});

  auto& k = c["cast"];
  k.push_back({"to string", [] { call_op("cast", {{"dtype", string}}, {z({2})}); }, "string"});
  k.push_back({"no inputs", [] { call_op("cast", {{"dtype", int32}}, {}); }, "expects 1 inputs, got 0"});
  k.push_back({"two inputs", [] { call_op("cast", {{"dtype", int32}}, {z({2}), z({2})}); }, "got 2"});
  k.push_back({"an undefined input", [] { cast(Tensor(), int32); }, "input 0 is undefined"});
}

// ---------------------------------------------------------------------------------------------
// Reductions, argmax/argmin, matmul

void add_reductions(Catalog& c) {
  auto red = [](const std::string& op, const Tensor& x, std::vector<int64_t> axes) {
    return [=] { call_op(op, {{"axes", axes}, {"keepdims", false}}, {x}); };
  };
  const std::vector<std::pair<std::string, DType>> ops = {
      {"reduce_sum", float32},  {"reduce_mean", float32}, {"reduce_max", float32}, {"reduce_min", float32},
      {"reduce_prod", float32}, {"reduce_any", bool_},    {"reduce_all", bool_}};
  for (const auto& [name, good] : ops) {
    const std::string op = name;
    const DType g = good;
    auto& v = c[op];
    v.push_back({"axis 2 of a rank-2 tensor", red(op, z({2, 3}, g), {2}), "axis 2"});
    v.push_back({"axis -3 of a rank-2 tensor", red(op, z({2, 3}, g), {-3}), "axis -3"});
    v.push_back({"axis 0 twice", red(op, z({2, 3}, g), {0, -2}), "more than once"});
    v.push_back({"axis 2^62", red(op, z({2, 3}, g), {k2p62}), "4611686018427387904"});
    v.push_back({"no inputs",
                 [=] {
                   call_op(op, {{"axes", std::vector<int64_t>{}}, {"keepdims", false}}, {});
                 },
                 "got 0"});
    v.push_back({"an undefined input", red(op, Tensor(), {0}), "input 0 is undefined"});
  }
  c["reduce_sum"].push_back({"bool input", red("reduce_sum", z({3}, bool_), {0}), "bool"});
  c["reduce_sum"].push_back({"axis 5 (public function)", [] { reduce_sum(z({2, 3}), Axes{5}); }, "axis 5"});
  c["reduce_mean"].push_back({"bool input", red("reduce_mean", z({3}, bool_), {0}), "bool"});
  c["reduce_prod"].push_back({"bool input", red("reduce_prod", z({3}, bool_), {0}), "bool"});
  for (const char* op : {"reduce_max", "reduce_min"}) {
    c[op].push_back({"complex input", red(op, z({3}, complex64), {0}), "complex64"});
    c[op].push_back({"an empty axis", red(op, z({0, 3}), {0}), "size 0"});
  }
  for (const char* op : {"reduce_any", "reduce_all"}) c[op].push_back({"float input", red(op, z({3}), {0}), "float32"});

  for (const char* name : {"argmax", "argmin"}) {
    const std::string op = name;
    auto arg = [op](const Tensor& x, int64_t axis, DType out = int64) {
      return [=] { call_op(op, {{"axis", axis}, {"output_type", out}}, {x}); };
    };
    auto& v = c[op];
    v.push_back({"axis 2 of a rank-2 tensor", arg(z({2, 3}), 2), "axis 2"});
    v.push_back({"axis -3 of a rank-2 tensor", arg(z({2, 3}), -3), "axis -3"});
    v.push_back({"axis INT64_MIN", arg(z({2, 3}), kI64Min), "-9223372036854775808"});
    v.push_back({"output_type float32", arg(z({2, 3}), 0, float32), "float32"});
    v.push_back({"an empty axis", arg(z({0, 3}), 0), "size 0"});
    v.push_back({"complex input", arg(z({3}, complex64), 0), "complex64"});
    v.push_back({"a scalar", arg(z({}), 0), "rank 0"});
  }
  c["argmax"].push_back({"axis 3 (public function)", [] { argmax(z({2, 3}), 3); }, "axis 3"});

  auto& m = c["matmul"];
  auto mm = [](const Tensor& a, const Tensor& b) { return [=] { matmul(a, b); }; };
  m.push_back({"a vector operand", mm(z({3}), z({3, 2})), "rank >= 2"});
  m.push_back({"inner dimensions that differ", mm(z({2, 3}), z({4, 5})), "has 4 rows"});
  m.push_back({"transposed inner dimensions that differ", [] { matmul(z({2, 3}), z({3, 4}), true); }, "has 2 columns"});
  m.push_back({"mismatched dtypes", mm(z({2, 2}), z({2, 2}, float64)), "float64"});
  m.push_back({"bool operands", mm(z({2, 2}, bool_), z({2, 2}, bool_)), "bool"});
  m.push_back({"batch dims that do not broadcast", mm(z({2, 2, 3}), z({3, 3, 4})), "[2] and [3]"});
  m.push_back({"one input",
               [] {
                 call_op("matmul", {{"transpose_a", false}, {"transpose_b", false}}, {z({2, 2})});
               },
               "got 1"});
  m.push_back({"a 2^24 x 2^24 product of empty operands", mm(z({k2p24, 0}), z({0, k2p24})), "16777216"});
  m.push_back({"a 2^40 x 2^40 product of empty operands", mm(z({k2p40, 0}), z({0, k2p40})), "1099511627776"});
}

// ---------------------------------------------------------------------------------------------
// Shapes and data movement

void add_movement(Catalog& c) {
  auto one = [](const std::string& op, Attrs attrs, const Tensor& x) { return [=] { call_op(op, attrs, {x}); }; };

  auto& r = c["reshape"];
  r.push_back({"6 elements to [4]", [] { reshape(z({2, 3}), {4}); }, "6 elements"});
  r.push_back({"two -1 dims", [] { reshape(z({2, 3}), {-1, -1}); }, "only one"});
  r.push_back({"a dim of -2", [] { reshape(z({2, 3}), {-2, -3}); }, "-2"});
  r.push_back({"a shape of 2^80 elements", [] { reshape(z({2, 3}), {k2p40, k2p40}); }, "overflows"});
  r.push_back({"0 elements to [-1, 0]", [] { reshape(z({0, 3}), {-1, 0}); }, "0 elements"});
  r.push_back({"an undefined input", [] { reshape(Tensor(), {1}); }, "input 0 is undefined"});

  auto& t = c["transpose"];
  t.push_back({"perm [0, 0]", [] { transpose(z({2, 3}), {0, 0}); }, "[0, 0]"});
  t.push_back({"perm of the wrong length", [] { transpose(z({2, 3}), {0}); }, "[0]"});
  t.push_back({"perm [0, 5]", [] { transpose(z({2, 3}), {0, 5}); }, "[0, 5]"});
  t.push_back({"perm [-3, 0]", [] { transpose(z({2, 3}), {-3, 0}); }, "[-3, 0]"});
  t.push_back({"perm [INT64_MIN, 0]", [] { transpose(z({2, 3}), {kI64Min, 0}); }, "-9223372036854775808"});

  auto& e = c["expand_dims"];
  e.push_back({"axis 2 of a rank-1 tensor", [] { expand_dims(z({3}), 2); }, "axis 2"});
  e.push_back({"axis -3 of a rank-1 tensor", [] { expand_dims(z({3}), -3); }, "axis -3"});
  e.push_back({"axis 2^62", [] { expand_dims(z({3}), k2p62); }, "4611686018427387904"});
  e.push_back({"axis INT64_MIN", [] { expand_dims(z({3}), kI64Min); }, "-9223372036854775808"});
  e.push_back({"axis INT64_MAX", [] { expand_dims(z({3}), kI64Max); }, "9223372036854775807"});

  auto& q = c["squeeze"];
  q.push_back({"an axis of size 2", [] { squeeze(z({2, 1}), Axes{0}); }, "size 2"});
  q.push_back({"axis 2 of a rank-2 tensor", [] { squeeze(z({2, 1}), Axes{2}); }, "axis 2"});
  q.push_back({"axis -3 of a rank-2 tensor", [] { squeeze(z({2, 1}), Axes{-3}); }, "axis -3"});
  q.push_back({"axis 1 twice", [] { squeeze(z({2, 1}), Axes{1, -1}); }, "more than once"});

  auto& k = c["concat"];
  k.push_back({"mismatched dtypes", [] { concat({z({2}), z({2}, int32)}, 0); }, "int32"});
  k.push_back({"mismatched ranks", [] { concat({z({2}), z({2, 1})}, 0); }, "rank 2"});
  k.push_back({"mismatched dims off the axis", [] { concat({z({2, 3}), z({2, 4})}, 0); }, "(2, 4)"});
  k.push_back({"axis 2 of rank-2 inputs", [] { concat({z({2, 3}), z({2, 3})}, 2); }, "axis 2"});
  k.push_back({"axis -3 of rank-2 inputs", [] { concat({z({2, 3}), z({2, 3})}, -3); }, "axis -3"});
  k.push_back({"no inputs", [] { concat({}, 0); }, "at least one"});
  k.push_back({"scalars", [] { concat({z({}), z({})}, 0); }, "scalars"});
  k.push_back({"an undefined input", [] { concat({z({2}), Tensor()}, 0); }, "input 1 is undefined"});

  auto& s = c["split"];
  s.push_back({"sizes that do not sum to the axis", [] { split(z({3}), std::vector<int64_t>{1, 1}, 0); }, "[1, 1]"});
  s.push_back({"3 into 2 equal parts", [] { split(z({3}), 2, 0); }, "into 2 equal parts"});
  s.push_back({"num 0", [] { split(z({3}), 0, 0); }, "got 0"});
  s.push_back({"num -1", [] { split(z({3}), -1, 0); }, "got -1"});
  s.push_back({"axis 1 of a rank-1 tensor", [] { split(z({3}), 3, 1); }, "axis 1"});
  s.push_back({"a scalar", [] { split(z({}), 1, 0); }, "scalar"});
  s.push_back({"two -1 sizes", [] { split(z({3}), std::vector<int64_t>{-1, -1}, 0); }, "more than one -1"});
  s.push_back({"a size of -2", [] { split(z({3}), std::vector<int64_t>{5, -2}, 0); }, "-2"});
  s.push_back({"sizes whose sum overflows", [] { split(z({3}), std::vector<int64_t>{kI64Max, 1}, 0); }, "overflows"});

  auto& ti = c["tile"];
  ti.push_back({"multiples of the wrong length", [] { tile(z({2, 3}), {2}); }, "[2]"});
  ti.push_back({"a negative multiple", [] { tile(z({2, 3}), {-1, 1}); }, "-1"});
  ti.push_back({"dims that overflow", [] { tile(z({2, 1}), {k2p62, 1}); }, "overflows"});
  ti.push_back({"2^46 elements", [] { tile(z({2}), {int64_t{1} << 45}); }, "more than can be allocated"});

  auto& b = c["broadcast_to"];
  b.push_back({"(3,) to [4]", [] { broadcast_to(z({3}), {4}); }, "[3] to shape [4]"});
  b.push_back({"a negative dim", [] { broadcast_to(z({1}), {-2}); }, "[-2]"});
  b.push_back({"to fewer dims", [] { broadcast_to(z({2, 3}), {3}); }, "[2, 3]"});
  b.push_back({"2^48 elements", [] { broadcast_to(z({1}), {k2p24, k2p24}); }, "more than can be allocated"});
  b.push_back({"2^80 elements", [] { broadcast_to(z({1}), {k2p40, k2p40}); }, "overflows"});

  auto& p = c["pad"];
  auto pad_attrs = [](std::vector<int64_t> pads, double value) {
    return Attrs{{"paddings", std::move(pads)}, {"constant_value", value}};
  };
  p.push_back({"paddings for the wrong rank", one("pad", pad_attrs({1, 1}, 0), z({2, 3})), "1 (before, after) pairs"});
  p.push_back({"a negative padding", [] { pad(z({2, 3}), {{0, 0}, {-1, 0}}); }, "(-1, 0)"});
  p.push_back({"paddings that overflow", one("pad", pad_attrs({k2p62, k2p62}, 0), z({2})), "overflows"});
  p.push_back({"0.5 for int32", [] { pad(z({2}, int32), {{1, 1}}, 0.5); }, "0.5"});
  p.push_back({"2^46 elements", one("pad", pad_attrs({0, int64_t{1} << 46}, 0), z({2})), "more than can be allocated"});

  auto& g = c["gather"];
  auto gat = [](const Tensor& params, const Tensor& indices, int64_t axis = 0, int64_t batch_dims = 0) {
    return [=] { gather(params, indices, axis, batch_dims); };
  };
  g.push_back({"index -1", gat(z({4, 3}), constant({0, -1})), "= -1"});
  g.push_back({"index 2^40", gat(z({4, 3}), constant(std::vector<int64_t>{1, k2p40}, {2})), "1099511627776"});
  g.push_back({"index 4 of 4 rows", gat(z({4, 3}), constant({{0, 4}})), "indices[0, 1] = 4"});
  g.push_back({"float indices", gat(z({4, 3}), z({2})), "float32"});
  g.push_back({"axis 2 of rank-2 params", gat(z({4, 3}), constant({0}), 2), "axis 2"});
  g.push_back({"axis -3 of rank-2 params", gat(z({4, 3}), constant({0}), -3), "axis -3"});
  g.push_back({"batch_dims above axis", gat(z({4, 3}), constant({{0}, {1}, {0}, {1}}), 0, 1), "batch_dims 1"});
  g.push_back({"batch_dims 3 for rank-1 indices", gat(z({4, 3}), constant({0}), 1, 3), "batch_dims 3"});
  g.push_back({"scalar params", gat(z({}), constant({0})), "scalar"});

  auto& us = c["unsorted_segment_sum"];
  auto seg = [](const Tensor& data, const Tensor& ids, int64_t n) {
    return [=] { unsorted_segment_sum(data, ids, n); };
  };
  us.push_back({"id -1", seg(z({3, 2}), constant({0, -1, 1}), 2), "segment_ids[1] = -1"});
  us.push_back({"id 5 of 5 segments", seg(z({2, 2}), constant({{0, 1}, {5, 2}}), 5), "segment_ids[1, 0] = 5"});
  us.push_back({"id 2^40", seg(z({2}), constant(std::vector<int64_t>{k2p40, 0}, {2}), 3), "1099511627776"});
  us.push_back({"any id with 0 segments", seg(z({1}), constant({0}), 0), "[0, 0)"});
  us.push_back({"float ids", seg(z({3}), z({3}), 2), "float32"});
  us.push_back({"bool data", seg(z({3}, bool_), constant({0, 1, 0}), 2), "bool"});
  us.push_back({"ids that are not a prefix of data's shape", seg(z({3, 2}), constant({0, 1}), 2), "(2,)"});
  us.push_back({"ids of higher rank than data", seg(z({3}), constant({{0}, {1}, {0}}), 2), "(3, 1)"});
  us.push_back({"num_segments -1", seg(z({3}), constant({0, 0, 0}), -1), "-1"});
  us.push_back({"2^62 segments of 4", seg(z({1, 4}), constant({0}), k2p62), "overflows"});
  us.push_back({"2^45 segments", seg(z({1}), constant({0}), int64_t{1} << 45), "more than can be allocated"});

  auto& o = c["one_hot"];
  o.push_back({"depth -1", [] { one_hot(constant({0, 1}), -1); }, "-1"});
  o.push_back({"axis 2 for rank-1 indices", [] { one_hot(constant({0, 1}), 3, 1, 0, 2); }, "axis 2"});
  o.push_back({"axis -2", [] { one_hot(constant({0, 1}), 3, 1, 0, -2); }, "axis -2"});
  o.push_back({"float indices", [] { one_hot(z({2}), 3); }, "float32"});
  o.push_back({"on_value 0.5 for int32", [] { one_hot(constant({0, 1}), 3, 0.5, 0, -1, int32); }, "0.5"});
  o.push_back({"dtype string", [] { one_hot(constant({0, 1}), 3, 1, 0, -1, string); }, "string"});
  o.push_back({"depth 2^44", [] { one_hot(constant({0, 1, 2}), int64_t{1} << 44); }, "more than can be allocated"});
  o.push_back({"depth 2^62", [] { one_hot(constant({0, 1, 2}), k2p62); }, "overflows"});

  auto& rv = c["reverse"];
  rv.push_back({"axis 2 of a rank-2 tensor", [] { reverse(z({2, 3}), Axes{2}); }, "axis 2"});
  rv.push_back({"axis -3 of a rank-2 tensor", [] { reverse(z({2, 3}), Axes{-3}); }, "axis -3"});
  rv.push_back({"axis 0 twice", [] { reverse(z({2, 3}), Axes{0, -2}); }, "more than once"});
  rv.push_back({"axis INT64_MIN", [] { reverse(z({2, 3}), Axes{kI64Min}); }, "-9223372036854775808"});

  auto& ss = c["strided_slice"];
  auto slice = [](std::vector<int64_t> b, std::vector<int64_t> e, std::vector<int64_t> st, int64_t shrink = 0,
                  int64_t ellipsis = 0) {
    Attrs a{{"begin", std::move(b)}, {"end", std::move(e)}, {"strides", std::move(st)}};
    a.set("shrink_axis_mask", shrink);
    a.set("ellipsis_mask", ellipsis);
    return [a] { call_op("strided_slice", a, {z({3, 4})}); };
  };
  ss.push_back({"step 0", slice({0}, {2}, {0}), "non-zero"});
  ss.push_back({"begin, end and strides of different lengths", slice({0, 0}, {2}, {1}), "2, 1 and 1"});
  ss.push_back({"index 5 of an axis of size 3", slice({5}, {6}, {1}, 1), "index 5"});
  ss.push_back({"index INT64_MIN", slice({kI64Min}, {0}, {1}, 1), "-9223372036854775808"});
  ss.push_back({"an index with a negative stride", slice({1}, {0}, {-1}, 1), "-1"});
  ss.push_back({"more axes than the input has", slice({0, 0, 0}, {1, 1, 1}, {1, 1, 1}), "more axes"});
  ss.push_back({"two ellipses", slice({0, 0}, {1, 1}, {1, 1}, 0, 3), "more than one ellipsis"});
  ss.push_back({"63 entries",
                slice(std::vector<int64_t>(63, 0), std::vector<int64_t>(63, 1), std::vector<int64_t>(63, 1)), "62"});

  auto& sg = c["stop_gradient"];
  sg.push_back({"no inputs", [] { call_op("stop_gradient", {}, {}); }, "expects 1 inputs, got 0"});
  sg.push_back({"two inputs", [] { call_op("stop_gradient", {}, {z({2}), z({2})}); }, "got 2"});
  sg.push_back({"three inputs", [] { call_op("stop_gradient", {}, {z({2}), z({2}), z({2})}); }, "got 3"});
  sg.push_back({"an undefined input", [] { stop_gradient(Tensor()); }, "input 0 is undefined"});

  auto& sh = c["shape_of"];
  sh.push_back({"out_type float32", [] { shape_of(z({2}), float32); }, "float32"});
  sh.push_back({"a dim of 2^32 as int32", [] { shape_of(z({0, int64_t{1} << 32}), int32); }, "4294967296"});
  sh.push_back({"no inputs", [] { call_op("shape_of", {{"out_type", int32}}, {}); }, "got 0"});
  sh.push_back({"an undefined input", [] { shape_of(Tensor()); }, "input 0 is undefined"});

  auto& rl = c["range_like"];
  rl.push_back(
      {"a scalar like", [] { range_like(z({})); }, "axis 0 is out of range for the shape of like, [] (rank 0)"});
  rl.push_back({"axis 2 of a rank-2 like", [] { range_like(z({2, 3}), 2); }, "axis 2 is out of range"});
  rl.push_back({"axis -3 of a rank-2 like", [] { range_like(z({2, 3}), -3); }, "axis -3"});
  rl.push_back({"dtype float32", [] { range_like(z({2}), 0, float32); }, "dtype must be int32 or int64, got float32"});
  rl.push_back({"2^32 indices as int32", [] { range_like(z({0, int64_t{1} << 32}), 1, int32); }, "use dtype int64"});
  rl.push_back({"no inputs", [] { call_op("range_like", {{"axis", int64_t{0}}, {"dtype", int64}}, {}); }, "got 0"});
  rl.push_back({"an undefined input", [] { range_like(Tensor()); }, "input 0 is undefined"});
}

// ---------------------------------------------------------------------------------------------
// Creation

void add_creation(Catalog& c) {
  auto& f = c["fill"];
  f.push_back({"a value that is not a scalar", [] { fill({2}, z({2})); }, "scalar"});
  f.push_back({"a negative dim", [] { fill({2, -1}, scalar(1.0f)); }, "[2, -1]"});
  f.push_back({"two inputs",
               [] {
                 call_op("fill", {{"shape", std::vector<int64_t>{2}}}, {scalar(1), scalar(2)});
               },
               "got 2"});
  f.push_back({"an undefined value", [] { fill({2}, Tensor()); }, "input 0 is undefined"});
  f.push_back({"2^48 elements", [] { fill({k2p24, k2p24}, scalar(1.0f)); }, "more than can be allocated"});
  f.push_back({"2^80 elements", [] { fill({k2p40, k2p40}, scalar(1.0f)); }, "overflows"});

  auto range_op = [](double start, double limit, double delta, DType dt) {
    return [=] { call_op("range", {{"start", start}, {"limit", limit}, {"delta", delta}, {"dtype", dt}}, {}); };
  };
  auto& r = c["range"];
  r.push_back({"delta 0", [] { range(0, 5, 0); }, "delta must not be 0"});
  r.push_back({"start above limit with a positive delta", [] { range(5, 0, 1); }, "5 / 0"});
  r.push_back({"start below limit with a negative delta", [] { range(0, 5, -1); }, "0 / 5"});
  r.push_back({"dtype bool", range_op(0, 5, 1, bool_), "bool"});
  r.push_back({"dtype complex64", range_op(0, 5, 1, complex64), "complex64"});
  r.push_back({"2.5 for int32", range_op(0, 2.5, 1, int32), "2.5"});
  r.push_back({"a NaN limit", range_op(0, std::numeric_limits<double>::quiet_NaN(), 1, float32), "too many"});
  r.push_back({"1e600 elements", range_op(0, 1e300, 1e-300, float64), "too many"});
  r.push_back({"8e15 elements", range_op(0, 8e15, 1, float32), "more than can be allocated"});
  r.push_back({"values beyond uint8", range_op(250, 260, 3, uint8), "does not fit uint8"});
  r.push_back({"values below int8", range_op(-200, 0, 50, int8), "-200"});

  auto lin = [](double start, double stop, int64_t num, DType dt) {
    return [=] { call_op("linspace", {{"start", start}, {"stop", stop}, {"num", num}, {"dtype", dt}}, {}); };
  };
  auto& l = c["linspace"];
  l.push_back({"num -1", lin(0, 1, -1, float32), "got -1"});
  l.push_back({"dtype int32", lin(0, 1, 3, int32), "int32"});
  l.push_back({"dtype bool", lin(0, 1, 3, bool_), "bool"});
  l.push_back(
      {"an input",
       [] {
         call_op("linspace", {{"start", 0.0}, {"stop", 1.0}, {"num", int64_t{3}}, {"dtype", float32}}, {scalar(1.0f)});
       },
       "expects 0 inputs, got 1"});
  l.push_back({"num 2^50", lin(0, 1, int64_t{1} << 50, float32), "more than can be allocated"});

  auto& e = c["eye"];
  auto eye_op = [](int64_t rows, int64_t cols, DType dt) {
    return [=] { call_op("eye", {{"num_rows", rows}, {"num_columns", cols}, {"dtype", dt}}, {}); };
  };
  e.push_back({"-1 rows", [] { eye(-1); }, "-1"});
  e.push_back({"-2 columns", [] { eye(2, -2, float32); }, "-2"});
  e.push_back({"dtype string", eye_op(2, 2, string), "string"});
  e.push_back({"an input",
               [] {
                 call_op("eye", {{"num_rows", int64_t{2}}, {"num_columns", int64_t{2}}, {"dtype", float32}}, {z({})});
               },
               "got 1"});
  e.push_back({"2^24 x 2^24", eye_op(k2p24, k2p24, float32), "more than can be allocated"});
  e.push_back({"2^40 x 2^40", eye_op(k2p40, k2p40, float32), "overflows"});

  auto rnd = [](const std::string& op, std::vector<int64_t> shape, DType dt, double a, double b) {
    const bool uniform = op == "random_uniform";
    Attrs attrs{{"shape", std::move(shape)}, {"dtype", dt}, {"seed", int64_t{1}}, {"offset", int64_t{0}}};
    attrs.set(uniform ? "minval" : "mean", a);
    attrs.set(uniform ? "maxval" : "stddev", b);
    return [op, attrs] { call_op(op, attrs, {}); };
  };
  for (const char* name : {"random_normal", "random_uniform"}) {
    const std::string op = name;
    auto& v = c[op];
    v.push_back({"a negative dim", rnd(op, {3, -1}, float32, 0, 1), "[3, -1]"});
    v.push_back({"dtype complex64", rnd(op, {3}, complex64, 0, 1), "complex64"});
    v.push_back({"dtype bool", rnd(op, {3}, bool_, 0, 1), "bool"});
    v.push_back({"an input",
                 [op] {
                   // built with set(): GCC 12 warns (falsely) about a braced list of these attrs
                   Attrs a;
                   a.set("shape", std::vector<int64_t>{2}).set("dtype", float32).set("seed", int64_t{1});
                   a.set("offset", int64_t{0}).set(op == "random_uniform" ? "minval" : "mean", 0.0);
                   a.set(op == "random_uniform" ? "maxval" : "stddev", 1.0);
                   call_op(op, a, {z({})});
                 },
                 "got 1"});
    v.push_back({"2^48 elements", rnd(op, {k2p24, k2p24}, float32, 0, 1), "more than can be allocated"});
    v.push_back({"2^80 elements", rnd(op, {k2p40, k2p40}, float32, 0, 1), "overflows"});
  }
  c["random_normal"].push_back({"dtype int32", rnd("random_normal", {3}, int32, 0, 1), "int32"});
  c["random_uniform"].push_back({"int32 with minval == maxval", rnd("random_uniform", {3}, int32, 5, 5), "[5, 5)"});
  c["random_uniform"].push_back({"int32 with minval > maxval", rnd("random_uniform", {3}, int32, 5, 1), "[5, 1)"});
  c["random_uniform"].push_back({"int64 bounds beyond int64", rnd("random_uniform", {3}, int64, 0, 1e19), "1e+19"});
  c["random_uniform"].push_back({"int8 bounds beyond int8", rnd("random_uniform", {3}, int8, 0, 1000), "1000"});
}

// ---------------------------------------------------------------------------------------------
// Strings

Tensor strs(const Shape& s, const std::vector<std::string>& v) { return make_string_tensor(s, v); }

void add_strings(Catalog& c) {
  // every string op: a numeric input, a wrong input count, an undefined input
  const std::vector<std::string> one_input = {
      "string_split", "string_bytes_split", "string_to_number", "string_length", "string_substr",
      "string_lower", "string_upper",       "decode_raw",       "unicode_split", "unicode_decode"};
  for (const std::string& op : one_input) {
    Attrs a;
    if (op == "string_to_number" || op == "decode_raw") a.set("out_type", float32);
    if (op == "string_substr") a = Attrs{{"pos", int64_t{0}}, {"len", int64_t{1}}};
    auto& v = c[op];
    v.push_back({"an int32 input", [=] { call_op(op, a, {z({2}, int32)}); }, "got dtype int32"});
    v.push_back({"two inputs", [=] { call_op(op, a, {strs({}, {"a"}), strs({}, {"b"})}); }, "got 2"});
    v.push_back({"an undefined input", [=] { call_op(op, a, {Tensor()}); }, "input 0 is undefined"});
  }
  for (const std::string op : {"string_split", "string_bytes_split", "unicode_split", "unicode_decode"})
    c[op].push_back({"a matrix", [=] { call_op(op, {}, {strs({1, 2}, {"a", "b"})}); }, "shape (1, 2)"});
  c["string_split"].push_back({"maxsplit -2",
                               [] {
                                 call_op("string_split", {{"maxsplit", int64_t{-2}}}, {strs({}, {"a"})});
                               },
                               "-2"});
  c["string_to_number"].push_back({"text that is not a number",
                                   [] {
                                     call_op("string_to_number", {{"out_type", float32}}, {strs({2}, {"1", "x1"})});
                                   },
                                   "b'x1' at [1]"});
  c["string_to_number"].push_back({"int32 overflow",
                                   [] {
                                     call_op("string_to_number", {{"out_type", int32}}, {strs({}, {"99999999999"})});
                                   },
                                   "b'99999999999'"});
  c["string_to_number"].push_back({"out_type uint8",
                                   [] {
                                     call_op("string_to_number", {{"out_type", uint8}}, {strs({}, {"1"})});
                                   },
                                   "uint8"});
  c["string_length"].push_back({"unit WORD",
                                [] {
                                  call_op("string_length", {{"unit", std::string("WORD")}}, {strs({}, {"a"})});
                                },
                                "'WORD'"});
  c["string_substr"].push_back(
      {"pos beyond the string",
       [] {
         call_op("string_substr", {{"pos", int64_t{4}}, {"len", int64_t{1}}}, {strs({2}, {"abcd", "abc"})});
       },
       "pos 4 is out of range for b'abc' at [1]"});
  c["string_substr"].push_back({"pos far before the start",
                                [] {
                                  call_op("string_substr", {{"pos", kI64Min}, {"len", int64_t{1}}}, {strs({}, {"a"})});
                                },
                                "out of range"});
  c["string_substr"].push_back(
      {"negative len",
       [] {
         call_op("string_substr", {{"pos", int64_t{0}}, {"len", int64_t{-1}}}, {strs({}, {"a"})});
       },
       "-1"});
  for (const std::string op : {"string_lower", "string_upper"})
    c[op].push_back({"encoding latin-1",
                     [=] {
                       call_op(op, {{"encoding", std::string("latin-1")}}, {strs({}, {"a"})});
                     },
                     "latin-1"});
  c["decode_raw"].push_back({"a length that is not a multiple of 4",
                             [] {
                               call_op("decode_raw", {{"out_type", int32}}, {strs({}, {"abcde"})});
                             },
                             "not a multiple of 4"});
  c["decode_raw"].push_back({"strings of different lengths",
                             [] {
                               call_op("decode_raw", {{"out_type", uint8}}, {strs({2}, {"ab", "a"})});
                             },
                             "element at [1] has 1 bytes"});
  c["decode_raw"].push_back({"out_type string",
                             [] {
                               call_op("decode_raw", {{"out_type", string}}, {strs({}, {"a"})});
                             },
                             "string"});
  for (const std::string op : {"unicode_split", "unicode_decode"}) {
    c[op].push_back({"invalid UTF-8 with errors strict",
                     [=] {
                       call_op(op, {{"errors", std::string("strict")}}, {strs({2}, {"ok", "a\x80"})});
                     },
                     "invalid UTF-8 at byte 1 of b'a\\x80' at [1]"});
    c[op].push_back({"encoding UTF-16",
                     [=] {
                       call_op(op, {{"input_encoding", std::string("UTF-16")}}, {strs({}, {"a"})});
                     },
                     "UTF-16"});
    c[op].push_back({"errors loud",
                     [=] {
                       call_op(op, {{"errors", std::string("loud")}}, {strs({}, {"a"})});
                     },
                     "loud"});
  }
  c["unicode_decode"].push_back(
      {"replacement_char beyond Unicode",
       [] {
         call_op("unicode_decode", {{"replacement_char", int64_t{0x110000}}}, {strs({}, {"a"})});
       },
       "1114112"});
  // joining: variadic string inputs that broadcast
  c["string_join"].push_back({"no inputs", [] { call_op("string_join", {}, {}); }, "at least one input"});
  c["string_join"].push_back({"an int32 input",
                              [] {
                                call_op("string_join", {}, {strs({}, {"a"}), z({1}, int32)});
                              },
                              "input 1"});
  c["string_join"].push_back({"shapes that do not broadcast",
                              [] {
                                call_op("string_join", {}, {strs({2}, {"a", "b"}), strs({3}, {"a", "b", "c"})});
                              },
                              "[2] and [3]"});
  c["string_join"].push_back({"an undefined input",
                              [] {
                                call_op("string_join", {}, {strs({}, {"a"}), Tensor()});
                              },
                              "input 1 is undefined"});
  // unicode_encode: code points and row splits
  auto splits = [](std::vector<int64_t> v) { return constant(v, Shape{static_cast<int64_t>(v.size())}); };
  auto& enc = c["unicode_encode"];
  enc.push_back({"float code points", [=] { call_op("unicode_encode", {}, {z({2}), splits({0, 2})}); }, "float32"});
  enc.push_back({"int32 row splits", [=] { call_op("unicode_encode", {}, {z({2}, int32), z({2}, int32)}); }, "int32"});
  enc.push_back({"empty row splits",
                 [=] {
                   call_op("unicode_encode", {}, {z({2}, int32), splits({})});
                 },
                 "non-empty vector"});
  enc.push_back({"row splits past the values",
                 [=] {
                   call_op("unicode_encode", {}, {z({2}, int32), splits({0, 1, 5})});
                 },
                 "end at 5 but there are 2 values"});
  enc.push_back({"decreasing row splits",
                 [=] {
                   call_op("unicode_encode", {}, {z({2}, int32), splits({0, 2, 1, 2})});
                 },
                 "row_splits[1] = 2 and row_splits[2] = 1"});
  enc.push_back({"row splits not starting at 0",
                 [=] {
                   call_op("unicode_encode", {}, {z({2}, int32), splits({1, 2})});
                 },
                 "row_splits[0] = 1"});
  enc.push_back({"an invalid code point with errors strict",
                 [=] {
                   call_op("unicode_encode", {{"errors", std::string("strict")}}, {constant({65, -5}), splits({0, 2})});
                 },
                 "code point -5"});
  // ragged_value_rowids: the output has one row id per value, so the splits must end at the
  // values' count (a hostile last split once sized the output)
  auto& ids = c["ragged_value_rowids"];
  const Tensor v3 = z({3});
  ids.push_back({"int32 splits", [=] { call_op("ragged_value_rowids", {}, {z({2}, int32), v3}); }, "int32"});
  ids.push_back({"a scalar", [=] { call_op("ragged_value_rowids", {}, {z({}, int64), v3}); }, "shape ()"});
  ids.push_back({"no values", [=] { call_op("ragged_value_rowids", {}, {splits({0, 3})}); }, "expects 2 inputs"});
  ids.push_back({"scalar values",
                 [=] {
                   call_op("ragged_value_rowids", {}, {splits({0, 1}), z({})});
                 },
                 "values must have at least one axis"});
  ids.push_back({"splits not starting at 0",
                 [=] {
                   call_op("ragged_value_rowids", {}, {splits({3, 4}), v3});
                 },
                 "row_splits[0] = 3"});
  ids.push_back({"decreasing splits",
                 [=] {
                   call_op("ragged_value_rowids", {}, {splits({0, 5, 2}), v3});
                 },
                 "row_splits[1] = 5 and row_splits[2] = 2"});
  ids.push_back({"splits ending past the values",
                 [=] {
                   call_op("ragged_value_rowids", {}, {splits({0, 2, 4}), v3});
                 },
                 "row_splits end at 4 but there are 3 values"});
  ids.push_back({"splits ending before the values",
                 [=] {
                   call_op("ragged_value_rowids", {}, {splits({0, 1}), v3});
                 },
                 "row_splits end at 1 but there are 3 values"});
  ids.push_back({"2^62 values",
                 [=] {
                   call_op("ragged_value_rowids", {}, {splits({0, k2p62}), v3});
                 },
                 "row_splits end at 4611686018427387904 but there are 3 values"});
}

// Built afresh for each test case rather than kept in a static: some cases hold tensors, and a
// tensor destroyed during exit would outlive the main thread's allocator cache.
// ---------------------------------------------------------------------------------------------
// Control and I/O

// A tensor of a trace that has ended (the tracer's parameter, kept past the trace).
Tensor leaked_symbolic(DType dtype = float32) {
  Tensor leaked;
  trace::trace_concrete("leak", {TensorSpec({3}, dtype, "x")}, [&leaked](std::span<const Tensor> in) {
    leaked = in[0];
    return std::vector<Tensor>{in[0]};
  });
  return leaked;
}

// Some reference-counted object that is not a CallTarget.
struct NotAFunction final : RefCounted {};

void add_control(Catalog& c) {
  // f(x: float32 (3,), y: float32 (3,)) = x * y + x
  const ops::ObjectRef fn(
      trace::trace_concrete("fma", {TensorSpec({3}, float32, "x"), TensorSpec({3}, float32, "y")},
                            [](std::span<const Tensor> in) { return std::vector<Tensor>{in[0] * in[1] + in[0]}; }));
  const Attrs call_attrs{{"function", fn}};
  auto& k = c["call"];
  k.push_back({"too few inputs", [=] { call_op("call", call_attrs, {z({3})}); }, "takes 2 inputs, got 1"});
  k.push_back({"too many inputs", [=] { call_op("call", call_attrs, {z({3}), z({3}), z({3})}); }, "got 3"});
  k.push_back({"an input of the wrong dtype",
               [=] {
                 call_op("call", call_attrs, {z({3}), z({3}, int32)});
               },
               "function 'fma': argument 'y'"});
  k.push_back({"an input of the wrong shape", [=] { call_op("call", call_attrs, {z({4}), z({3})}); }, "(4,)"});
  k.push_back({"an input of the wrong rank", [=] { call_op("call", call_attrs, {z({3}), z({1, 3})}); }, "(1, 3)"});
  k.push_back({"an undefined input", [=] { call_op("call", call_attrs, {z({3}), Tensor()}); }, "input 1 is undefined"});
  k.push_back({"a symbolic tensor leaked from a trace",
               [=] {
                 call_op("call", call_attrs, {leaked_symbolic(), z({3})});
               },
               "input 0 is a symbolic tensor leaked from a trace that has ended"});
  k.push_back({"no function attribute", [] { call_op("call", {}, {z({3}), z({3})}); }, "'function'"});
  k.push_back({"a function attribute that is not an object",
               [] {
                 call_op("call", {{"function", int64_t{3}}}, {z({3})});
               },
               "'function'"});
  k.push_back({"a null function", [] { call_op("call", {{"function", ops::ObjectRef()}}, {z({3})}); }, "'function'"});
  k.push_back({"a function attribute that is not a function",
               [] {
                 call_op("call", {{"function", ops::ObjectRef(make_ref<NotAFunction>())}}, {z({3})});
               },
               "'function'"});

  auto& p = c["print"];
  p.push_back({"an undefined input", [] { print("x:", {Tensor()}); }, "input 0 is undefined"});
  p.push_back({"an undefined third input",
               [] {
                 call_op("print", {{"message", std::string("m")}}, {z({2}), z({}, int32), Tensor()});
               },
               "input 2 is undefined"});
  p.push_back({"a symbolic tensor leaked from a trace", [] { print("x:", {leaked_symbolic()}); }, "leaked"});
  p.push_back({"a leaked tensor after good ones",
               [] {
                 print("x:", {z({2}), z({2, 2}, bool_), leaked_symbolic()});
               },
               "input 2 is a symbolic tensor leaked"});

  auto& a = c["assert"];
  const Attrs msg{{"message", std::string("x must be positive")}};
  a.push_back(
      {"a float32 condition", [=] { call_op("assert", msg, {ones({3})}); }, "must be a bool tensor, got float32"});
  a.push_back({"an int32 condition", [] { debugging::assert_true(ones({}, int32), "m"); }, "got int32"});
  a.push_back({"no condition", [=] { call_op("assert", msg, {}); }, "expects 1 inputs, got 0"});
  a.push_back({"two conditions",
               [=] {
                 call_op("assert", msg, {ones({3}, bool_), ones({3}, bool_)});
               },
               "expects 1 inputs, got 2"});
  a.push_back({"an undefined condition", [] { debugging::assert_true(Tensor(), "m"); }, "input 0 is undefined"});
  a.push_back({"a leaked symbolic condition", [=] { call_op("assert", msg, {leaked_symbolic(bool_)}); }, "leaked"});
  a.push_back({"a false element",
               [] {
                 debugging::assert_true(constant({1.0f, -2.0f, 3.0f}) > 0.0f, "x must be positive");
               },
               "x must be positive (condition false at index [1])"});
}

// ---------------------------------------------------------------------------------------------
// Shapes taken from a tensor: broadcast_like, reshape_like, sum_to_like

// Runs `op` on x and like traced into a function whose parameters have the given specs (an
// unknown dim is -1), so shapes that infer let through are checked when the function runs.
std::function<void()> traced_like(const std::string& op, const Shape& x_spec, const Shape& like_spec, const Tensor& x,
                                  const Tensor& like) {
  return [=] {
    const ConcreteFunction f(trace::trace_concrete(
        op, {TensorSpec(x_spec, float32, "x"), TensorSpec(like_spec, float32, "like")},
        [&op](std::span<const Tensor> in) { return std::vector<Tensor>{ops::apply(ops::op_def(op).id, {}, in)[0]}; }));
    f({x, like});
  };
}

void add_like(Catalog& c) {
  for (const char* name : {"broadcast_like", "reshape_like", "sum_to_like"}) {
    const std::string op(name);
    auto& v = c[op];
    v.push_back({"one input", [=] { call_op(op, {}, {z({3})}); }, "expects 2 inputs, got 1"});
    v.push_back({"three inputs", [=] { call_op(op, {}, {z({3}), z({3}), z({3})}); }, "got 3"});
    v.push_back({"an undefined x", [=] { call_op(op, {}, {Tensor(), z({3})}); }, "input 0 is undefined"});
    v.push_back({"an undefined like", [=] { call_op(op, {}, {z({3}), Tensor()}); }, "input 1 is undefined"});
    v.push_back({"a symbolic x leaked from a trace",
                 [=] {
                   call_op(op, {}, {leaked_symbolic(), z({3})});
                 },
                 "input 0 is a symbolic tensor leaked from a trace that has ended"});
    v.push_back({"a symbolic like leaked from a trace",
                 [=] {
                   call_op(op, {}, {z({3}), leaked_symbolic(int32)});
                 },
                 "input 1 is a symbolic tensor leaked from a trace that has ended"});
    v.push_back({"a string x",
                 [=] {
                   call_op(op, {}, {strs({3}, {"a", "b", "c"}), z({3})});
                 },
                 "input 0 has dtype string"});
  }

  auto like = [](const std::string& op, const Tensor& x, const Tensor& l) { return [=] { call_op(op, {}, {x, l}); }; };
  auto& b = c["broadcast_like"];
  b.push_back({"(3,) like (4,)", like("broadcast_like", z({3}), z({4})), "shape [3] to the shape of like, [4]"});
  b.push_back({"(2, 3) like (3,): rank too large", [] { broadcast_like(z({2, 3}), z({3})); }, "[2, 3]"});
  b.push_back({"(2,) like a scalar", [] { broadcast_like(z({2}), z({})); }, "[2]"});
  b.push_back({"(2, 1) like (3, 4)", [] { broadcast_like(z({2, 1}), z({3, 4}, int32)); }, "[3, 4]"});
  b.push_back({"(0,) like (2,)", [] { broadcast_like(z({0}), z({2})); }, "[0]"});
  b.push_back({"(3,) like (?,) that is (4,) when the function runs",
               traced_like("broadcast_like", {3}, {-1}, z({3}), z({4})), "[4]"});
  b.push_back({"(?,) that is (3,) like (4,) when the function runs",
               traced_like("broadcast_like", {-1}, {4}, z({3}), z({4})), "[3]"});

  auto& r = c["reshape_like"];
  r.push_back({"6 elements like (4,)", [] { reshape_like(z({2, 3}), z({4})); }, "6 elements"});
  r.push_back({"a scalar like (0,)", [] { reshape_like(z({}), z({0}, bool_)); }, "1 elements"});
  r.push_back({"0 elements like a scalar", [] { reshape_like(z({0, 3}), z({})); }, "0 elements"});
  r.push_back({"(2, 3) like (3, 3)", [] { reshape_like(z({2, 3}), z({3, 3})); }, "[3, 3]"});
  r.push_back({"(?,) that is (5,) like (4,) when the function runs",
               traced_like("reshape_like", {-1}, {4}, z({5}), z({4})), "5 elements"});

  auto& s = c["sum_to_like"];
  s.push_back({"bool x", [] { sum_to_like(z({2, 3}, bool_), z({3})); }, "bool"});
  s.push_back({"bool x like bool", [] { sum_to_like(z({3}, bool_), z({3}, bool_)); }, "bool"});
  s.push_back({"(2, 3) like (4,)", like("sum_to_like", z({2, 3}), z({4})), "shape [2, 3] to the shape of like, [4]"});
  s.push_back({"(3,) like (2, 3): like's rank too large", [] { sum_to_like(z({3}), z({2, 3})); }, "[2, 3]"});
  s.push_back({"(1,) like (3,): like is not broadcast to x", [] { sum_to_like(z({1}), z({3})); }, "[1]"});
  s.push_back({"(2, 3) like (2, 0)", [] { sum_to_like(z({2, 3}), z({2, 0})); }, "[2, 0]"});
  s.push_back({"a scalar like (1,)", [] { sum_to_like(z({}), z({1})); }, "[1]"});
  s.push_back({"(?, ?) that is (2, 4) like (3,) when the function runs",
               traced_like("sum_to_like", {-1, -1}, {3}, z({2, 4}), z({3})), "[2, 4]"});
  // the same element count: a kernel that only reshaped would give a wrong answer, not an error
  s.push_back({"(?, ?) that is (3, 2) like (2, 3) when the function runs",
               traced_like("sum_to_like", {-1, -1}, {2, 3}, z({3, 2}), z({2, 3})), "[3, 2]"});
}

// ---------------------------------------------------------------------------------------------
// Convolution and pooling

// conv2d traced with unknown dims, run on inputs whose channels differ from the filter's.
std::function<void()> traced_conv(const Shape& x_spec, const Tensor& x, const Tensor& f) {
  return [=] {
    const ConcreteFunction fn(trace::trace_concrete(
        "conv", {TensorSpec(x_spec, float32, "x"), TensorSpec(f.shape(), float32, "f")},
        [](std::span<const Tensor> in) { return std::vector<Tensor>{conv2d(in[0], in[1], {1}, "SAME")}; }));
    fn({x, f});
  };
}

void add_conv(Catalog& c) {
  const Tensor x5 = z({1, 5, 5, 1}), f3 = z({3, 3, 1, 1});
  auto& v = c["conv2d"];
  v.push_back({"a rank-3 input", [] { conv2d(z({5, 5, 1}), z({3, 3, 1, 1})); }, "[5, 5, 1]"});
  v.push_back({"a rank-2 filter", [=] { conv2d(x5, z({3, 3})); }, "filter must have rank 4"});
  v.push_back({"input channels that differ from the filter's",
               [] {
                 conv2d(z({1, 5, 5, 3}), z({3, 3, 2, 4}));
               },
               "[3, 3, 2, 4]"});
  v.push_back({"stride 0", [=] { conv2d(x5, f3, {0}); }, "strides must be positive, got [0, 0]"});
  v.push_back({"a negative dilation", [=] { conv2d(x5, f3, {1}, "SAME", {1, -2}); }, "[1, -2]"});
  v.push_back({"three strides",
               [=] {
                 call_op("conv2d",
                         {{"strides", std::vector<int64_t>{1, 1, 1}},
                          {"padding", std::string("SAME")},
                          {"dilations", std::vector<int64_t>{1, 1}}},
                         {x5, f3});
               },
               "must have 2 values"});
  v.push_back({"lower-case padding", [=] { conv2d(x5, f3, {1}, "same"); }, "\"same\""});
  v.push_back({"a batch stride in the four-value form", [=] { conv2d(x5, f3, {2, 1, 1, 1}); }, "[2, 1, 1, 1]"});
  v.push_back({"a VALID window larger than the input",
               [] {
                 conv2d(z({1, 2, 2, 1}), z({3, 3, 1, 1}));
               },
               "input height (2) to be at least the window height (3)"});
  v.push_back({"a VALID dilated window larger than the input",
               [] {
                 conv2d(z({1, 4, 4, 1}), z({3, 3, 1, 1}), {1}, "VALID", {2});
               },
               "(5, dilated)"});
  v.push_back(
      {"a dilation whose window overflows int64", [=] { conv2d(x5, f3, {1}, "SAME", {k2p62}); }, "overflows int64"});
  v.push_back({"a filter of height 0", [=] { conv2d(x5, z({0, 3, 1, 1}), {1}, "SAME"); }, "0 x 3"});
  v.push_back({"int32 operands", [] { conv2d(z({1, 5, 5, 1}, int32), z({3, 3, 1, 1}, int32)); }, "int32"});
  v.push_back({"a float64 filter for a float32 input", [=] { conv2d(x5, z({3, 3, 1, 1}, float64)); }, "float64"});
  v.push_back({"an output of 2^48 elements from empty operands",
               [] {
                 conv2d(z({k2p24, 1, 1, 0}), z({1, 1, 0, k2p24}));
               },
               "16777216"});
  v.push_back({"channels (?) that are 3 when the function runs, for a filter of 2",
               traced_conv({-1, -1, -1, -1}, z({1, 5, 5, 3}), z({3, 3, 2, 1})), "in_channels"});

  auto& bi = c["conv2d_backprop_input"];
  bi.push_back({"input sizes of 3 values",
                [=] {
                  conv2d_backprop_input({5, 5, 1}, f3, z({1, 3, 3, 1}));
                },
                "input_sizes must be 4 sizes"});
  bi.push_back({"an unknown input height",
                [=] {
                  conv2d_backprop_input({1, -1, 5, 1}, f3, z({1, 3, 3, 1}));
                },
                "known height and width"});
  bi.push_back({"an input size of -2", [=] { conv2d_backprop_input({1, 5, -2, 1}, f3, z({1, 3, 3, 1})); }, "-2"});
  bi.push_back({"out_backprop of the wrong shape",
                [=] {
                  conv2d_backprop_input({1, 5, 5, 1}, f3, z({1, 4, 4, 1}));
                },
                "[1, 3, 3, 1]"});
  bi.push_back({"filter out_channels that differ from out_backprop's",
                [] {
                  conv2d_backprop_input({1, 5, 5, 1}, z({3, 3, 1, 2}), z({1, 3, 3, 1}));
                },
                "out_channels"});
  bi.push_back({"input channels that differ from the filter's",
                [=] {
                  conv2d_backprop_input({1, 5, 5, 2}, f3, z({1, 3, 3, 1}));
                },
                "in_channels"});
  bi.push_back({"int32 operands",
                [] {
                  conv2d_backprop_input({1, 5, 5, 1}, z({3, 3, 1, 1}, int32), z({1, 3, 3, 1}, int32));
                },
                "int32"});
  bi.push_back({"a VALID window larger than input_sizes",
                [=] {
                  conv2d_backprop_input({1, 2, 2, 1}, f3, z({1, 1, 1, 1}));
                },
                "window height"});

  auto& bf = c["conv2d_backprop_filter"];
  bf.push_back({"filter sizes of height 0",
                [=] {
                  conv2d_backprop_filter(x5, {0, 3, 1, 1}, z({1, 3, 3, 1}));
                },
                "positive height and width"});
  bf.push_back({"out_backprop of the wrong shape",
                [=] {
                  conv2d_backprop_filter(x5, {3, 3, 1, 1}, z({1, 5, 5, 1}));
                },
                "[1, 3, 3, 1]"});
  bf.push_back({"a rank-3 input",
                [] {
                  conv2d_backprop_filter(z({5, 5, 1}), {3, 3, 1, 1}, z({1, 3, 3, 1}));
                },
                "[5, 5, 1]"});
  bf.push_back({"input channels that differ from filter_sizes'",
                [=] {
                  conv2d_backprop_filter(x5, {3, 3, 2, 1}, z({1, 3, 3, 1}));
                },
                "[3, 3, 2, 1]"});
  bf.push_back({"mismatched dtypes",
                [=] {
                  conv2d_backprop_filter(x5, {3, 3, 1, 1}, z({1, 3, 3, 1}, float16));
                },
                "float16"});
  bf.push_back({"padding \"FULL\"",
                [=] {
                  conv2d_backprop_filter(x5, {3, 3, 1, 1}, z({1, 3, 3, 1}), {1}, "FULL");
                },
                "\"FULL\""});

  const Tensor p4 = z({1, 4, 4, 2});
  for (const char* name : {"max_pool2d", "avg_pool2d"}) {
    const std::string op(name);
    auto pool = [op](const Tensor& x, std::vector<int64_t> k, std::vector<int64_t> s, std::string p = "VALID") {
      return [=] { op == "max_pool2d" ? max_pool2d(x, k, s, p) : avg_pool2d(x, k, s, p); };
    };
    auto& p = c[op];
    p.push_back({"ksize 0", pool(p4, {0}, {1}), "ksize must be positive"});
    p.push_back({"stride -1", pool(p4, {2}, {1, -1}), "[1, -1]"});
    p.push_back({"a rank-2 input", pool(z({4, 4}), {2}, {2}), "[4, 4]"});
    p.push_back({"bool input", pool(z({1, 4, 4, 1}, bool_), {2}, {2}), "bool"});
    p.push_back({"complex input", pool(z({1, 4, 4, 1}, complex64), {2}, {2}), "complex64"});
    p.push_back({"a VALID window larger than the input", pool(p4, {5, 1}, {1}), "window height (5)"});
    p.push_back({"padding \"FULL\"", pool(p4, {2}, {2}, "FULL"), "\"FULL\""});
    p.push_back({"a channel window in the four-value form", pool(p4, {1, 2, 2, 2}, {1}), "[1, 2, 2, 2]"});
    p.push_back({"one input too many",
                 [=] {
                   call_op(op,
                           {{"ksize", std::vector<int64_t>{2, 2}},
                            {"strides", std::vector<int64_t>{2, 2}},
                            {"padding", std::string("VALID")}},
                           {p4, p4});
                 },
                 "expects 1 inputs, got 2"});
  }
  c["avg_pool2d"].push_back({"int32 input", [] { avg_pool2d(z({1, 4, 4, 1}, int32), {2}, {2}); }, "int32"});

  auto& mg = c["max_pool2d_grad"];
  mg.push_back({"grad of the wrong shape", [=] { max_pool2d_grad(p4, z({1, 3, 3, 2}), {2}, {2}); }, "[1, 2, 2, 2]"});
  mg.push_back({"mismatched dtypes", [=] { max_pool2d_grad(p4, z({1, 2, 2, 2}, float64), {2}, {2}); }, "float64"});
  mg.push_back({"int32 operands",
                [] {
                  max_pool2d_grad(z({1, 4, 4, 2}, int32), z({1, 2, 2, 2}, int32), {2}, {2});
                },
                "int32"});
  mg.push_back({"a rank-3 grad", [=] { max_pool2d_grad(p4, z({2, 2, 2}), {2}, {2}); }, "[2, 2, 2]"});
  mg.push_back({"stride 0", [=] { max_pool2d_grad(p4, z({1, 2, 2, 2}), {2}, {0, 2}); }, "[0, 2]"});

  auto& mgg = c["max_pool2d_grad_grad"];
  mgg.push_back({"grad that is not the input's shape",
                 [=] {
                   max_pool2d_grad_grad(p4, z({1, 2, 2, 2}), {2}, {2});
                 },
                 "[1, 4, 4, 2]"});
  mgg.push_back({"mismatched dtypes",
                 [=] {
                   max_pool2d_grad_grad(p4, z({1, 4, 4, 2}, bfloat16), {2}, {2});
                 },
                 "bfloat16"});
  mgg.push_back({"a rank-5 input",
                 [] {
                   max_pool2d_grad_grad(z({1, 1, 4, 4, 2}), z({1, 1, 4, 4, 2}), {2}, {2});
                 },
                 "[1, 1, 4, 4, 2]"});
  mgg.push_back({"padding \"valid\"", [=] { max_pool2d_grad_grad(p4, p4, {2}, {2}, "valid"); }, "\"valid\""});

  auto& ag = c["avg_pool2d_grad"];
  ag.push_back({"an unknown input width",
                [] {
                  avg_pool2d_grad({1, 4, -1, 2}, z({1, 2, 2, 2}), {2}, {2});
                },
                "known height and width"});
  ag.push_back({"grad of the wrong shape",
                [] {
                  avg_pool2d_grad({1, 4, 4, 2}, z({1, 3, 2, 2}), {2}, {2});
                },
                "[1, 2, 2, 2]"});
  ag.push_back({"input sizes of 2 values",
                [] {
                  avg_pool2d_grad({4, 4}, z({1, 2, 2, 2}), {2}, {2});
                },
                "input_sizes must be 4 sizes"});
  ag.push_back({"int32 grad", [] { avg_pool2d_grad({1, 4, 4, 2}, z({1, 2, 2, 2}, int32), {2}, {2}); }, "int32"});
  ag.push_back({"input channels that differ from grad's",
                [] {
                  avg_pool2d_grad({1, 4, 4, 3}, z({1, 2, 2, 2}), {2}, {2});
                },
                "[1, 2, 2, 3]"});
}

Catalog catalog() {
  Catalog cat;
  add_elementwise(cat);
  add_reductions(cat);
  add_movement(cat);
  add_creation(cat);
  add_control(cat);
  add_strings(cat);
  add_like(cat);
  add_conv(cat);
  return cat;
}

// What is wrong with the way the call failed ("" when it failed as it should).
std::string problem_with(const std::string& op, const BadCase& c) {
  try {
    c.call();
    return "no error was thrown";
  } catch (const Internal& e) {
    return std::string("threw InternalError: ") + e.what();
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.rfind("[" + op + "] ", 0) != 0) return "the message does not start with [" + op + "]: " + msg;
    if (msg.find(c.mentions) == std::string::npos) return "the message does not mention \"" + c.mentions + "\": " + msg;
    return "";
  } catch (const std::exception& e) {
    return std::string("threw an exception that is not a kiln::Error: ") + e.what();
  }
}

void run_catalog() {
  const Catalog cat = catalog();
  for (const ops::OpDef& def : ops::all_ops()) {
    auto it = cat.find(std::string(def.name));
    if (it == cat.end()) continue;
    for (const BadCase& c : it->second) {
      const std::string problem = problem_with(it->first, c);
      INFO("op " << it->first << ", case: " << c.what << "\n" << problem);
      CHECK(problem.empty());
    }
  }
}

}  // namespace

TEST_CASE("every registered op has at least four hostile-input cases", "[bad_inputs]") {
  const Catalog cat = catalog();
  for (const ops::OpDef& def : ops::all_ops()) {
    auto it = cat.find(std::string(def.name));
    const size_t n = it == cat.end() ? 0 : it->second.size();
    if (n < kMinCases)
      FAIL_CHECK("op '" << def.name << "' has " << n << " hostile-input cases; add at least " << kMinCases
                        << " to tests/ops/test_bad_inputs.cpp");
  }
  for (const auto& [name, cases] : cat) {
    bool registered = false;
    for (const ops::OpDef& def : ops::all_ops()) registered |= def.name == name;
    if (!registered) FAIL_CHECK("hostile-input entry '" << name << "' names no registered op");
  }
}

TEST_CASE("hostile inputs fail with a clean error that names the op and the offending value", "[bad_inputs]") {
  run_catalog();
}
