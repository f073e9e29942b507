// Gradient rules driven by the registry: every differentiable op has a rule and a gradient check
// in float64 against finite differences (second order too for elementwise ops, matmul, conv2d and
// pooling), the tape's LookupError for an op without a rule, and custom_gradient.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "autodiff/check.h"
#include "autodiff/custom_gradient.h"
#include "autodiff/rules.h"
#include "autodiff/tape.h"
#include "compiler/trace/function.h"
#include "ops/dispatch.h"
#include "ops/ops.h"
#include "runtime/cuda/cuda.h"

using namespace kiln;
using ops::OpId;

namespace {

using V = std::vector<Tensor>;
using Fn = std::function<Tensor(const V&)>;

constexpr double kEps = 1e-6, kAtol = 1e-6, kRtol = 1e-5;

/// How a case is checked: against finite differences, or as an op whose gradient is None or
/// zero everywhere it is defined (floor, sign, ...), where finite differences add nothing.
enum class Expect { Numeric, NoGradient };

struct GradCase {
  std::string what;
  Fn f;
  V inputs;
  Expect expect = Expect::Numeric;
  bool second_order = false;  // also check the gradient of the gradient
};

using Table = std::map<std::string, std::vector<GradCase>>;

// Seeded float64 inputs.
Tensor uni(const Shape& s, uint64_t seed, double lo = -2, double hi = 2) {
  return random::uniform(s, seed, lo, hi, float64);
}
// |v| in [0.25, 2), either sign: away from the kinks of abs, relu and sign at 0.
Tensor away_from_zero(const Shape& s, uint64_t seed) {
  Tensor sign = where(uni(s, seed + 7777) > 0.0, ones(s, float64), fill(s, scalar(-1.0)));
  return uni(s, seed, 0.25, 2) * sign;
}
// Values at least 0.2 from an integer and from a half: away from the steps of floor, ceil, round.
Tensor away_from_steps(const Shape& s, uint64_t seed) {
  return floor(uni(s, seed, -3, 3)) + uni(s, seed + 1, 0.55, 0.8);
}

std::string shapes_string(const V& inputs) {
  std::string s;
  for (const Tensor& t : inputs) s += (s.empty() ? "" : ", ") + t.shape().to_string();
  return s;
}

// ---------------------------------------------------------------------------------------------
// The table

const std::vector<Shape> kUnaryShapes = {{}, {5}, {2, 3}};
struct Pair {
  Shape a, b;
};
const std::vector<Pair> kBinaryShapes = {
    {{2, 3}, {2, 3}}, {{3, 1}, {4}}, {{}, {2, 3}}, {{2, 3}, {}}, {{2, 1, 3}, {4, 1}}};

void add_unary(Table& t, const std::string& op, Tensor (*fn)(const Tensor&),
               std::function<Tensor(const Shape&, uint64_t)> gen, Expect expect = Expect::Numeric) {
  uint64_t seed = std::hash<std::string>{}(op) % 10000;
  for (const Shape& s : kUnaryShapes)
    t[op].push_back({s.to_string(), [fn](const V& v) { return fn(v[0]); }, {gen(s, seed++)}, expect, true});
}

void add_binary(Table& t, const std::string& op, Tensor (*fn)(const Tensor&, const Tensor&),
                std::function<Tensor(const Shape&, uint64_t)> gx, std::function<Tensor(const Shape&, uint64_t)> gy,
                Expect expect = Expect::Numeric) {
  uint64_t seed = std::hash<std::string>{}(op) % 10000;
  for (const Pair& p : kBinaryShapes)
    t[op].push_back({p.a.to_string() + " vs " + p.b.to_string(),
                     [fn](const V& v) { return fn(v[0], v[1]); },
                     {gx(p.a, seed), gy(p.b, seed + 1)},
                     expect,
                     true});
}

auto range_gen(double lo, double hi) {
  return [lo, hi](const Shape& s, uint64_t seed) { return uni(s, seed, lo, hi); };
}

void add_elementwise(Table& t) {
  const auto any = range_gen(-2, 2);
  const auto positive = range_gen(0.3, 3);
  add_unary(t, "negative", negative, any);
  add_unary(t, "abs", abs, away_from_zero);
  add_unary(t, "sign", sign, away_from_zero, Expect::NoGradient);
  add_unary(t, "exp", exp, any);
  add_unary(t, "log", log, positive);
  add_unary(t, "log1p", log1p, range_gen(-0.7, 3));
  add_unary(t, "sqrt", sqrt, positive);
  add_unary(t, "rsqrt", rsqrt, positive);
  add_unary(t, "square", square, any);
  add_unary(t, "sin", sin, range_gen(-4, 4));
  add_unary(t, "cos", cos, range_gen(-4, 4));
  add_unary(t, "tan", tan, range_gen(-1.2, 1.2));
  add_unary(t, "tanh", tanh, any);
  add_unary(t, "sigmoid", sigmoid, range_gen(-4, 4));
  add_unary(t, "softplus", softplus, range_gen(-4, 4));
  add_unary(t, "relu", relu, away_from_zero);
  add_unary(t, "floor", floor, away_from_steps, Expect::NoGradient);
  add_unary(t, "ceil", ceil, away_from_steps, Expect::NoGradient);
  add_unary(t, "round", round, away_from_steps, Expect::NoGradient);

  add_binary(t, "add", add, any, any);
  add_binary(t, "subtract", subtract, any, any);
  add_binary(t, "multiply", multiply, any, any);
  add_binary(t, "divide", divide, any, away_from_zero);
  add_binary(t, "pow", pow, positive, any);
  // random continuous values: ties (and near-ties within the finite-difference step) do not occur
  // for these seeds
  add_binary(t, "maximum", maximum, any, any);
  add_binary(t, "minimum", minimum, any, any);
  add_binary(t, "floordiv", floordiv, any, away_from_zero, Expect::NoGradient);
  // mod: x = y * (k + u) with u in [0.3, 0.7], so x / y stays away from the jumps at integers
  {
    uint64_t seed = 4100;
    for (const Pair& p : std::vector<Pair>{{{2, 3}, {2, 3}}, {{3, 4}, {4}}, {{2, 3}, {}}}) {
      Tensor y = uni(p.b, seed++, 0.5, 2);
      Tensor k = floor(uni(p.a, seed++, -3, 3)), u = uni(p.a, seed++, 0.3, 0.7);
      Tensor x = broadcast_to(y, p.a) * (k + u);
      t["mod"].push_back(
          {p.a.to_string() + " vs " + p.b.to_string(), [](const V& v) { return mod(v[0], v[1]); }, {x, y}, {}, true});
    }
  }

  struct Tri {
    Shape c, x, y;
  };
  uint64_t seed = 4200;
  for (const Tri& s : std::vector<Tri>{{{2, 3}, {2, 3}, {2, 3}}, {{2, 3}, {2, 3}, {}}, {{3, 1}, {4}, {3, 4}}}) {
    Tensor cond = uni(s.c, seed++) > 0.0;
    t["where"].push_back({s.c.to_string() + ", " + s.x.to_string() + ", " + s.y.to_string(),
                          [cond](const V& v) { return where(cond, v[0], v[1]); },
                          {uni(s.x, seed++), uni(s.y, seed++)},
                          {},
                          true});
  }

  // casts that keep float64 precision: to float64, and through complex128 (the real part back)
  t["cast"].push_back(
      {"float64 to float64", [](const V& v) { return cast(v[0], float64) * v[0]; }, {uni({2, 3}, 4300)}, {}, true});
  t["cast"].push_back({"through complex128",
                       [](const V& v) {
                         Tensor z = cast(v[0], complex128) * cast(v[1], complex128);
                         return cast(z * z, float64);
                       },
                       {uni({2, 3}, 4301), uni({3}, 4302)},
                       {},
                       true});
}

void add_reductions(Table& t) {
  struct R {
    const char* op;
    Tensor (*fn)(const Tensor&, Axes, bool);
  };
  const std::vector<std::pair<Axes, bool>> axes = {
      {Axes{}, false}, {Axes{1}, false}, {Axes{0, 2}, true}, {Axes{-1}, true}};
  uint64_t seed = 5000;
  for (const R& r : std::vector<R>{{"reduce_sum", reduce_sum},
                                   {"reduce_mean", reduce_mean},
                                   {"reduce_max", reduce_max},
                                   {"reduce_min", reduce_min},
                                   {"reduce_prod", reduce_prod}}) {
    for (const auto& [ax, keep] : axes) {
      std::string what = "(2, 3, 4) axes ";
      if (!ax.axes)
        what += "all";
      else
        for (int64_t a : *ax.axes) what += std::to_string(a) + " ";
      Tensor x = std::string(r.op) == "reduce_prod" ? away_from_zero({2, 3, 4}, seed++) : uni({2, 3, 4}, seed++);
      auto fn = r.fn;
      t[r.op].push_back(
          {what + (keep ? " keepdims" : ""), [fn, ax, keep](const V& v) { return fn(v[0], ax, keep); }, {x}});
    }
  }
  t["reduce_sum"].push_back({"scalar", [](const V& v) { return reduce_sum(v[0]); }, {uni({}, 5100)}});
  // products with one zero (the others' product flows to it) and two zeros (no gradient at all);
  // the product is linear in each element, so finite differences are exact there
  t["reduce_prod"].push_back({"one zero",
                              [](const V& v) { return reduce_prod(v[0], 1); },
                              {constant({{1.5, 0.0, -2.0}, {0.5, 1.25, 3.0}}, float64)}});
  t["reduce_prod"].push_back(
      {"two zeros", [](const V& v) { return reduce_prod(v[0], 1); }, {constant({{0.0, 2.0, 0.0, 1.5}}, float64)}});
}

void add_matmul(Table& t) {
  struct M {
    Shape a, b;
    bool ta, tb;
  };
  uint64_t seed = 6000;
  for (const M& m : std::vector<M>{{{3, 4}, {4, 2}, false, false},
                                   {{4, 3}, {4, 2}, true, false},
                                   {{3, 4}, {2, 4}, false, true},
                                   {{4, 3}, {2, 4}, true, true},
                                   {{2, 3, 4}, {4, 5}, false, false},
                                   {{2, 1, 3, 4}, {3, 4, 2}, false, false},
                                   {{1, 4}, {4, 1}, false, false}}) {
    const bool ta = m.ta, tb = m.tb;
    t["matmul"].push_back({m.a.to_string() + (ta ? "^T" : "") + " @ " + m.b.to_string() + (tb ? "^T" : ""),
                           [ta, tb](const V& v) { return matmul(v[0], v[1], ta, tb); },
                           {uni(m.a, seed), uni(m.b, seed + 1)},
                           {},
                           true});
    seed += 2;
  }
}

// Convolution and pooling: every op of the family, over strides, SAME/VALID padding and
// dilations. Pooling inputs are random, so no two values of a window lie within the finite
// difference step of each other (the maximum does not move).
void add_conv(Table& t) {
  struct Cv {
    Shape x, f;
    std::vector<int64_t> s, d;
    std::string p;
  };
  uint64_t seed = 6500;
  for (const Cv& c : std::vector<Cv>{{{1, 4, 4, 1}, {3, 3, 1, 1}, {1}, {1}, "VALID"},
                                     {{2, 5, 4, 2}, {3, 2, 2, 3}, {2}, {1}, "SAME"},
                                     {{1, 6, 5, 2}, {2, 2, 2, 2}, {1, 2}, {2, 1}, "SAME"},
                                     {{1, 5, 6, 1}, {2, 3, 1, 2}, {2, 1}, {1, 2}, "VALID"}}) {
    const std::string what = c.x.to_string() + " * " + c.f.to_string() + " " + c.p;
    const auto s = c.s, d = c.d;
    const std::string p = c.p;
    const Tensor x = uni(c.x, seed), f = uni(c.f, seed + 1);
    const Tensor dy = uni(conv2d(x, f, s, p, d).shape(), seed + 2);
    t["conv2d"].push_back({what, [=](const V& v) { return conv2d(v[0], v[1], s, p, d); }, {x, f}, {}, true});
    const Shape xs = c.x, fs = c.f;
    t["conv2d_backprop_input"].push_back(
        {what, [=](const V& v) { return conv2d_backprop_input(xs, v[0], v[1], s, p, d); }, {f, dy}});
    t["conv2d_backprop_filter"].push_back(
        {what, [=](const V& v) { return conv2d_backprop_filter(v[0], fs, v[1], s, p, d); }, {x, dy}});
    seed += 3;
  }
  struct Pl {
    Shape x;
    std::vector<int64_t> k, s;
    std::string p;
  };
  for (const Pl& c : std::vector<Pl>{{{1, 4, 4, 1}, {2}, {2}, "VALID"},
                                     {{2, 5, 5, 2}, {3}, {2}, "SAME"},
                                     {{1, 4, 5, 2}, {2, 3}, {1, 2}, "SAME"}}) {
    const std::string what = c.x.to_string() + " ksize " + Shape(c.k).to_list_string() + " " + c.p;
    const auto k = c.k, s = c.s;
    const std::string p = c.p;
    const Tensor x = uni(c.x, seed), gx = uni(c.x, seed + 1);
    const Tensor dy = uni(max_pool2d(x, k, s, p).shape(), seed + 2);
    const Shape xs = c.x;
    t["max_pool2d"].push_back({what, [=](const V& v) { return max_pool2d(v[0], k, s, p); }, {x}, {}, true});
    t["avg_pool2d"].push_back({what, [=](const V& v) { return avg_pool2d(v[0], k, s, p); }, {x}, {}, true});
    t["max_pool2d_grad"].push_back({what, [=](const V& v) { return max_pool2d_grad(v[0], v[1], k, s, p); }, {x, dy}});
    t["max_pool2d_grad_grad"].push_back(
        {what, [=](const V& v) { return max_pool2d_grad_grad(v[0], v[1], k, s, p); }, {x, gx}});
    t["avg_pool2d_grad"].push_back({what, [=](const V& v) { return avg_pool2d_grad(xs, v[0], k, s, p); }, {dy}});
    seed += 3;
  }
}

Fn index_fn(std::vector<IndexItem> items) {
  return [items](const V& v) { return v[0].index(std::span<const IndexItem>(items)); };
}

void add_movement(Table& t) {
  uint64_t seed = 7000;
  Tensor x234 = uni({2, 3, 4}, seed++);
  t["reshape"] = {{"(2, 3, 4) to (4, 6)",
                   [](const V& v) {
                     return reshape(v[0], {4, 6});
                   },
                   {x234}},
                  {"to -1", [](const V& v) { return reshape(v[0], {-1}) * reshape(v[0], {-1}); }, {x234}},
                  {"scalar to (1, 1)",
                   [](const V& v) {
                     return reshape(v[0], {1, 1});
                   },
                   {uni({}, seed++)}}};
  t["transpose"] = {{"perm (2, 0, 1)",
                     [](const V& v) {
                       return transpose(v[0], {2, 0, 1});
                     },
                     {x234}},
                    {"reversed", [](const V& v) { return transpose(v[0]); }, {x234}}};
  t["expand_dims"] = {{"axis 0", [](const V& v) { return expand_dims(v[0], 0); }, {x234}},
                      {"axis -1", [](const V& v) { return expand_dims(v[0], -1) * 2.0; }, {uni({3}, seed++)}}};
  Tensor x1312 = uni({1, 3, 1, 2}, seed++);
  t["squeeze"] = {{"all", [](const V& v) { return squeeze(v[0]); }, {x1312}},
                  {"axis 2", [](const V& v) { return squeeze(v[0], Axes{2}); }, {x1312}}};
  t["concat"] = {{"axis 1, sizes 3 and 2",
                  [](const V& v) {
                    return concat({v[0], v[1]}, 1);
                  },
                  {uni({2, 3}, seed), uni({2, 2}, seed + 1)}},
                 {"axis -1, three inputs, one twice",
                  [](const V& v) {
                    return concat({v[0], v[1], v[0]}, -1);
                  },
                  {uni({2, 2}, seed + 2), uni({2, 1}, seed + 3)}},
                 {"one input", [](const V& v) { return concat({v[0]}, 0); }, {uni({3}, seed + 4)}}};
  seed += 5;
  t["split"] = {{"3 parts of axis 1, reordered",
                 [](const V& v) {
                   auto p = split(v[0], 3, 1);
                   return concat({p[2] * p[2], p[0], p[1]}, 1);
                 },
                 {uni({2, 6}, seed++)}},
                {"sizes with -1, one part unused",
                 [](const V& v) {
                   return split(v[0], std::vector<int64_t>{1, -1, 2}, 0)[1];
                 },
                 {uni({5, 2}, seed++)}}};
  t["tile"] = {{"(2, 3) by (2, 1)",
                [](const V& v) {
                  return tile(v[0], {2, 1});
                },
                {uni({2, 3}, seed++)}},
               {"(2, 3) by (3, 2)",
                [](const V& v) {
                  return tile(v[0], {3, 2});
                },
                {uni({2, 3}, seed++)}},
               {"scalar", [](const V& v) { return tile(v[0], {}); }, {uni({}, seed++)}}};
  t["broadcast_to"] = {{"(3, 1) to (2, 3, 4)",
                        [](const V& v) {
                          return broadcast_to(v[0], {2, 3, 4});
                        },
                        {uni({3, 1}, seed++)}},
                       {"scalar to (2, 2)",
                        [](const V& v) {
                          return broadcast_to(v[0], {2, 2});
                        },
                        {uni({}, seed++)}},
                       {"(4) to (3, 4)",
                        [](const V& v) {
                          return broadcast_to(v[0], {3, 4});
                        },
                        {uni({4}, seed++)}}};
  // the _like ops: `like` is a float64 second input, whose gradient must be zero, or an int32
  // tensor held by the case; only its shape is read
  struct L {
    Shape x, like;
  };
  for (const L& l :
       std::vector<L>{{{3, 1}, {2, 3, 4}}, {{}, {2, 2}}, {{4}, {3, 4}}, {{2, 3}, {2, 3}}, {{1, 1}, {3, 1, 1}}}) {
    t["broadcast_like"].push_back({l.x.to_string() + " like " + l.like.to_string(),
                                   [](const V& v) { return broadcast_like(v[0], v[1]); },
                                   {uni(l.x, seed), uni(l.like, seed + 1)}});
    t["sum_to_like"].push_back({l.like.to_string() + " like " + l.x.to_string(),
                                [](const V& v) { return sum_to_like(v[0], v[1]) * v[1]; },
                                {uni(l.like, seed + 2), uni(l.x, seed + 3)}});
    seed += 4;
  }
  t["broadcast_like"].push_back({"(2, 1) like an int32 (2, 3), squared",
                                 [like = zeros({2, 3}, int32)](const V& v) {
                                   Tensor y = broadcast_like(v[0], like);
                                   return y * y;
                                 },
                                 {uni({2, 1}, seed++)}});
  t["sum_to_like"].push_back({"(2, 3, 4) like an int32 (3, 1)",
                              [like = zeros({3, 1}, int32)](const V& v) { return sum_to_like(v[0] * v[0], like); },
                              {uni({2, 3, 4}, seed++)}});
  t["sum_to_like"].push_back({"(0, 3) like (3)",
                              [](const V& v) { return sum_to_like(v[0], v[1]) + v[1]; },
                              {uni({0, 3}, seed), uni({3}, seed + 1)}});
  seed += 2;
  for (const L& l : std::vector<L>{{{2, 3, 4}, {4, 6}}, {{}, {1, 1}}, {{6}, {2, 3}}, {{1, 5}, {5}}}) {
    t["reshape_like"].push_back({l.x.to_string() + " like " + l.like.to_string(),
                                 [](const V& v) { return reshape_like(v[0], v[1]) * v[1]; },
                                 {uni(l.x, seed), uni(l.like, seed + 1)}});
    seed += 2;
  }
  t["reshape_like"].push_back(
      {"(2, 3) like an int32 (3, 2), twice",
       [like = zeros({3, 2}, int32)](const V& v) { return reshape_like(reshape_like(v[0], like), v[0]) * v[0]; },
       {uni({2, 3}, seed++)}});
  t["pad"] = {{"(2, 3) by (1, 0), (0, 2)",
               [](const V& v) {
                 return pad(v[0], {{1, 0}, {0, 2}}, 1.5);
               },
               {uni({2, 3}, seed++)}},
              {"(4) by (2, 3)",
               [](const V& v) {
                 return pad(v[0], {{2, 3}});
               },
               {uni({4}, seed++)}}};
  t["reverse"] = {{"axis 0", [](const V& v) { return reverse(v[0], Axes{0}); }, {x234}},
                  {"axes 0 and 2",
                   [](const V& v) {
                     return reverse(v[0], Axes{0, 2});
                   },
                   {x234}},
                  {"axis -1", [](const V& v) { return reverse(v[0], Axes{-1}); }, {uni({5}, seed++)}}};
  t["fill"] = {{"(2, 3) from a scalar",
                [](const V& v) {
                  return fill({2, 3}, v[0]) * fill({2, 3}, v[0]);
                },
                {uni({}, seed++)}}};

  struct G {
    Shape params;
    Tensor indices;
    int64_t axis, batch_dims;
  };
  const std::vector<G> gs = {
      {{5, 3}, constant({4, 0, 2, 2}), 0, 0},
      {{6}, constant({{5, 4, 3}, {0, 5, 5}}), 0, 0},
      {{4, 3}, scalar(2), 0, 0},
      {{4, 3}, constant(std::vector<int64_t>{}, {0}), 0, 0},
      {{2, 4, 3}, constant(std::vector<int64_t>{3, 0, 1, 1}, {2, 2}), 1, 0},
      {{2, 3, 4}, constant({3, 3, 0}), -1, 0},
      {{3, 4}, constant({{0, 3}, {1, 1}, {2, 0}}), 1, 1},
      {{3, 4}, constant({{0, 3}, {1, 1}, {2, 0}}), 1, -1},
      {{2, 3, 4}, constant({{0, 3, 3, 1, 2}, {2, 2, 0, 1, 3}}), 2, 1},
      {{2, 3, 4, 2}, constant({{1, 1, 0}, {2, 0, 0}}), 2, 1},
      {{2, 3, 4, 2}, constant({{{0, 3}, {1, 1}, {2, 2}}, {{3, 3}, {0, 1}, {0, 0}}}), 2, 2},
  };
  for (const G& g : gs) {
    const Tensor ind = g.indices;
    const int64_t axis = g.axis, bd = g.batch_dims;
    t["gather"].push_back({g.params.to_string() + " at " + ind.shape().to_string() + " axis " + std::to_string(axis) +
                               " batch_dims " + std::to_string(bd),
                           [ind, axis, bd](const V& v) { return gather(v[0], ind, axis, bd); },
                           {uni(g.params, seed++)}});
  }

  struct S {
    Shape data;
    Tensor ids;
    int64_t n;
  };
  const std::vector<S> ss = {
      {{6}, constant({0, 2, 0, 1, 2, 2}), 4},
      {{5, 3}, constant(std::vector<int64_t>{2, 0, 2, 2, 1}, {5}), 3},
      {{2, 3, 4}, constant({{4, 0, 1}, {1, 4, 4}}), 5},
      {{}, scalar(1), 3},
      {{0, 2}, constant(std::vector<int32_t>{}, {0}), 2},
  };
  for (const S& s : ss) {
    const Tensor ids = s.ids;
    const int64_t n = s.n;
    t["unsorted_segment_sum"].push_back(
        {s.data.to_string() + " by " + ids.shape().to_string() + " into " + std::to_string(n),
         [ids, n](const V& v) { return unsorted_segment_sum(v[0] * v[0], ids, n); },
         {uni(s.data, seed++)}});
  }

  Tensor x45 = uni({4, 5}, seed++);
  t["strided_slice"] = {
      {"[1:]", index_fn({Slice(1, None)}), {x45}},
      {"[::-2]", index_fn({Slice(None, None, -2)}), {x45}},
      {"[1, 0:5:2]", index_fn({1, Slice(0, 5, 2)}), {x45}},
      {"[..., -1]", index_fn({Ellipsis, -1}), {x234}},
      {"[newaxis, ::-1, 0]", index_fn({NewAxis, Slice(None, None, -1), 0}), {x234}},
      {"[-10:10, 3:1] (clamped, empty)", index_fn({Slice(-10, 10), Slice(3, 1)}), {x45}},
      {"[1, 2, 3] (a scalar)", index_fn({1, 2, 3}), {x234}},
      {"[:, 1:3, ::3] of (2, 3, 4)", index_fn({Slice(), Slice(1, 3), Slice(None, None, 3)}), {x234}},
      {"masks: begin, end, new axis, shrink",
       [](const V& v) {
         ops::Attrs a{{"begin", std::vector<int64_t>{0, 0, 1, 2}},
                      {"end", std::vector<int64_t>{0, 2, 0, 3}},
                      {"strides", std::vector<int64_t>{1, 1, 1, 1}},
                      {"begin_mask", int64_t{1}},
                      {"end_mask", int64_t{4}},
                      {"new_axis_mask", int64_t{2}},
                      {"shrink_axis_mask", int64_t{8}}};
         return ops::apply1(OpId::StridedSlice, a, std::span<const Tensor>(&v[0], 1));
       },
       {x234}},
  };
}

// call: a traced function run as one op, differentiated through its backward function.
Fn call_fn(Ref<trace::ConcreteState> cs, size_t output) {
  return [cs, output](const V& v) {
    const ops::Attrs attrs{{"function", ops::ObjectRef(cs)}};
    return ops::apply(OpId::Call, attrs, v)[output];
  };
}

void add_control(Table& t) {
  uint64_t seed = 8800;
  auto specs = [](const Shape& a, const Shape& b) {
    return std::vector<TensorSpec>{TensorSpec(a, float64, "x"), TensorSpec(b, float64, "y")};
  };
  // tanh(x) * y, with y broadcast or not
  auto tanh_times = [](std::span<const Tensor> in) { return V{tanh(in[0]) * in[1]}; };
  for (const Pair& p : std::vector<Pair>{{{2, 3}, {2, 3}}, {{3, 1}, {4}}, {{}, {5}}})
    t["call"].push_back({"tanh(x) * y, " + p.a.to_string() + " vs " + p.b.to_string(),
                         call_fn(trace::trace_concrete("tanh_times", specs(p.a, p.b), tanh_times), 0),
                         {uni(p.a, seed), uni(p.b, seed + 1)}});
  // two outputs, both depending on x: the second output's gradient flows back through the call
  auto two = [](std::span<const Tensor> in) { return V{exp(in[0]) * in[1], reduce_sum(in[0] * in[1])}; };
  const auto cs = trace::trace_concrete("two_outputs", specs({2, 3}, {2, 3}), two);
  t["call"].push_back(
      {"second of two outputs, sum(x * y)", call_fn(cs, 1), {uni({2, 3}, seed + 2), uni({2, 3}, seed + 3)}});
  t["call"].push_back({"both of two outputs, exp(x) * y * sum(x * y)",
                       [cs](const V& v) {
                         const ops::Attrs attrs{{"function", ops::ObjectRef(cs)}};
                         ops::TensorList out = ops::apply(OpId::Call, attrs, v);
                         return out[0] * out[1];
                       },
                       {uni({2, 3}, seed + 4), uni({2, 3}, seed + 5)}});
  // a symbolic batch dim: the backward function is traced with x's first dim unknown, so its
  // rules take shapes from tensors (sum_to_like for y's broadcast, reshape_like, broadcast_like)
  // (one function run at two batch sizes: its backward function is traced once)
  const auto batch = trace::trace_concrete("batch_tanh_times", specs({-1, 3}, {3}),
                                           [](std::span<const Tensor> in) { return V{tanh(in[0]) * in[1] + in[1]}; });
  for (int64_t n : {4, 1})
    t["call"].push_back({"tanh(x) * y + y, x (?, 3) run as (" + std::to_string(n) + ", 3)",
                         call_fn(batch, 0),
                         {uni({n, 3}, seed + 6), uni({3}, seed + 7)}});
  t["call"].push_back({"sum(reshape(x, (-1, 3)) * y, axis 0) * y, x (?, 2, 3) run as (2, 2, 3)",
                       call_fn(trace::trace_concrete("batch_reshape", specs({-1, 2, 3}, {3}),
                                                     [](std::span<const Tensor> in) {
                                                       Tensor r = reshape(in[0], {-1, 3}) * in[1];
                                                       return V{reduce_sum(r, Axes{0}) * in[1]};
                                                     }),
                               0),
                       {uni({2, 2, 3}, seed + 8), uni({3}, seed + 9)}});
}

// Built afresh for each test case rather than kept in a static: the cases hold tensors, and a
// tensor destroyed during exit would outlive the main thread's allocator cache.
Table table() {
  Table t;
  add_elementwise(t);
  add_reductions(t);
  add_matmul(t);
  add_conv(t);
  add_movement(t);
  add_control(t);
  return t;
}

/// Differentiable ops without a gradient check, each with the reason. Empty: every rule is checked.
const std::map<std::string, std::string> kSkipped = {};

// The ops the tape differentiates: those marked kDifferentiable that is_non_differentiable does
// not exclude (comparisons and logical ops carry the elementwise family's traits), and any op
// with a rule (fill).
std::vector<const ops::OpDef*> differentiable_ops() {
  std::vector<const ops::OpDef*> out;
  for (const ops::OpDef& def : ops::all_ops()) {
    const bool marked = def.has(ops::kDifferentiable) && !autodiff::is_non_differentiable(def.id);
    if (marked || autodiff::grad_rule(def.id)) out.push_back(&def);
  }
  return out;
}

// The derivative of sum(f(inputs) * w) with respect to every floating input, flattened and
// concatenated: a function whose own gradient (through the tape that records this inner
// backward pass) is the second derivative.
Fn first_derivative(const Fn& f, const V& at) {
  Tensor w = random::uniform(f(at).shape(), 999, 0.5, 1.5, float64);
  return [f, w](const V& v) {
    GradientTape inner;
    std::vector<Source> sources;
    for (const Tensor& x : v) {
      inner.watch(x);
      sources.emplace_back(x);
    }
    Tensor y = reduce_sum(f(v) * w);
    std::vector<Tensor> g = inner.gradient(y, sources, UnconnectedGradients::Zero);
    std::vector<Tensor> flat;
    for (const Tensor& gi : g) flat.push_back(reshape(gi, {-1}));
    return concat(flat, 0);
  };
}

// "" if the gradient of every input is None or all zeros.
std::string no_gradient_problem(const GradCase& c) {
  V xs;
  for (const Tensor& x : c.inputs) xs.push_back(cast(x, float64));
  GradientTape tape;
  for (const Tensor& x : xs) tape.watch(x);
  Tensor y = reduce_sum(c.f(xs) * 1.5);
  std::vector<Source> sources(xs.begin(), xs.end());
  std::vector<Tensor> g = tape.gradient(y, sources);
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i].defined() && reduce_any(not_equal(g[i], zeros_like(g[i]))).item<bool>())
      return "input " + std::to_string(i) + " has a nonzero gradient " + g[i].to_string();
  return "";
}

}  // namespace

TEST_CASE("every differentiable op has a gradient rule", "[autodiff][rules]") {
  std::vector<std::string> missing;
  for (const ops::OpDef& def : ops::all_ops())
    if (def.has(ops::kDifferentiable) && !autodiff::is_non_differentiable(def.id) && !autodiff::grad_rule(def.id))
      missing.emplace_back(def.name);
  std::string list;
  for (const std::string& m : missing) list += " " + m;
  INFO("differentiable ops without a gradient rule:" << list);
  CHECK(missing.empty());
}

TEST_CASE("every differentiable op passes a float64 gradient check", "[autodiff][rules]") {
  const Table t = table();
  for (const auto& [name, reason] : kSkipped) WARN("gradient check skipped for " << name << ": " << reason);
  std::set<std::string> seen;
  for (const ops::OpDef* def : differentiable_ops()) {
    const std::string op(def->name);
    seen.insert(op);
    auto it = t.find(op);
    if (it == t.end()) {
      if (!kSkipped.count(op))
        FAIL_CHECK("op '" << op
                          << "' has no gradient check: add cases to tests/autodiff/test_rules.cpp (or list it in "
                             "kSkipped with a reason)");
      continue;
    }
    CHECK(it->second.size() >= 1);
    for (const GradCase& c : it->second) {
      INFO("op " << op << ", case " << c.what << " (inputs " << shapes_string(c.inputs) << ")");
      if (c.expect == Expect::NoGradient) {
        const std::string problem = no_gradient_problem(c);
        INFO(problem);
        CHECK(problem.empty());
        continue;
      }
      auto r = autodiff::check_gradients(c.f, c.inputs, kEps, kAtol, kRtol);
      INFO(r.report);
      CHECK(r.ok);
    }
  }
  for (const auto& [name, cases] : t)
    if (!seen.count(name)) FAIL_CHECK("gradient cases for '" << name << "', which is not a differentiable op");
}

namespace {

// The tape's gradients of sum(f(inputs) * w) (floating inputs as float64), computed on `device`
// (inputs copied there, ops run in its scope) and returned on the CPU.
std::vector<Tensor> tape_gradients(const GradCase& c, Device device) {
  V xs;
  for (const Tensor& x : c.inputs) xs.push_back((is_floating(x.dtype()) ? cast(x, float64) : x).to(device));
  DeviceScope scope(device);
  GradientTape tape;
  for (const Tensor& x : xs) tape.watch(x);
  Tensor y = c.f(xs);
  Tensor w;
  {
    DeviceScope cpu(kCPU);  // the same weights for both devices
    w = cast(random::uniform(y.shape(), 4242, 0.5, 1.5, float64), y.dtype());
  }
  Tensor loss = reduce_sum(y * w.to(device));
  std::vector<Source> sources(xs.begin(), xs.end());
  std::vector<Tensor> g = tape.gradient(loss, sources);
  for (Tensor& t : g)
    if (t.defined()) t = t.to(kCPU);
  return g;
}

}  // namespace

// Every gradient case run with its inputs on GPU:0 gives the CPU's gradients (ops without a GPU
// kernel run on the CPU with copies, as dispatch does): float64 within 1e-9 relative to the
// gradient's largest magnitude (the GPU sums in other orders).
TEST_CASE("every differentiable op's gradients on the GPU equal those on the CPU", "[.cuda]") {
  if (gpu_count() == 0) FAIL("[.cuda] tests need a GPU: " << cuda::unavailable_reason());
  const Device gpu{DeviceType::GPU, 0};
  for (const auto& [op, cases] : table()) {
    for (const GradCase& c : cases) {
      if (c.expect == Expect::NoGradient) continue;
      INFO("op " << op << ", case " << c.what << " (inputs " << shapes_string(c.inputs) << ")");
      const std::vector<Tensor> want = tape_gradients(c, kCPU), got = tape_gradients(c, gpu);
      REQUIRE(got.size() == want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        INFO("input " << i);
        REQUIRE(got[i].defined() == want[i].defined());
        if (!want[i].defined() || want[i].num_elements() == 0) continue;
        REQUIRE(got[i].shape() == want[i].shape());
        const double scale = 1.0 + reduce_max(abs(cast(want[i], float64))).item<double>();
        const double diff = reduce_max(abs(cast(got[i], float64) - cast(want[i], float64))).item<double>();
        CHECK(diff <= 1e-9 * scale);
      }
    }
  }
}

TEST_CASE("elementwise ops, matmul, conv2d and pooling pass a second-order gradient check", "[autodiff][rules]") {
  int checked = 0;
  const Table t = table();
  for (const auto& [op, cases] : t) {
    const ops::OpDef& def = ops::op_def(op);
    const bool wants = def.has(ops::kElementwise) || def.id == OpId::MatMul || def.id == OpId::Conv2D ||
                       def.id == OpId::MaxPool2D || def.id == OpId::AvgPool2D;
    for (const GradCase& c : cases) {
      if (!wants || c.expect != Expect::Numeric) continue;
      INFO("op " << op << ", case " << c.what << " (inputs " << shapes_string(c.inputs) << ")");
      CHECK(c.second_order);
      auto r = autodiff::check_gradients(first_derivative(c.f, c.inputs), c.inputs, kEps, kAtol, kRtol);
      INFO(r.report);
      CHECK(r.ok);
      ++checked;
    }
  }
  CHECK(checked >= 90);
}

TEST_CASE("gradients of gather, strided_slice and segment sums have the expected values", "[autodiff][rules]") {
  SECTION("gather scatters back, summing repeated indices") {
    Tensor p = constant({{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}});
    GradientTape tape;
    tape.watch(p);
    Tensor y = gather(p, constant({2, 0, 2}));
    CHECK(tape.gradient(y, p).to_vector<float>() == std::vector<float>{1, 1, 0, 0, 2, 2});
  }
  SECTION("gather along axis 1 with batch_dims 1") {
    Tensor p = constant({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
    GradientTape tape;
    tape.watch(p);
    Tensor y = gather(p, constant({{2, 2}, {0, 1}}), 1, 1);
    CHECK(y.to_vector<float>() == std::vector<float>{3, 3, 4, 5});
    CHECK(tape.gradient(y, p).to_vector<float>() == std::vector<float>{0, 0, 2, 1, 1, 0});
  }
  SECTION("an index gives ones where it selected") {
    Tensor x = reshape(range(0.0, 12.0, 1.0), {3, 4});
    GradientTape tape;
    tape.watch(x);
    Tensor y = x.index({Slice(None, None, 2), Slice(1, None, 2)});
    CHECK(tape.gradient(y, x).to_vector<float>() == std::vector<float>{0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1});
  }
  SECTION("empty tensors give empty or zero gradients") {
    Tensor e = zeros({0, 3}, float64), p = constant({{1.0, 2.0}, {3.0, 4.0}}, float64);
    GradientTape tape(true);
    tape.watch(e);
    tape.watch(p);
    CHECK(tape.gradient(e.index({Slice(1, None)}), e).shape() == Shape{0, 3});
    Tensor none = gather(p, constant(std::vector<int32_t>{}, {2, 0}), 1, 1);
    CHECK(tape.gradient(none, p).to_vector<double>() == std::vector<double>{0, 0, 0, 0});
  }
  SECTION("segment sums gather back") {
    Tensor d = constant({1.0, 2.0, 3.0});
    GradientTape tape;
    tape.watch(d);
    Tensor y = unsorted_segment_sum(d, constant({1, 1, 0}), 3) * constant({10.0, 20.0, 30.0});
    CHECK(tape.gradient(y, d).to_vector<float>() == std::vector<float>{20, 20, 10});
  }
}

TEST_CASE("the tape reports an op without a gradient rule", "[autodiff][rules]") {
  Tensor x = constant({0.5, 1.0});
  {
    autodiff::ScopedRuleOverride remove(OpId::Sin, nullptr);
    CHECK(autodiff::grad_rule(OpId::Sin) == nullptr);
    GradientTape tape;
    tape.watch(x);
    Tensor y = sin(x) * 2.0;
    CHECK_THROWS_MATCHES(tape.gradient(y, x), LookupError,
                         Catch::Message("[sin] gradient registry has no entry for: sin"));
  }
  REQUIRE(autodiff::grad_rule(OpId::Sin) != nullptr);
  {
    // a replacement rule is used while the override lives
    autodiff::ScopedRuleOverride twice(
        OpId::Sin, [](const autodiff::GradContext& k) { return std::vector<Tensor>{k.grads[0] * 2.0}; });
    GradientTape tape;
    tape.watch(x);
    CHECK(tape.gradient(sin(x), x).to_vector<float>() == std::vector<float>{2, 2});
  }
  GradientTape tape;
  tape.watch(x);
  Tensor g = tape.gradient(sin(x), x);
  CHECK(g.to_vector<float>()[1] == Approx(std::cos(1.0)));
}

// ---------------------------------------------------------------------------------------------
// custom_gradient

namespace {

// TensorFlow's example: log(1 + e^x) with a gradient that stays finite for large x.
Tensor log1pexp(const Tensor& x) {
  return custom_gradient(
      [](const Tensor& x) {
        Tensor e = exp(x);
        return std::make_pair(log(1.0 + e), [=](const Tensor& dy) { return dy * (1.0 - 1.0 / (1.0 + e)); });
      },
      x);
}

// The same function with a backward written from the input, so that outer tapes see how the
// gradient depends on x (second order).
Tensor log1pexp_from_input(const Tensor& x) {
  return custom_gradient(
      [](const Tensor& x) { return std::make_pair(log1p(exp(x)), [=](const Tensor& dy) { return dy * sigmoid(x); }); },
      x);
}

// TensorFlow's clip_gradients: the identity forward, a backward that clips the gradient's norm.
Tensor clip_gradient_norm(const Tensor& x, double max_norm) {
  return custom_gradient(
      [max_norm](const Tensor& x) {
        return std::make_pair(x, [max_norm](const Tensor& dy) {
          Tensor norm = sqrt(reduce_sum(dy * dy));
          return where(norm > max_norm, dy * max_norm / norm, dy);
        });
      },
      x);
}

}  // namespace

TEST_CASE("custom_gradient: the log1pexp example", "[autodiff][custom_gradient]") {
  SECTION("the plain gradient overflows, the custom one does not") {
    Tensor x = constant(100.0f);
    {
      GradientTape tape;
      tape.watch(x);
      Tensor y = log(1.0f + exp(x));
      CHECK(std::isnan(tape.gradient(y, x).item<float>()));
    }
    GradientTape tape;
    tape.watch(x);
    Tensor y = log1pexp(x);
    CHECK(tape.gradient(y, x).item<float>() == 1.0f);
  }
  SECTION("it matches finite differences") {
    auto r = autodiff::check_gradients([](const V& v) { return log1pexp(v[0]); }, {uni({2, 3}, 1)}, kEps, kAtol, kRtol);
    INFO(r.report);
    CHECK(r.ok);
  }
  SECTION("the forward ops are recorded as one step") {
    Tensor x = constant({0.0, 1.0}, float64);
    GradientTape tape;
    tape.watch(x);
    Tensor y = log1pexp(x);
    CHECK(tape.num_recorded() == 1);
    CHECK(tape.gradient(y, x).to_vector<double>()[0] == 0.5);
  }
  SECTION("no tape: the forward just runs") {
    CHECK(log1pexp(constant(0.0, float64)).item<double>() == Approx(std::log(2.0)));
  }
}

TEST_CASE("custom_gradient: clipping gradients", "[autodiff][custom_gradient]") {
  Tensor x = constant({3.0, 4.0}, float64);
  SECTION("clip by norm on an identity forward") {
    GradientTape tape;
    tape.watch(x);
    Tensor y = clip_gradient_norm(x, 0.5);
    CHECK(y.to_vector<double>() == std::vector<double>{3, 4});
    Tensor g = tape.gradient(reduce_sum(y * y), x);  // dy = 2y = (6, 8), norm 10
    auto gv = g.to_vector<double>();
    CHECK(gv[0] == Approx(0.3));
    CHECK(gv[1] == Approx(0.4));
  }
  SECTION("clip by value, with the gradient also flowing around it") {
    GradientTape tape;
    tape.watch(x);
    Tensor y = custom_gradient(
        [](const Tensor& x) { return std::make_pair(x, [](const Tensor& dy) { return clip(dy, -1.0, 1.0); }); }, x);
    Tensor g = tape.gradient(reduce_sum(y * y) + reduce_sum(x), x);  // 2y clipped to 1, plus 1
    CHECK(g.to_vector<double>() == std::vector<double>{2, 2});
  }
}

TEST_CASE("custom_gradient nests with outer tapes", "[autodiff][custom_gradient]") {
  Tensor x = constant({-1.0, 0.5, 2.0}, float64);
  SECTION("second order through the backward function") {
    GradientTape outer;
    outer.watch(x);
    Tensor dy_dx;
    {
      GradientTape inner;
      inner.watch(x);
      Tensor y = log1pexp_from_input(x);
      dy_dx = inner.gradient(y, x);
    }
    Tensor d2 = outer.gradient(dy_dx, x);
    auto s = sigmoid(x).to_vector<double>(), g1 = dy_dx.to_vector<double>(), g2 = d2.to_vector<double>();
    for (size_t i = 0; i < s.size(); ++i) {
      CHECK(g1[i] == Approx(s[i]));
      CHECK(g2[i] == Approx(s[i] * (1 - s[i])));
    }
  }
  SECTION("the same, checked against finite differences of the first derivative") {
    Fn f = [](const V& v) { return log1pexp_from_input(v[0]); };
    auto r = autodiff::check_gradients(first_derivative(f, {x}), {x}, kEps, kAtol, kRtol);
    INFO(r.report);
    CHECK(r.ok);
  }
  SECTION("both tapes record the step") {
    GradientTape outer(true);
    outer.watch(x);
    GradientTape inner(true);
    inner.watch(x);
    Tensor y = log1pexp(x);
    CHECK(inner.num_recorded() == 1);
    CHECK(outer.num_recorded() == 1);
    CHECK(inner.gradient(y, x).to_vector<double>() == outer.gradient(y, x).to_vector<double>());
  }
  SECTION("a paused tape does not record it") {
    GradientTape tape;
    tape.watch(x);
    Tensor y;
    {
      auto pause = tape.stop_recording();
      y = log1pexp(x);
    }
    CHECK(tape.num_recorded() == 0);
    CHECK_FALSE(tape.gradient(y, x).defined());
  }
  SECTION("a custom gradient inside a custom forward is part of the outer step") {
    GradientTape tape;
    tape.watch(x);
    Tensor y = custom_gradient(
        [](const Tensor& x) { return std::make_pair(log1pexp(x) * 2.0, [=](const Tensor& dy) { return dy * 3.0; }); },
        x);
    CHECK(tape.num_recorded() == 1);
    CHECK(tape.gradient(y, x).to_vector<double>() == std::vector<double>{3, 3, 3});
  }
}

TEST_CASE("custom_gradient with several inputs and outputs", "[autodiff][custom_gradient]") {
  Tensor a = constant({1.0, 2.0}, float64), b = constant({3.0, 5.0}, float64);
  SECTION("two inputs, one output") {
    GradientTape tape;
    tape.watch(a);
    tape.watch(b);
    Tensor y = custom_gradient(
        [](const Tensor& a, const Tensor& b) {
          return std::make_pair(a * b, [=](const Tensor& dy) { return std::vector<Tensor>{dy * b, Tensor()}; });
        },
        a, b);
    auto g = tape.gradient(y, {a, b});
    CHECK(g[0].to_vector<double>() == std::vector<double>{3, 5});
    CHECK_FALSE(g[1].defined());  // the backward function said None
  }
  SECTION("the general form: two outputs, one of them unused") {
    GradientTape tape;
    tape.watch(a);
    tape.watch(b);
    std::vector<Tensor> ys = custom_gradient(
        [](const std::vector<Tensor>& in) -> CustomForwardResult {
          Tensor s = in[0] + in[1], p = in[0] * in[1];
          return {{s, p}, [in](const std::vector<Tensor>& dys) {
                    // dys[1] is zeros: nothing uses p
                    return std::vector<Tensor>{dys[0] + dys[1] * in[1], dys[0] + dys[1] * in[0]};
                  }};
        },
        {a, b});
    REQUIRE(ys.size() == 2);
    auto g = tape.gradient(ys[0] * 2.0, {a, b});
    CHECK(g[0].to_vector<double>() == std::vector<double>{2, 2});
    CHECK(g[1].to_vector<double>() == std::vector<double>{2, 2});
  }
  SECTION("an output that is an input, twice") {
    GradientTape tape;
    tape.watch(a);
    std::vector<Tensor> ys = custom_gradient(
        [](const std::vector<Tensor>& in) -> CustomForwardResult {
          return {{in[0], in[0]}, [](const std::vector<Tensor>& dys) { return std::vector<Tensor>{dys[0] * 10.0}; }};
        },
        {a});
    Tensor g = tape.gradient(ys[0] + ys[1] + a, a);
    CHECK(g.to_vector<double>() == std::vector<double>{11, 11});
  }
  SECTION("jacobian through a custom step") {
    GradientTape tape;
    tape.watch(a);
    Tensor y = log1pexp_from_input(a);
    Tensor j = tape.jacobian(y, a);
    auto s = sigmoid(a).to_vector<double>();
    auto jv = j.to_vector<double>();
    CHECK(jv[0] == Approx(s[0]));
    CHECK(jv[1] == 0.0);
    CHECK(jv[3] == Approx(s[1]));
  }
}

TEST_CASE("custom_gradient rejects bad backward functions and variable reads", "[autodiff][custom_gradient]") {
  Tensor x = constant({1.0, 2.0}, float64);
  SECTION("the wrong number of gradients") {
    GradientTape tape;
    tape.watch(x);
    Tensor y = custom_gradient(
        [](const Tensor& x) {
          return std::make_pair(x * 2.0, [](const Tensor& dy) { return std::vector<Tensor>{dy, dy}; });
        },
        x);
    CHECK_THROWS_MATCHES(tape.gradient(y, x), InvalidArgument,
                         Catch::Message("[custom_gradient] the backward function returned 2 gradients for 1 inputs"));
  }
  SECTION("a gradient of the wrong shape") {
    GradientTape tape;
    tape.watch(x);
    Tensor y = custom_gradient(
        [](const Tensor& x) { return std::make_pair(x * 2.0, [](const Tensor& dy) { return reduce_sum(dy); }); }, x);
    CHECK_THROWS_WITH(tape.gradient(y, x), Catch::Contains("shape () for input 0 of shape (2,)"));
  }
  SECTION("a watched variable read inside the forward") {
    Variable v(constant(3.0, float64), "scale");
    GradientTape tape;
    tape.watch(x);
    auto f = [&v](const Tensor& x) { return std::make_pair(x * Tensor(v), [](const Tensor& dy) { return dy; }); };
    CHECK_THROWS_WITH(custom_gradient(f, x), Catch::StartsWith("[custom_gradient]") && Catch::Contains("'scale'"));
    // read outside and passed in, the variable gets its gradient
    Tensor y = custom_gradient(
        [](const Tensor& x, const Tensor& s) {
          return std::make_pair(x * s, [=](const Tensor& dy) {
            return std::vector<Tensor>{dy * s, reduce_sum(dy * x)};
          });
        },
        x, Tensor(v));
    CHECK(tape.gradient(y, v).item<double>() == 3.0);
  }
  SECTION("undefined inputs and outputs") {
    CHECK_THROWS_AS(
        custom_gradient([](const Tensor& x) { return std::make_pair(x, [](const Tensor& dy) { return dy; }); },
                        Tensor()),
        InvalidArgument);
    GradientTape tape;
    tape.watch(x);
    CHECK_THROWS_WITH(
        custom_gradient([](const Tensor&) { return std::make_pair(Tensor(), [](const Tensor& dy) { return dy; }); }, x),
        Catch::Contains("output 0 is undefined"));
  }
}
