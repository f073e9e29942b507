// function(f): tracing, the signature cache and retracing, variables, side effects, control
// flow, graph autodiff, and concurrency — the walkthrough's "graphs and functions" chapter.
#include <atomic>
#include <catch2/catch.hpp>
#include <iostream>
#include <sstream>
#include <thread>

#include "kiln/kiln.h"

using namespace kiln;

// tests/compiler/count_new.cpp: counts global operator new calls on this thread while enabled
extern thread_local bool t_count_news;
extern thread_local size_t t_news;

namespace {
// Captures std::cout for the scope's lifetime.
struct CaptureStdout {
  std::ostringstream out;
  std::streambuf* old = std::cout.rdbuf(out.rdbuf());
  ~CaptureStdout() { std::cout.rdbuf(old); }
};
}  // namespace

TEST_CASE("a function gives the eager result; inner functions join the outer graph", "[function]") {
  auto regular = [](Tensor x, Tensor y, Tensor b) { return matmul(x, y) + b; };
  auto graph_fn = function(regular, {.name = "a_function_that_uses_a_graph"});
  Tensor x1 = constant({{1.0f, 2.0f}}), y1 = constant({{2.0f}, {3.0f}}), b1 = constant(4.0f);
  CHECK(graph_fn(x1, y1, b1).to_vector<float>() == regular(x1, y1, b1).to_vector<float>());

  auto inner = function(regular, {.name = "inner"});
  auto outer = function(
      [&](Tensor x) {
        Tensor y = constant({{2.0f}, {3.0f}});
        return inner(x, y, constant(4.0f));
      },
      {.name = "outer"});
  CHECK(outer(x1).to_vector<float>() == std::vector<float>{12.0f});
  CHECK(inner.tracing_count() == 0);  // traced as part of outer's graph
  auto cf = outer.concrete_functions().at(0);
  bool has_matmul = false;
  for (auto& n : cf.graph().nodes) has_matmul |= n->is_op(ops::OpId::MatMul);
  CHECK(has_matmul);
}

TEST_CASE("a cache-hit call does not allocate with operator new", "[function]") {
  auto f = function([](Tensor x, int n) { return x * float(n) + 1.0f; });
  Tensor x = constant({1.0f, 2.0f});
  f(x, 3);
  t_news = 0;
  t_count_news = true;
  Tensor y = f(x, 3);
  t_count_news = false;
  CHECK(t_news == 0);
  CHECK(y.to_vector<float>() == std::vector<float>{4, 7});
}

TEST_CASE("polymorphism: one concrete function per signature", "[function]") {
  auto my_relu = function([](Tensor x) { return maximum(zeros_like(x), x); }, {.name = "my_relu", .arg_names = {"x"}});
  CHECK(my_relu(constant(5.5f)).item<float>() == 5.5f);
  CHECK(my_relu(constant({1, -1})).to_vector<int32_t>() == std::vector<int32_t>{1, 0});
  CHECK(my_relu(constant({3.0f, -3.0f})).to_vector<float>() == std::vector<float>{3, 0});
  CHECK(my_relu.tracing_count() == 3);
  CHECK(my_relu(constant(-2.5f)).item<float>() == 0.0f);
  CHECK(my_relu(constant({-1.0f, 1.0f})).to_vector<float>() == std::vector<float>{0, 1});
  CHECK(my_relu.tracing_count() == 3);
  CHECK(my_relu.pretty_printed_concrete_signatures() ==
        "my_relu(x)\n  Args:\n    x: float32 Tensor, shape=()\n  Returns:\n    float32 Tensor, shape=()\n\n"
        "my_relu(x)\n  Args:\n    x: int32 Tensor, shape=(2,)\n  Returns:\n    int32 Tensor, shape=(2,)\n\n"
        "my_relu(x)\n  Args:\n    x: float32 Tensor, shape=(2,)\n  Returns:\n    float32 Tensor, shape=(2,)");
}

TEST_CASE("static arguments are part of the signature", "[function]") {
  int traces = 0;
  auto f = function(
      [&](Tensor x, int n) {
        ++traces;  // a C++ side effect: runs at trace time only
        Tensor r = eye(3, int32);
        for (int i = 0; i < n; ++i) r = matmul(x, r);
        return r;
      },
      {.name = "power", .arg_names = {"x", "n"}});
  Tensor x = constant({{1, 1, 0}, {0, 1, 0}, {0, 0, 1}});
  CHECK(f(x, 3).to_vector<int32_t>() == std::vector<int32_t>{1, 3, 0, 0, 1, 0, 0, 0, 1});
  f(x, 3);
  CHECK(traces == 1);
  f(x, 4);
  CHECK(traces == 2);
  CHECK(f.concrete_functions().at(1).pretty_printed_signature() ==
        "power(x, n=4)\n  Args:\n    x: int32 Tensor, shape=(3, 3)\n  Returns:\n    int32 Tensor, shape=(3, 3)");
}

TEST_CASE("tracing side effects happen once; run_functions_eagerly runs the C++ each call", "[function]") {
  int calculating = 0;
  auto get_mse = function([&](Tensor y_true, Tensor y_pred) {
    ++calculating;
    return reduce_mean(pow(y_true - y_pred, constant(2)));
  });
  Tensor a = constant({7, 6, 7, 9, 5}), b = constant({5, 0, 4, 3, 6});
  for (int i = 0; i < 3; ++i) CHECK(get_mse(a, b).item<int32_t>() == 17);
  CHECK(calculating == 1);
  config::run_functions_eagerly(true);
  for (int i = 0; i < 3; ++i) CHECK(get_mse(a, b).item<int32_t>() == 17);
  config::run_functions_eagerly(false);
  CHECK(calculating == 4);
}

TEST_CASE("kiln::print is a graph op that prints on every call", "[function]") {
  auto f = function([](Tensor x) {
    print("x =", {x});
    return x + 1;
  });
  CaptureStdout cap;
  f(constant({1, 2}));
  f(constant({3, 4}));
  CHECK(cap.out.str() == "x = [1 2]\nx = [3 4]\n");
}

TEST_CASE("non-strict execution: unused ops do not run", "[function]") {
  auto unused = [](Tensor x) {
    gather(x, constant({1}));  // out of range for a one-element x
    return x;
  };
  CHECK_THROWS_AS(unused(constant({0.0f})), InvalidArgument);
  auto graph = function(unused);
  CHECK(graph(constant({0.0f})).to_vector<float>() == std::vector<float>{0.0f});
}

TEST_CASE("asserts are kept and run on every call", "[function]") {
  auto f = function([](Tensor x) {
    debugging::assert_true(x > 0, "x must be positive");
    return x * 2;
  });
  CHECK(f(constant({1, 2})).to_vector<int32_t>() == std::vector<int32_t>{2, 4});
  CHECK_THROWS_WITH(f(constant({1, -2})), "[assert] x must be positive (condition false at index [1])");
}

TEST_CASE("variables are captured by reference and written in place", "[function]") {
  Variable v(constant({1.0f, 2.0f}), "v");
  auto read = function([&](Tensor x) { return x * Tensor(v); });
  CHECK(read(constant(2.0f)).to_vector<float>() == std::vector<float>{2, 4});
  v.assign(constant({10.0f, 20.0f}));
  CHECK(read(constant(2.0f)).to_vector<float>() == std::vector<float>{20, 40});  // assignment seen
  auto step = function([&](Tensor d) {
    v.assign_add(d);
    return v.read_value();
  });
  CHECK(step(constant({1.0f, 1.0f})).to_vector<float>() == std::vector<float>{11, 21});
  CHECK(step(constant({1.0f, 1.0f})).to_vector<float>() == std::vector<float>{12, 22});
  CHECK(v.to_vector<float>() == std::vector<float>{12, 22});
  CHECK(read.tracing_count() == 1);
}

TEST_CASE("variables passed as arguments select a graph by identity", "[function]") {
  Variable a(constant(1.0f)), b(constant(5.0f));
  auto f = function([](const Variable& v, Tensor x) { return v.read_value() + x; });
  CHECK(f(a, constant(1.0f)).item<float>() == 2.0f);
  CHECK(f(b, constant(1.0f)).item<float>() == 6.0f);
  CHECK(f(a, constant(2.0f)).item<float>() == 3.0f);
  CHECK(f.tracing_count() == 2);
}

TEST_CASE("creating a variable on a later trace is an error that says why", "[function]") {
  std::vector<Variable> made;
  auto f = function([&](Tensor x) {
    Tensor init;
    {
      ops::EagerScope eager;
      init = zeros(x.shape(), x.dtype());
    }
    made.emplace_back(init, "w");
    return x + made.back().read_value();
  });
  CHECK(f(constant(1.0f)).item<float>() == 1.0f);
  CHECK_THROWS_WITH(f(constant({1.0f, 2.0f})), Catch::Contains("created on a trace other than the function's first"));
}

TEST_CASE("reading a symbolic value is an error pointing to cond and while_loop", "[function]") {
  auto f = function([](Tensor x) {
    if (x.item<int32_t>() > 0) return x;
    return -x;
  });
  CHECK_THROWS_WITH(f(constant(1)), Catch::Contains("kiln::cond"));
  Tensor leaked;
  auto g = function([&](Tensor x) {
    leaked = x + 1;
    return x;
  });
  g(constant(1));
  CHECK_THROWS_WITH(leaked + 1, Catch::Contains("leaked from a trace"));
}

TEST_CASE("cond and while_loop, eagerly and traced", "[function][control]") {
  auto relu = [](Tensor x) {
    return cond(
        x > 0, [&] { return x; }, [&] { return zeros_like(x); });
  };
  CHECK(relu(constant(1)).item<int32_t>() == 1);
  auto tf_relu = function(relu);
  CHECK(tf_relu(constant(1)).item<int32_t>() == 1);
  CHECK(tf_relu(constant(-1)).item<int32_t>() == 0);
  CHECK(tf_relu.tracing_count() == 1);

  auto count_to = [](Tensor limit) {
    std::vector<Tensor> r = while_loop([&](std::span<const Tensor> v) { return v[0] < limit; },
                                       [](std::span<const Tensor> v) {
                                         return std::vector<Tensor>{v[0] + 1, v[1] * 2};
                                       },
                                       {constant(0), constant(1)});
    return r[1];
  };
  CHECK(count_to(constant(5)).item<int32_t>() == 32);
  auto traced = function(count_to);
  CHECK(traced(constant(5)).item<int32_t>() == 32);
  CHECK(traced(constant(10)).item<int32_t>() == 1024);
  CHECK(traced.tracing_count() == 1);
}

TEST_CASE("input_signature pins one concrete function; reduce_retracing relaxes dims", "[function]") {
  auto f = function(
      [](Tensor x) { return reduce_sum(x * 2.0f); },
      {.name = "f", .arg_names = {"x"}, .input_signature = std::vector<TensorSpec>{TensorSpec({-1}, float32)}});
  CHECK(f(constant({1.0f, 2.0f})).item<float>() == 6.0f);
  CHECK(f(constant({1.0f, 2.0f, 3.0f})).item<float>() == 12.0f);
  CHECK(f.tracing_count() == 1);
  CHECK_THROWS_WITH(f(constant({1, 2})), Catch::Contains("does not match the input signature"));
  CHECK_THROWS_WITH(f(constant({{1.0f}})), Catch::Contains("does not match the input signature"));

  auto g = function([](Tensor x) { return x + 1.0f; }, {.name = "g", .reduce_retracing = true});
  g(constant({1.0f}));
  g(constant({1.0f, 2.0f}));
  CHECK(g(constant({1.0f, 2.0f, 3.0f})).to_vector<float>() == std::vector<float>{2, 3, 4});
  CHECK(g.tracing_count() == 2);
}

TEST_CASE("get_concrete_function from specs, and its graph", "[function]") {
  auto power = function(
      [](Tensor x, int n) {
        Tensor r = eye(10, int32);
        for (int i = 0; i < n; ++i) r = matmul(x, r);
        return r;
      },
      {.name = "power", .arg_names = {"x", "y"}});
  ConcreteFunction cf = power.get_concrete_function(TensorSpec({10, 10}, int32), 3);
  CHECK(cf.input_specs().size() == 1);
  std::string ir = cf.graph().to_string();
  CHECK(ir.find("matmul") != std::string::npos);
  Tensor x = ones({10, 10}, int32);
  CHECK(cf({x})[0].to_vector<int32_t>() == power(x, 3).to_vector<int32_t>());
  CHECK(power.tracing_count() == 1);
  CHECK_THROWS_AS(cf({ones({3, 3}, int32)}), InvalidArgument);
}

TEST_CASE("structured arguments and results", "[function]") {
  auto f = function([](std::vector<Tensor> xs, std::map<std::string, Tensor> m) {
    Tensor s = xs[0] + xs[1] + m.at("b");
    return std::make_tuple(s, std::vector<Tensor>{s * 2, s * 3});
  });
  auto [s, v] = f(std::vector<Tensor>{constant(1), constant(2)}, std::map<std::string, Tensor>{{"b", constant(3)}});
  CHECK(s.item<int32_t>() == 6);
  CHECK(v.size() == 2);
  CHECK(v[1].item<int32_t>() == 18);
}

TEST_CASE("a concrete function under a tape is one call op with a backward function", "[function][autodiff]") {
  Variable w(constant({{1.0f, 2.0f}, {3.0f, 4.0f}}), "w");
  auto f = function([&](Tensor x) { return reduce_sum(tanh(matmul(x, Tensor(w)))); });
  Tensor x = constant({{0.5f, -0.25f}});
  GradientTape tape;
  tape.watch(x);
  Tensor y = f(x);
  auto g = tape.gradient(y, {x, w});
  GradientTape eager;
  eager.watch(x);
  Tensor ye = reduce_sum(tanh(matmul(x, Tensor(w))));
  auto ge = eager.gradient(ye, {x, w});
  CHECK(y.item<float>() == Approx(ye.item<float>()));
  for (int i = 0; i < 2; ++i) {
    auto a = g[size_t(i)].to_vector<float>(), b = ge[size_t(i)].to_vector<float>();
    REQUIRE(a.size() == b.size());
    for (size_t k = 0; k < a.size(); ++k) CHECK(a[k] == Approx(b[k]).epsilon(1e-5));
  }
}

TEST_CASE("value_and_grad traces forward and backward into one graph", "[function][autodiff]") {
  auto loss = [](Tensor x, Tensor w, Tensor b) { return reduce_mean(square(matmul(x, w) + b)); };
  auto vg = value_and_grad(loss);
  Tensor x = random::normal({4, 3}, 1), w = random::normal({3, 2}, 2), b = constant({0.1f, -0.2f});
  auto [y, g] = vg(x, w, b);
  GradientTape tape;
  tape.watch(x);
  tape.watch(w);
  tape.watch(b);
  Tensor ye = loss(x, w, b);
  auto ge = tape.gradient(ye, {x, w, b});
  CHECK(y.item<float>() == Approx(ye.item<float>()));
  REQUIRE(g.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    auto a = g[i].to_vector<float>(), e = ge[i].to_vector<float>();
    for (size_t k = 0; k < a.size(); ++k) CHECK(a[k] == Approx(e[k]).epsilon(1e-5));
  }
}

TEST_CASE("many threads share one function; a new signature is traced once", "[function][threads]") {
  std::atomic<int> traces{0};
  auto f = function([&](Tensor x) {
    ++traces;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return x * x + 1.0f;
  });
  std::vector<std::thread> ts;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        float v = float(t + i);
        if (f(constant({v, v})).to_vector<float>() != std::vector<float>{v * v + 1, v * v + 1}) ++wrong;
      }
    });
  for (auto& t : ts) t.join();
  CHECK(wrong == 0);
  CHECK(traces == 1);
}

TEST_CASE("threads call functions with new signatures while others assign a captured variable", "[function][threads]") {
  Variable v(constant(0.0f), "counter");
  auto read = function([&](Tensor x) { return x + v.read_value(); });
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 1; !stop; ++i) v.assign(constant(float(i % 2 ? 1 : 2)));
  });
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        // shapes 1..4: each thread races the others to trace the same four signatures
        Tensor out = read(zeros({int64_t(1 + (i + t) % 4)}));
        for (float f : out.to_vector<float>())
          if (f != 0.0f && f != 1.0f && f != 2.0f) ++bad;
      }
    });
  for (auto& t : ts) t.join();
  stop = true;
  writer.join();
  CHECK(bad == 0);
  CHECK(read.tracing_count() == 4);
}

TEST_CASE("ragged and sparse tensors as arguments and results", "[function][composite]") {
  auto row_sums = function([](RaggedTensor r) { return ragged::reduce_sum(r * 2, 1); });
  RaggedTensor r = ragged::constant({{0, 1, 2, 3}, {4, 5}, {6, 7, 8}, {9}});
  CHECK(row_sums(r).to_vector<int32_t>() == std::vector<int32_t>{12, 18, 42, 18});
  CHECK(row_sums(ragged::constant({{1, 1}, {2, 2, 2, 2}, {3, 3, 3}, {0}})).to_vector<int32_t>() ==
        std::vector<int32_t>{4, 16, 18, 0});
  CHECK(row_sums.tracing_count() == 1);  // same number of rows and values: same signature
  row_sums(ragged::constant({{1}, {2}}));
  CHECK(row_sums.tracing_count() == 2);

  auto doubled = function([](RaggedTensor x) { return x * 2; });
  RaggedTensor d = doubled(r);
  CHECK(d.to_string() == "<kiln.RaggedTensor [[0, 2, 4, 6], [8, 10], [12, 14, 16], [18]]>");

  SparseTensor sp(NestedList{{0, 0}, {1, 2}}, NestedList{1.0f, 2.0f}, {3, 4});
  auto dense = function([](SparseTensor s, Tensor m) { return sparse::matmul(s, m); });
  Tensor m = reshape(range(0, 8, 1, float32), {4, 2});
  CHECK(dense(sp, m).to_vector<float>() == sparse::matmul(sp, m).to_vector<float>());
  auto scale = function([](SparseTensor s) { return s.with_values(s.values() * 3.0f); });
  CHECK(sparse::to_dense(scale(sp)).to_vector<float>() == std::vector<float>{3, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0});
}

TEST_CASE("a training step traced with an unknown batch dim computes the eager gradients", "[function][autodiff]") {
  // reduce_mean, broadcasting and matmul rules use shape-polymorphic ops (broadcast_like,
  // sum_to_like, shape_of) when a dim is known only at run time
  Variable w(constant({{5.0f}, {-1.0f}}), "w");
  Variable b(constant({0.5f}), "b");
  auto loss_of = [&](const Tensor& x, const Tensor& y) { return reduce_mean(square(y - (matmul(x, w) + b))); };
  auto step = function(
      [&](Tensor x, Tensor y) {
        GradientTape tape;
        Tensor loss = loss_of(x, y);
        auto g = tape.gradient(loss, {w, b});
        return std::make_tuple(loss, g[0], g[1]);
      },
      {.name = "train_step",
       .input_signature = std::vector<TensorSpec>{TensorSpec({-1, 2}, float32), TensorSpec({-1, 1}, float32)}});
  for (int64_t batch : {4, 7, 1}) {
    Tensor x = random::normal({batch, 2}, uint64_t(batch)), y = random::normal({batch, 1}, uint64_t(batch + 10));
    auto [loss, gw, gb] = step(x, y);
    GradientTape tape;
    Tensor le = loss_of(x, y);
    auto ge = tape.gradient(le, {w, b});
    CHECK(loss.item<float>() == Approx(le.item<float>()));
    for (size_t k = 0; k < 2; ++k) CHECK(gw.to_vector<float>()[k] == Approx(ge[0].to_vector<float>()[k]));
    CHECK(gb.item<float>() == Approx(ge[1].item<float>()));
  }
  CHECK(step.tracing_count() == 1);
}

TEST_CASE("an unseeded random op in a traced function draws new values on each call", "[function]") {
  auto f = function([](Tensor x) { return x + random::uniform({4}); });
  Tensor a = f(zeros({4})), b = f(zeros({4}));
  CHECK_FALSE(reduce_all(equal(a, b)).item<bool>());
  auto seeded = function([](Tensor x) { return x + random::uniform({4}, /*seed=*/7); });
  CHECK(reduce_all(equal(seeded(zeros({4})), seeded(zeros({4})))).item<bool>());  // a seeded op is pure
}

TEST_CASE("an unknown dim that turns out incompatible at run time is an error, not a wrong answer", "[function]") {
  // add infers [3] from [?] + [3]; the interpreter must still check the real operand
  auto f = function(
      [](Tensor x, Tensor y) { return x + y; },
      {.name = "f", .input_signature = std::vector<TensorSpec>{TensorSpec({-1}, float32), TensorSpec({3}, float32)}});
  CHECK(f(ones({3}), ones({3})).to_vector<float>() == std::vector<float>{2, 2, 2});
  CHECK(f(ones({1}), ones({3})).to_vector<float>() == std::vector<float>{2, 2, 2});
  CHECK_THROWS_WITH(f(ones({5}), ones({3})), Catch::StartsWith("[add] incompatible shapes"));
}
