// The walkthrough's automatic differentiation chapter as tests, plus tape semantics.
#include <catch2/catch.hpp>

#include "autodiff/check.h"
#include "autodiff/tape.h"
#include "ops/ops.h"

using namespace kiln;

namespace {
std::vector<float> vec(const Tensor& t) { return t.to_vector<float>(); }
}  // namespace

TEST_CASE("dy/dx of x^2 at 3 is 6", "[autodiff][walkthrough]") {
  Variable x(constant(3.0));
  GradientTape tape;
  Tensor y = pow(x, constant(2.0));
  Tensor dy_dx = tape.gradient(y, x);
  CHECK(dy_dx.item<float>() == 6.0f);
}

TEST_CASE("dense layer gradients have the variables' shapes", "[autodiff][walkthrough]") {
  Variable w(random::normal({3, 2}, 1), "w");
  Variable b(zeros({2}), "b");
  Tensor x = constant({{1.0, 2.0, 3.0}});
  GradientTape tape(/*persistent=*/true);
  Tensor y = matmul(x, w) + b;
  Tensor loss = reduce_mean(y * y);
  auto g = tape.gradient(loss, {w, b});
  CHECK(g[0].shape() == Shape{3, 2});
  CHECK(g[1].shape() == Shape{2});
  auto named = tape.gradient(loss, std::map<std::string, Source>{{"w", w}, {"b", b}});
  CHECK(vec(named["w"]) == vec(g[0]));
  // d loss / d b = mean over outputs of 2y = y
  CHECK(vec(g[1]) == vec(reshape(y, {2})));
}

TEST_CASE("a persistent tape answers several gradient calls", "[autodiff][walkthrough]") {
  Tensor x = constant({1.0, 3.0});
  GradientTape tape(true);
  tape.watch(x);
  Tensor y = x * x;
  Tensor z = y * y;
  CHECK(vec(tape.gradient(z, x)) == std::vector<float>{4, 108});
  CHECK(vec(tape.gradient(y, x)) == std::vector<float>{2, 6});
}

TEST_CASE("a non-persistent tape answers once", "[autodiff]") {
  Tensor x = constant(3.0);
  GradientTape tape;
  tape.watch(x);
  Tensor y = x * x;
  tape.gradient(y, x);
  CHECK_THROWS_AS(tape.gradient(y, x), FailedPrecondition);
}

TEST_CASE("several targets and non-scalar targets sum", "[autodiff][walkthrough]") {
  Variable x(constant(2.0));
  {
    GradientTape tape;
    Tensor y0 = pow(x, constant(2.0));
    Tensor y1 = constant(1.0) / x;
    CHECK(tape.gradient(std::vector<Tensor>{y0, y1}, {x})[0].item<float>() == 3.75f);
  }
  {
    GradientTape tape;
    Tensor y = x * constant({3.0, 4.0});
    CHECK(tape.gradient(y, x).item<float>() == 7.0f);
  }
}

TEST_CASE("the sigmoid derivative", "[autodiff][walkthrough]") {
  Tensor x = linspace(-10.0, 10.0, 201);
  GradientTape tape;
  tape.watch(x);
  Tensor y = sigmoid(x);
  Tensor dy_dx = tape.gradient(y, x);
  auto yv = vec(y), gv = vec(dy_dx);
  for (size_t i = 0; i < yv.size(); ++i) REQUIRE(gv[i] == Approx(yv[i] * (1 - yv[i])).margin(1e-7));
}

TEST_CASE("control flow picks which variables get gradients", "[autodiff][walkthrough]") {
  Tensor x = constant(1.0);
  Variable v0(constant(2.0)), v1(constant(2.0));
  GradientTape tape(true);
  tape.watch(x);
  Tensor result = x.item<float>() > 0.0f ? Tensor(v0) : pow(v1, constant(2.0));
  auto g = tape.gradient(result, {v0, v1});
  CHECK(g[0].item<float>() == 1.0f);
  CHECK_FALSE(g[1].defined());
  CHECK(tape.gradient(result, x).defined() == false);
}

TEST_CASE("gradients are None where the walkthrough says so", "[autodiff][walkthrough]") {
  SECTION("a source the target does not depend on") {
    Variable x(constant(2.0)), y(constant(3.0));
    GradientTape tape;
    Tensor z = y * y;
    Tensor g = tape.gradient(z, x);
    CHECK_FALSE(g.defined());
    CHECK(g.to_string() == "None");
  }
  SECTION("a variable replaced by a tensor is no longer watched") {
    Variable v(constant(2.0));
    Tensor x = v;
    for (int epoch = 0; epoch < 2; ++epoch) {
      GradientTape tape;
      Tensor y = (epoch == 0 ? Tensor(v) : x) + constant(1.0);
      Tensor g = epoch == 0 ? tape.gradient(y, v) : tape.gradient(y, x);
      CHECK(g.defined() == (epoch == 0));
      x = x + constant(1.0);
    }
  }
  SECTION("integer sources") {
    Tensor x = constant(10);
    GradientTape tape;
    tape.watch(x);
    Tensor y = x * x;
    CHECK_FALSE(tape.gradient(y, x).defined());
  }
  SECTION("assign_add cuts the path") {
    Variable x0(constant(3.0)), x1(constant(0.0));
    GradientTape tape;
    x1.assign_add(x0);
    Tensor y = pow(x1, constant(2.0));
    CHECK_FALSE(tape.gradient(y, x0).defined());
  }
  SECTION("non-differentiable ops") {
    Tensor x = constant({1.0, 2.0});
    GradientTape tape(true);
    tape.watch(x);
    CHECK_FALSE(tape.gradient(cast(argmax(x), float32), x).defined());
    CHECK_FALSE(tape.gradient(cast(x > constant(1.0f), float32), x).defined());
    CHECK_FALSE(tape.gradient(cast(cast(x, int32), float32), x).defined());
    CHECK_FALSE(tape.gradient(stop_gradient(x) * x, x).defined() == false);
    CHECK(vec(tape.gradient(stop_gradient(x) * x, x)) == std::vector<float>{1, 2});
  }
}

TEST_CASE("unconnected gradients can be zeros", "[autodiff][walkthrough]") {
  Variable x(constant({2.0, 2.0})), y(constant(3.0));
  GradientTape tape;
  Tensor z = y * y;
  CHECK(vec(tape.gradient(z, x, UnconnectedGradients::Zero)) == std::vector<float>{0, 0});
}

TEST_CASE("watching: trainable flags and automatic watching", "[autodiff]") {
  Variable trainable(constant(1.0)), frozen(constant(1.0), "frozen", false);
  {
    GradientTape tape;
    Tensor y = trainable * frozen;
    CHECK(tape.watched_variables().size() == 1);
    auto g = tape.gradient(y, {trainable, frozen});
    CHECK(g[0].defined());
    CHECK_FALSE(g[1].defined());
  }
  {
    GradientTape tape(false, /*watch_accessed_variables=*/false);
    tape.watch(frozen);
    Tensor y = trainable * frozen;
    auto g = tape.gradient(y, {trainable, frozen});
    CHECK_FALSE(g[0].defined());
    CHECK(g[1].item<float>() == 1.0f);
  }
}

TEST_CASE("stop_recording and nested tapes", "[autodiff]") {
  Tensor x = constant(3.0);
  {
    GradientTape tape;
    tape.watch(x);
    Tensor y;
    {
      auto pause = tape.stop_recording();
      y = x * x;
    }
    CHECK_FALSE(tape.gradient(y, x).defined());
  }
  {
    GradientTape outer;
    outer.watch(x);
    Tensor dy_dx;
    {
      GradientTape inner;
      inner.watch(x);
      Tensor y = x * x * x;
      dy_dx = inner.gradient(y, x);  // 3x^2 = 27
    }
    CHECK(dy_dx.item<float>() == 27.0f);
    CHECK(outer.gradient(dy_dx, x).item<float>() == 18.0f);  // 6x
  }
}

TEST_CASE("jacobian and batch_jacobian", "[autodiff]") {
  Tensor x = constant({1.0, 2.0, 3.0});
  {
    GradientTape tape;
    tape.watch(x);
    Tensor y = x * x;
    Tensor j = tape.jacobian(y, x);
    CHECK(j.shape() == Shape{3, 3});
    CHECK(vec(j) == std::vector<float>{2, 0, 0, 0, 4, 0, 0, 0, 6});
  }
  {
    Tensor xb = constant({{1.0, 2.0}, {3.0, 4.0}});
    Tensor w = constant({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
    GradientTape tape;
    tape.watch(xb);
    Tensor y = matmul(xb, w);
    Tensor j = tape.batch_jacobian(y, xb);
    REQUIRE(j.shape() == Shape{2, 3, 2});
    // d y[b, i] / d x[b, k] = w[k, i]
    CHECK(vec(j) == std::vector<float>{1, 4, 2, 5, 3, 6, 1, 4, 2, 5, 3, 6});
  }
}

TEST_CASE("gradients match finite differences", "[autodiff][check]") {
  Tensor a = random::normal({3, 4}, 1, 0, 1, float64);
  Tensor b = random::normal({4, 2}, 2, 0, 1, float64);
  Tensor p = random::uniform({3, 4}, 3, 0.5, 2.0, float64);
  Tensor row = random::normal({4}, 4, 0, 1, float64);
  using V = std::vector<Tensor>;
  std::vector<std::pair<const char*, std::function<Tensor(const V&)>>> fns = {
      {"matmul", [](const V& v) { return matmul(v[0], v[1]); }},
      {"matmul_t", [](const V& v) { return matmul(v[1], v[0], true, true); }},
      {"broadcast add/mul", [](const V& v) { return v[0] * v[2] + v[2]; }},
      {"divide", [](const V& v) { return v[0] / v[2]; }},
      {"exp/log/sqrt", [](const V& v) { return exp(v[0]) + log(v[2]) * sqrt(v[2]); }},
      {"tanh/sigmoid/softplus", [](const V& v) { return tanh(v[0]) * sigmoid(v[0]) + softplus(v[0]); }},
      {"sin/cos/tan/rsqrt/log1p",
       [](const V& v) { return sin(v[0]) + cos(v[0]) + tan(v[0] * 0.3) + rsqrt(v[2]) + log1p(v[2]); }},
      {"pow", [](const V& v) { return pow(v[2], v[0]); }},
      {"max/min", [](const V& v) { return maximum(v[0], v[2]) - minimum(v[0], v[2]); }},
      {"reductions",
       [](const V& v) {
         return reduce_sum(v[0], 1) + reduce_mean(v[0], 1) + reduce_max(v[0], 1) + reduce_min(v[0], 1) +
                reduce_prod(v[2], 1);
       }},
      {"softmax/log_softmax", [](const V& v) { return softmax(v[0]) + log_softmax(v[0], 0); }},
      {"shape ops",
       [](const V& v) {
         Tensor t = transpose(reshape(v[0], {2, 6}));
         Tensor c = concat({t, t * 2.0}, 1);
         auto parts = split(c, 2, 1);
         Tensor padded = pad(squeeze(expand_dims(parts[0], 0)), {{1, 0}, {0, 2}});
         return reduce_sum(tile(parts[1], {2, 1}) * tile(parts[1], {2, 1})) + reduce_sum(padded * padded) +
                reduce_sum(reverse(broadcast_to(v[3], {3, 4}), Axes{0}) * v[0]);
       }},
      {"where/abs/square/relu", [](const V& v) { return where(v[0] > v[2], abs(v[0]), square(v[2])) + relu(v[0]); }},
  };
  for (auto& [name, fn] : fns) {
    INFO(name);
    auto r = autodiff::check_gradients(fn, {a, b, p, row}, 1e-6, 1e-6, 1e-5);
    INFO(r.report);
    CHECK(r.ok);
  }
}
