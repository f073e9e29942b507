// The walkthrough's graphs-and-functions chapter ("图和函数介绍") in C++: function(f) traces a
// C++ function into a graph, one concrete function per signature; C++ side effects run at trace
// time only; graph execution is non-strict; graphs run faster than eager code.
//   usage: functions [--time]   (--time also prints the eager-versus-graph timing of section 6)
#include <kiln/kiln.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>

using namespace kiln;

namespace {
double seconds(auto&& f, int n) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

int main(int argc, char** argv) {
  const bool timing = argc > 1 && std::strcmp(argv[1], "--time") == 0;

  std::cout << "2. Using graphs\n";
  {
    auto a_regular_function = [](Tensor x, Tensor y, Tensor b) { return matmul(x, y) + b; };
    auto a_function_that_uses_a_graph = function(a_regular_function, {.name = "a_function_that_uses_a_graph"});
    Tensor x1 = constant({{1.0f, 2.0f}}), y1 = constant({{2.0f}, {3.0f}}), b1 = constant(4.0f);
    Tensor orig_value = a_regular_function(x1, y1, b1);
    Tensor tf_function_value = a_function_that_uses_a_graph(x1, y1, b1);
    std::cout << "orig_value == tf_function_value: " << std::boolalpha
              << reduce_all(equal(orig_value, tf_function_value)).item<bool>() << "\n";

    // a function called by a traced function becomes part of its graph
    auto inner_function = [](Tensor x, Tensor y, Tensor b) { return matmul(x, y) + b; };
    auto outer_function = function([&](Tensor x) {
      Tensor y = constant({{2.0f}, {3.0f}});
      Tensor b = constant(4.0f);
      return inner_function(x, y, b);
    });
    std::cout << outer_function(constant({{1.0f, 2.0f}})).numpy_string() << "\n";

    // C++ `if` cannot test a tensor (a Tensor has no conversion to bool): kiln::cond traces both
    // branches into the graph
    auto simple_relu = [](Tensor x) {
      return cond(
          greater(x, constant(0)), [&] { return x; }, [] { return constant(0); });
    };
    auto tf_simple_relu = function(simple_relu, {.name = "simple_relu", .arg_names = {"x"}});
    std::cout << "First branch, with graph: " << tf_simple_relu(constant(1)).numpy_string() << "\n";
    std::cout << "Second branch, with graph: " << tf_simple_relu(constant(-1)).numpy_string() << "\n";
    // This is the graph itself.
    std::cout << tf_simple_relu.get_concrete_function(constant(1)).graph();
  }

  std::cout << "\n3. Polymorphism: one function, many graphs\n";
  {
    auto my_relu =
        function([](Tensor x) { return maximum(zeros_like(x), x); }, {.name = "my_relu", .arg_names = {"x"}});
    // `my_relu` creates new graphs as it observes more signatures.
    std::cout << my_relu(constant(5.5f)) << "\n";
    std::cout << my_relu(constant({1, -1})) << "\n";
    std::cout << my_relu(constant({3.0f, -3.0f})) << "\n";
    // These two calls do *not* create new graphs.
    std::cout << my_relu(constant(-2.5f)) << "\n";          // Signature matches constant(5.5f).
    std::cout << my_relu(constant({-1.0f, 1.0f})) << "\n";  // Signature matches constant({3.0f, -3.0f}).
    // There are three concrete functions (one for each graph) in `my_relu`; each knows its
    // return type and shape.
    std::cout << my_relu.pretty_printed_concrete_signatures() << "\n";
  }

  std::cout << "\n4. Graph execution versus eager execution\n";
  {
    auto get_mse = function(
        [](Tensor y_true, Tensor y_pred) {
          std::cout << "Calculating MSE!\n";  // C++ output: runs while tracing only
          Tensor sq_diff = pow(y_true - y_pred, constant(2));
          return reduce_mean(sq_diff);
        },
        {.name = "get_MSE"});
    Tensor y_true = random::uniform({5}, /*seed=*/1, 0, 10, int32);
    Tensor y_pred = random::uniform({5}, /*seed=*/2, 0, 10, int32);
    std::cout << y_true << "\n" << y_pred << "\n";
    Tensor error = get_mse(y_true, y_pred);
    error = get_mse(y_true, y_pred);
    error = get_mse(y_true, y_pred);
    std::cout << error.to_string() << "\n";
    // Now, globally set everything to run eagerly to force eager execution.
    config::run_functions_eagerly(true);
    error = get_mse(y_true, y_pred);
    error = get_mse(y_true, y_pred);
    error = get_mse(y_true, y_pred);
    // Don't forget to set it back when you are done.
    config::run_functions_eagerly(false);
    // kiln::print is an op: it prints on every call of the graph
    auto with_print = function([](Tensor x) {
      print("x:", {x});
      return x;
    });
    with_print(constant({1, 2}));
    with_print(constant({3, 4}));
  }

  std::cout << "\n5. Non-strict execution\n";
  {
    auto unused_return_eager = [](Tensor x) {
      gather(x, constant({1}));  // unused; index 1 fails when x has one element
      return x;
    };
    try {
      std::cout << unused_return_eager(constant({0.0f})) << "\n";
    } catch (const InvalidArgument& e) {
      // All operations are run during eager execution so an error is raised.
      std::cout << "InvalidArgument: " << e.what() << "\n";
    }
    auto unused_return_graph = function(unused_return_eager);
    // Only needed operations are run during graph execution. The error is not raised.
    std::cout << unused_return_graph(constant({0.0f})) << "\n";
  }

  std::cout << "\n6. Seeing the speed-up\n";
  {
    Tensor x = random::uniform({10, 10}, /*seed=*/3, -1, 2, int32);
    auto power = [](Tensor x, int y) {
      Tensor result = eye(10, int32);
      for (int i = 0; i < y; ++i) result = matmul(x, result);
      return result;
    };
    auto power_as_graph = function(power, {.name = "power", .arg_names = {"x", "y"}});
    bool same = reduce_all(equal(power(x, 100), power_as_graph(x, 100))).item<bool>();
    std::cout << "graph result equals eager result: " << same << "\n";
    if (timing) {
      std::printf("Eager execution: %.4f seconds\n", seconds([&] { power(x, 100); }, 1000));
      std::printf("Graph execution: %.4f seconds\n", seconds([&] { power_as_graph(x, 100); }, 1000));
    }
  }

  std::cout << "\n7. When is a function traced?\n";
  {
    auto a_function_with_python_side_effect = function([](Tensor x) {
      std::cout << "Tracing!\n";  // a C++ side effect: runs when tracing
      return x * x + constant(2);
    });
    // This is traced the first time.
    std::cout << a_function_with_python_side_effect(constant(2)) << "\n";
    // The second time through, you won't see the side effect.
    std::cout << a_function_with_python_side_effect(constant(3)) << "\n";

    // A static (non-tensor) argument is part of the signature: each new value retraces, as a
    // Python argument does in TensorFlow.
    auto with_static = function([](int x) {
      std::cout << "Tracing!\n";
      return constant(x) * constant(x) + constant(2);
    });
    std::cout << with_static(2) << "\n";
    std::cout << with_static(3) << "\n";
  }
  return 0;
}
