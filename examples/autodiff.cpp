// The walkthrough's automatic differentiation chapter ("自动微分") in C++: gradient tapes, what they
// watch, intermediate results, non-scalar targets, control flow, and where gradients are None.
#include <kiln/kiln.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include "autodiff/rules.h"
#include "autodiff/tape.h"

using namespace kiln;

int main() {
  std::cout << "1. Gradient tapes\n";
  {
    Variable x(constant(3.0));
    GradientTape tape;
    Tensor y = pow(x, constant(2.0));
    Tensor dy_dx = tape.gradient(y, x);  // dy = 2x * dx
    std::cout << dy_dx << "\n";
  }
  {
    Variable w(random::normal({3, 2}, /*seed=*/1), "w");
    Variable b(zeros({2}), "b");
    Tensor x = constant({{1.0, 2.0, 3.0}});
    GradientTape tape(/*persistent=*/true);
    Tensor y = matmul(x, w) + b;
    Tensor loss = reduce_mean(pow(y, constant(2.0)));
    std::vector<Tensor> grads = tape.gradient(loss, {w, b});
    std::cout << w.shape() << "\n";
    std::cout << grads[0].shape() << "\n";
    std::map<std::string, Tensor> grad = tape.gradient(loss, std::map<std::string, Source>{{"w", w}, {"b", b}});
    std::cout << grad["b"] << "\n";
  }

  std::cout << "\n2. Gradients with respect to a model\n";
  {
    // a Dense(2, activation='relu') layer: Glorot-uniform kernel, zero bias
    Variable kernel(random::uniform({3, 2}, /*seed=*/2, -1.0954451, 1.0954451), "dense/kernel");
    Variable bias(zeros({2}), "dense/bias");
    // the layer's trainable variables, sharing the two above (copying a Variable would make a new one)
    std::vector<Variable> trainable_variables;
    trainable_variables.push_back(Variable::from_handle(kernel.handle()));
    trainable_variables.push_back(Variable::from_handle(bias.handle()));
    Tensor x = constant({{1.0, 2.0, 3.0}});
    GradientTape tape;
    Tensor y = relu(matmul(x, kernel) + bias);  // forward pass
    Tensor loss = reduce_mean(pow(y, constant(2.0)));
    std::vector<Source> sources(trainable_variables.begin(), trainable_variables.end());
    std::vector<Tensor> grad = tape.gradient(loss, sources);
    for (size_t i = 0; i < grad.size(); ++i)
      std::cout << trainable_variables[i].name() << ", shape: " << grad[i].shape() << "\n";
  }

  std::cout << "\n3. Controlling what the tape watches\n";
  {
    Variable x0(constant(3.0), "x0");                       // trainable
    Variable x1(constant(3.0), "x1", /*trainable=*/false);  // not trainable
    Tensor x2 = Variable(constant(2.0), "x2") + 1.0;        // a variable + a tensor is a tensor
    Tensor x3 = constant(3.0);                              // not a variable
    GradientTape tape;
    Tensor y = pow(x0, constant(2.0)) + pow(x1, constant(2.0)) + pow(x2, constant(2.0));
    for (const Tensor& g : tape.gradient(y, {x0, x1, x2, x3})) std::cout << g << "\n";
    std::cout << "[";
    const char* sep = "";
    for (const Variable& v : tape.watched_variables()) std::cout << sep << "'" << v.name() << "'", sep = ", ";
    std::cout << "]\n";
  }
  {
    Tensor x = constant(3.0);
    GradientTape tape;
    tape.watch(x);
    Tensor y = pow(x, constant(2.0));
    std::cout << numpy_str(tape.gradient(y, x)) << "\n";
  }
  {
    Variable x0(constant(0.0)), x1(constant(10.0));
    GradientTape tape(/*persistent=*/false, /*watch_accessed_variables=*/false);
    tape.watch(x1);
    Tensor y0 = sin(x0);
    Tensor y1 = softplus(x1);
    Tensor ys = reduce_sum(y0 + y1);
    // dys/dx1 = exp(x1) / (1 + exp(x1)) = sigmoid(x1)
    auto grad = tape.gradient(ys, std::map<std::string, Source>{{"x0", x0}, {"x1", x1}});
    std::cout << "dy/dx0: " << grad["x0"] << "\n";
    std::cout << "dy/dx1: " << numpy_str(grad["x1"]) << "\n";
  }

  std::cout << "\n4. Intermediate results\n";
  {
    Tensor x = constant(3.0);
    GradientTape tape;
    tape.watch(x);
    Tensor y = x * x;
    Tensor z = y * y;
    std::cout << numpy_str(tape.gradient(z, y)) << "\n";  // dz/dy = 2 * y and y = x ** 2 = 9
  }
  {
    Tensor x = constant({1, 3.0});
    GradientTape tape(/*persistent=*/true);
    tape.watch(x);
    Tensor y = x * x;
    Tensor z = y * y;
    std::cout << numpy_str(tape.gradient(z, x)) << "\n";  // 4 * x**3 at x = [1.0, 3.0]
    std::cout << numpy_str(tape.gradient(y, x)) << "\n";  // 2 * x at x = [1.0, 3.0]
  }

  std::cout << "\n5. Gradients of non-scalar targets\n";
  {
    Variable x(constant(2.0));
    GradientTape tape(/*persistent=*/true);
    Tensor y0 = pow(x, constant(2.0));
    Tensor y1 = 1.0 / Tensor(x);
    std::cout << numpy_str(tape.gradient(y0, x)) << "\n";
    std::cout << numpy_str(tape.gradient(y1, x)) << "\n";
  }
  {
    Variable x(constant(2.0));
    GradientTape tape;
    Tensor y0 = pow(x, constant(2.0));
    Tensor y1 = 1.0 / Tensor(x);
    std::cout << numpy_str(tape.gradient(std::vector<Tensor>{y0, y1}, {x})[0]) << "\n";  // the sum's gradient
  }
  {
    Variable x(constant(2.0));
    GradientTape tape;
    Tensor y = x * constant({3.0, 4.0});
    std::cout << numpy_str(tape.gradient(y, x)) << "\n";
  }
  {
    // elementwise: the gradient of the sum is each element's derivative
    Tensor x = linspace(-10.0, 10.0, 200 + 1);
    GradientTape tape;
    tape.watch(x);
    Tensor y = sigmoid(x);
    Tensor dy_dx = tape.gradient(y, x);
    std::vector<float> xs = x.to_vector<float>(), ys = y.to_vector<float>(), gs = dy_dx.to_vector<float>();
    std::printf("%6s %8s %8s\n", "x", "y", "dy/dx");
    for (size_t i = 0; i < xs.size(); i += 25) std::printf("%6.1f %8.4f %8.4f\n", xs[i], ys[i], gs[i]);
    bool matches = true;  // the closed form: sigmoid'(x) = y * (1 - y)
    for (size_t i = 0; i < xs.size(); ++i) matches &= std::fabs(gs[i] - ys[i] * (1 - ys[i])) <= 1e-7f;
    std::printf("dy/dx == y * (1 - y) at all %zu points: %s\n", xs.size(), matches ? "True" : "False");
    std::fflush(stdout);
  }

  std::cout << "\n6. Control flow\n";
  {
    Tensor x = constant(1.0);
    Variable v0(constant(2.0)), v1(constant(2.0));
    GradientTape tape(/*persistent=*/true);
    tape.watch(x);
    Tensor result = (x > 0.0).item<bool>() ? Tensor(v0) : pow(v1, constant(2.0));
    std::vector<Tensor> dv = tape.gradient(result, {v0, v1});
    std::cout << dv[0] << "\n";
    std::cout << dv[1] << "\n";
    std::cout << tape.gradient(result, x) << "\n";  // the condition is not differentiable
  }

  std::cout << "\n7. Cases where gradient returns None\n";
  {
    Variable x(constant(2.0)), y(constant(3.0));
    GradientTape tape;
    Tensor z = y * y;
    std::cout << tape.gradient(z, x) << "\n";
  }
  {
    // replacing a variable with a tensor: `x = x + 1` should be `x.assign_add(1)`
    auto epoch = [](const auto& x, const char* type) {
      GradientTape tape;
      Tensor y = x + 1.0;
      std::cout << type << " : " << tape.gradient(y, x) << "\n";
    };
    Variable x(constant(2.0));
    epoch(x, "Variable");
    Tensor x_plus_1 = x + 1.0;
    epoch(x_plus_1, "Tensor");
  }
  {
    // a computation outside Kiln: a column mean on the host
    Variable x(constant({{1.0, 2.0}, {3.0, 4.0}}));
    GradientTape tape;
    Tensor x2 = pow(x, constant(2.0));
    std::vector<float> v = x2.to_vector<float>();
    Tensor y = constant(std::vector<float>{(v[0] + v[2]) / 2, (v[1] + v[3]) / 2}, Shape{2});
    y = reduce_mean(y, 0);
    std::cout << tape.gradient(y, x) << "\n";
  }
  {
    // integers are not differentiable (the tape logs a warning on stderr)
    Tensor x = constant(10);
    GradientTape g;
    g.watch(x);
    Tensor y = x * x;
    std::cout << g.gradient(y, x) << "\n";
  }
  {
    // state stops gradients: the tape only sees x1's current value
    Variable x0(constant(3.0)), x1(constant(0.0));
    GradientTape tape;
    x1.assign_add(x0);
    Tensor y = pow(x1, constant(2.0));  // y = (x1 + x0)**2
    std::cout << tape.gradient(y, x0) << "\n";
  }

  std::cout << "\n8. No gradient registered\n";
  {
    // every Kiln primitive has a rule or is marked non-differentiable, so this removes gather's
    // rule for the block to show what a missing one does (a testing hook, not for programs)
    autodiff::ScopedRuleOverride no_rule(ops::OpId::Gather, nullptr);
    Variable params(constant({{0.5, 0.0, 0.0}, {1.0, 2.0, 3.0}}));
    GradientTape tape;
    Tensor picked = gather(params, constant({1, 0}));
    try {
      std::cout << tape.gradient(picked, params) << "\n";
      std::cout << "unreachable: the tape should have thrown\n";
    } catch (const LookupError& e) {
      std::cout << e.type_name() << ": " << e.what() << "\n";
    }
  }

  std::cout << "\n9. Zeros instead of None\n";
  {
    Variable x(constant({2.0, 2.0})), y(constant(3.0));
    GradientTape tape;
    Tensor z = pow(y, constant(2.0));
    std::cout << tape.gradient(z, x, UnconnectedGradients::Zero) << "\n";
  }
  return 0;
}
